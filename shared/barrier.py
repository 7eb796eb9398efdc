"""The end-of-stream barrier: which partitions of a stage have ended, as a set.

Markers can be redelivered (a worker replays input it had not committed) and arrive in any
order. A counter would count a redelivered marker twice and fire early, losing data; a set
makes marking idempotent. The rule every stage follows:

    after the outputs for partition p are durable: mark(p); if the set is now complete,
    send the end-of-stream markers downstream (again, if someone already did: duplicates
    are harmless downstream, because that stage's barrier is a set too); then commit.

A crash anywhere in that sequence replays the marker, and replaying it is harmless. A
crash between the mark and the hand-off is repaired by the replay too: a stage that finds
its barrier complete when a marker is replayed sends the hand-off again, even if the mark
was not its own (services/runtime/holding.py), and a stage that stops making progress while its
inputs are complete gets its hand-off re-sent by the dispatchers (shared/liveness.py).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Stage(enum.Enum):
    SOURCE = "source"  # SOURCE partitions whose end marker the dispatchers forwarded
    MAP = "map"  # MAP---<id> partitions whose outputs the mappers made durable
    SHUFFLE = "shuffle"  # SHUFFLE partitions whose groups the shufflers emitted
    REDUCE = "reduce"  # REDUCE---<id> partitions whose results the reducers made durable
    SINK = "sink"  # reduce partitions whose part file the sinks wrote


# The order data flows through them.
FLOW = (Stage.SOURCE, Stage.MAP, Stage.SHUFFLE, Stage.REDUCE, Stage.SINK)


def is_complete(ended: Iterable[int], total: int) -> bool:
    """Complete when every partition 0..total-1 has ended (extra or repeated marks harmless)."""
    return set(range(total)) <= set(ended)
