"""The source's liveness: a key it refreshes while it runs, which the dispatcher's
dead-source watchdog reads."""

from __future__ import annotations

import time

from mapreduce_kafka.shared.store import keys
from mapreduce_kafka.shared.store.connection import Connection, retried


class Sources(Connection):
    @retried
    def touch_source(self, pipeline_id: str, ttl_s: int) -> None:
        self.redis.set(keys.source(pipeline_id), time.time(), ex=ttl_s)

    @retried
    def source_alive(self, pipeline_id: str) -> bool:
        return bool(self.redis.exists(keys.source(pipeline_id)))

    @retried
    def clear_source(self, pipeline_id: str) -> None:
        self.redis.delete(keys.source(pipeline_id))
