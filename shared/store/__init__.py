"""The coordination store in Redis: pipeline status, end-of-stream barriers, failures,
job counters, staging directories, worker and source liveness. Redis holds coordination
only, never data.

One module per concern, each a class over the shared `Connection` (connection.py: the
retry policy, durable writes, the rule that a write about a pipeline is made only while it
is active); every key is named in keys.py. `Store` is all of them in one object, built by
inheritance rather than held as parts: every role needs several concerns through one
connection, and callers keep writing `store.mark_ended(...)` rather than learning which
part each call lives in.

Every write about a pipeline (a barrier mark, progress, an error) is made only while the
pipeline is active: a late mark from a zombie worker cannot recreate the keys of a
pipeline that was already forgotten.
"""

from __future__ import annotations

from mapreduce_kafka.shared.store.barriers import Barriers
from mapreduce_kafka.shared.store.charges import Charges
from mapreduce_kafka.shared.store.connection import NotReplicated
from mapreduce_kafka.shared.store.counters import JobCounters
from mapreduce_kafka.shared.store.failures import Failures
from mapreduce_kafka.shared.store.pipelines import FINALIZING, TERMINAL, Pipelines
from mapreduce_kafka.shared.store.sources import Sources
from mapreduce_kafka.shared.store.staging import Staging
from mapreduce_kafka.shared.store.workers import SILENT_AFTER_S, WORKER_TTL_S, Workers

__all__ = ["FINALIZING", "SILENT_AFTER_S", "TERMINAL", "WORKER_TTL_S", "NotReplicated",
           "Store"]


class Store(Pipelines, Barriers, Charges, Failures, JobCounters, Staging, Sources, Workers):
    """The one object callers hold: one Redis connection, every concern's calls."""
