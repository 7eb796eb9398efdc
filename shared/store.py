"""The coordination store in Redis: pipeline status, end-of-stream barriers, worker
heartbeats. Redis holds coordination only, never data.

Keys (all under ``mr:``):
  mr:pipelines                  set of pipeline ids, for `status`
  mr:pipeline:<id>              hash: state, reason, output, partitions, frames, times
  mr:ended:<id>:<stage>         set of partitions that ended at that stage (the barrier)
  mr:mapped:<id>                set of source frame numbers mapped (progress, idempotent)
  mr:worker:<worker-id>         hash: role, host, pid, partitions, last_seen (expires)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import redis

from shared.barrier import Stage
from shared.errors import ConnectionFailed

TERMINAL = ("done", "failed")

# Finish a pipeline once: the first terminal state wins, later ones are ignored.
_FINISH = """
local s = redis.call('HGET', KEYS[1], 'state')
if s == 'done' or s == 'failed' then return s end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2], 'finished', ARGV[3])
return ARGV[1]
"""

WORKER_TTL_S = 30  # a worker silent this long disappears from `status`


FieldValue = str | int | float


def _fields(values: dict[str, Any]) -> dict[Any, FieldValue]:
    """Redis hash values are strings; say how everything else is written."""
    return {k: v if isinstance(v, str | int | float) else str(v) for k, v in values.items()}


def _pipeline_key(pipeline_id: str) -> str:
    return f"mr:pipeline:{pipeline_id}"


def _ended_key(pipeline_id: str, stage: Stage) -> str:
    return f"mr:ended:{pipeline_id}:{stage.value}"


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.redis = redis.Redis.from_url(url, decode_responses=True,
                                          socket_connect_timeout=5, socket_timeout=10,
                                          health_check_interval=30)
        self._finish = self.redis.register_script(_FINISH)

    def check_reachable(self) -> None:
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise ConnectionFailed(
                f"cannot reach Redis at {self.url} ({exc}); start a local cluster with "
                "`mapreduce up`, or pass --redis-url / set MAPREDUCE_REDIS_URL"
            ) from exc

    # ---- pipelines ------------------------------------------------------------------

    def create_pipeline(self, pipeline_id: str, fields: dict[str, Any]) -> bool:
        """Register a new pipeline; False if the id is already taken."""
        key = _pipeline_key(pipeline_id)
        if not self.redis.hsetnx(key, "state", "submitted"):
            return False
        self.redis.hset(key, mapping=_fields({**fields, "submitted": time.time()}))
        self.redis.sadd("mr:pipelines", pipeline_id)
        return True

    def update_pipeline(self, pipeline_id: str, **fields: Any) -> None:
        self.redis.hset(_pipeline_key(pipeline_id), mapping=_fields(fields))

    def finish_pipeline(self, pipeline_id: str, state: str, reason: str = "") -> str:
        """Move to a terminal state once; return the terminal state that holds."""
        assert state in TERMINAL
        return str(self._finish(keys=[_pipeline_key(pipeline_id)],
                                args=[state, reason, time.time()]))

    def pipeline(self, pipeline_id: str) -> dict[str, str]:
        return self.redis.hgetall(_pipeline_key(pipeline_id))  # type: ignore[return-value]

    def pipeline_ids(self) -> list[str]:
        return sorted(self.redis.smembers("mr:pipelines"))  # type: ignore[arg-type]

    def forget_pipeline(self, pipeline_id: str, keep_status_s: int = 7 * 24 * 3600) -> None:
        """Drop a finished pipeline's coordination keys; its status hash expires later."""
        self.redis.delete(*[_ended_key(pipeline_id, s) for s in Stage],
                          f"mr:mapped:{pipeline_id}")
        self.redis.expire(_pipeline_key(pipeline_id), keep_status_s)

    # ---- barriers -------------------------------------------------------------------

    def mark_ended(self, pipeline_id: str, stage: Stage, partition: int, total: int) -> bool:
        """Add a partition to the stage's ended set; return whether all `total` have ended."""
        key = _ended_key(pipeline_id, stage)
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(key, partition)
        pipe.smembers(key)
        _, members = pipe.execute()
        return set(range(total)) <= {int(m) for m in members}

    def has_ended(self, pipeline_id: str, stage: Stage, partition: int) -> bool:
        return bool(self.redis.sismember(_ended_key(pipeline_id, stage), str(partition)))

    def ended_counts(self, pipeline_id: str) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for stage in Stage:
            pipe.scard(_ended_key(pipeline_id, stage))
        pipe.scard(f"mr:mapped:{pipeline_id}")
        *counts, mapped = pipe.execute()
        return {**{s.value: c for s, c in zip(Stage, counts, strict=True)}, "mapped": mapped}

    def add_mapped(self, pipeline_id: str, seqs: Iterable[int]) -> None:
        seqs = list(seqs)
        if seqs:
            self.redis.sadd(f"mr:mapped:{pipeline_id}", *seqs)

    # ---- workers --------------------------------------------------------------------

    def heartbeat(self, worker_id: str, fields: dict[str, Any]) -> None:
        key = f"mr:worker:{worker_id}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping=_fields({**fields, "last_seen": time.time()}))
        pipe.expire(key, WORKER_TTL_S)
        pipe.execute()

    def remove_worker(self, worker_id: str) -> None:
        self.redis.delete(f"mr:worker:{worker_id}")

    def workers(self) -> list[dict[str, str]]:
        keys = sorted(self.redis.scan_iter("mr:worker:*", count=500))
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return [{"id": k.split(":", 2)[2], **v} for k, v in zip(keys, pipe.execute(), strict=True)
                if v]
