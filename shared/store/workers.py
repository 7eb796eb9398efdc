"""Worker heartbeats: which workers are beating and which partitions they hold."""

from __future__ import annotations

from typing import Any

from mapreduce_kafka.shared.store import keys
from mapreduce_kafka.shared.store.connection import Connection, hash_fields, retried

# `status` marks a worker silent after SILENT_AFTER_S without a heartbeat (it may be dead,
# stopped, or cut off from Redis) and forgets it after WORKER_TTL_S.
SILENT_AFTER_S = 10
WORKER_TTL_S = 600


class Workers(Connection):
    @retried
    def heartbeat(self, worker_id: str, fields: dict[str, Any]) -> None:
        key = keys.worker(worker_id)
        pipe = self.redis.pipeline(transaction=True)
        # Redis's clock, not the worker's: workers on other hosts may disagree on the time.
        pipe.hset(key, mapping=hash_fields({**fields, "last_seen": self.now()}))
        pipe.expire(key, WORKER_TTL_S)
        pipe.execute()

    @retried
    def remove_worker(self, worker_id: str) -> None:
        self.redis.delete(keys.worker(worker_id))

    def held_partitions(self) -> set[str]:
        """The partitions (`TOPIC[p]`) that workers still beating report holding."""
        now = self.now()
        return {p for w in self.workers() if now - float(w.get("last_seen") or 0) <= SILENT_AFTER_S
                for p in (w.get("partitions") or "").split(",") if p}

    @retried
    def workers(self) -> list[dict[str, str]]:
        found = sorted(self.redis.scan_iter(keys.WORKER_PATTERN, count=500))
        pipe = self.redis.pipeline(transaction=False)
        for key in found:
            pipe.hgetall(key)
        return [{"id": keys.worker_id(k), **v}
                for k, v in zip(found, pipe.execute(), strict=True) if v]
