"""The records and keys that failed, each counted once however often it is replayed: the
count a pipeline's failure budget is checked against (services/runtime/deadletter.py)."""

from __future__ import annotations

from mapreduce_kafka.shared.store import keys
from mapreduce_kafka.shared.store.connection import Connection, retried


class Failures(Connection):
    @retried
    def add_error(self, pipeline_id: str, identity: str) -> int:
        """Count a failed record or key once, however often it is replayed (0 once the
        pipeline is no longer active)."""
        count = self._durably(lambda client: self._add_if_active(
            keys=[keys.ACTIVE, keys.errors(pipeline_id)], args=[pipeline_id, "count", identity],
            client=client))
        return int(count or 0)
