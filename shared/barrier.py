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
from collections.abc import Iterable, Mapping
from typing import Any


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


def stage_totals(*, source: int, partitions: int, shuffle: int,
                 map_only: bool) -> dict[Stage, int]:
    """Each stage's partitions, in FLOW order. A map-only pipeline has no shuffle and no
    reduce stage: its mappers hand their parts to the sink."""
    totals = {Stage.SOURCE: source, Stage.MAP: partitions, Stage.SHUFFLE: shuffle,
              Stage.REDUCE: partitions, Stage.SINK: partitions}
    if map_only:
        del totals[Stage.SHUFFLE], totals[Stage.REDUCE]
    return totals


def status_totals(info: Mapping[str, Any], step: int | None = None) -> dict[Stage, int]:
    """stage_totals of a step from a pipeline's status hash (as the source recorded it:
    `map_only` holds a flag per step, "1" for a map-only one, separated by commas). Without
    a step: the one a progress report names (`step`, counted from 1), or the first."""
    if step is None:
        step = int(info.get("step") or 1) - 1
    flags = str(info.get("map_only") or "0").split(",")
    return stage_totals(source=int(info.get("source_partitions") or 0),
                        partitions=int(info.get("partitions") or 0),
                        shuffle=int(info.get("shuffle_partitions") or 0),
                        map_only=step < len(flags) and flags[step] == "1")
