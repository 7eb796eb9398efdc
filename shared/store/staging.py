"""Pipelines whose sink created a staging directory: a sink's sweep removes the directory
of one that failed (the sink that wrote its parts may have died since), and the sink that
puts the output in place takes it off the list."""

from __future__ import annotations

from mapreduce_kafka.shared.store import keys
from mapreduce_kafka.shared.store.connection import Connection, retried


class Staging(Connection):
    @retried
    def add_staging(self, pipeline_id: str) -> None:
        self._durably(lambda client: client.sadd(keys.STAGING, pipeline_id))

    @retried
    def staging_ids(self) -> list[str]:
        return sorted(self.redis.smembers(keys.STAGING))  # type: ignore[arg-type]

    @retried
    def remove_staging(self, pipeline_id: str) -> None:
        self.redis.srem(keys.STAGING, pipeline_id)
