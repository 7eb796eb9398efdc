"""A worker's own figures: counters and gauges kept in the process and published with its
heartbeat (services/runtime/process.py), from where the dashboard's /metrics reads them
(services/ui/metrics.py). In the process, not in Redis: counting must cost the hot path
nothing but an addition, and a figure a worker lost when it died is a reset Prometheus
handles (a restarted worker is a new series).

Names are Prometheus's less the `mapreduce_` prefix and the `_total` of counters."""

from __future__ import annotations

import threading

COUNTERS = {
    "messages_in": "Kafka messages consumed",
    "bytes_in": "bytes of the values of the Kafka messages consumed",
    "messages_out": "Kafka messages produced",
    "bytes_out": "bytes of the values of the Kafka messages produced",
    "records_in": "records taken in: a mapper's input records, a reducer's keys, a sink's "
                  "results",
    "records_out": "records given out: a mapper's key groups, a reducer's results, a sink's "
                   "results written",
    "dead_letters": "records or keys sent to the DEADLETTER topic",
    "rebalances": "partition assignments and revocations this worker's consumers saw",
    "resubscriptions": "changes of the set of pipelines this worker follows",
    "resubscription_seconds": "seconds spent changing the set of pipelines followed",
    "spills": "sorted runs a shuffler or sink spilled to disk past its memory budget",
}
GAUGES = {
    "consumer_lag": "messages not yet read on this worker's assigned partitions",
    "held_bytes": "bytes a shuffler or sink holds in memory before it emits or spills",
}


class WorkerMetrics:
    def __init__(self) -> None:
        self.values = dict.fromkeys([*COUNTERS, *GAUGES], 0.0)
        self._lock = threading.Lock()  # consumers closing on threads of their own count too

    def count(self, **amounts: float) -> None:
        """Add to counters: count(messages_out=1, bytes_out=512)."""
        with self._lock:
            for name, amount in amounts.items():
                self.values[name] += amount

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self.values[name] = value

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self.values)


METRICS = WorkerMetrics()  # this process's
