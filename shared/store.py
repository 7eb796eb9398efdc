"""The coordination store in Redis: pipeline status, end-of-stream barriers, worker
heartbeats. Redis holds coordination only, never data.

Keys (all under ``mr:``):
  mr:pipelines                  set of pipeline ids, for `status`
  mr:active                     set of pipeline ids not yet done or failed
  mr:pipeline:<id>              hash: state, reason, output, partitions, frames, times
  mr:ended:<id>:<stage>         set of partitions that ended at that stage (the barrier)
  mr:mapped:<id>                set of source frame numbers mapped (progress, idempotent)
  mr:worker:<worker-id>         hash: role, host, pid, partitions, last_seen (expires)
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis

from shared import retry
from shared.barrier import Stage
from shared.config import redacted
from shared.errors import ConnectionFailed

TERMINAL = ("done", "failed")

# Finish a pipeline once: the first terminal state wins, later ones are ignored.
_FINISH = """
redis.call('SREM', KEYS[2], ARGV[4])
local s = redis.call('HGET', KEYS[1], 'state')
if s == 'done' or s == 'failed' then return s end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2], 'finished', ARGV[3])
return ARGV[1]
"""

# Register a pipeline in one step: the status hash, and the sets `status` and the
# dispatcher's dead-source watchdog read. Done as separate calls, a source killed between
# them left a pipeline no watchdog could see. A retried call with our token is success.
_CREATE = """
local created = redis.call('HSETNX', KEYS[1], 'token', ARGV[1])
if created == 0 and redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""

# `status` marks a worker silent after SILENT_AFTER_S without a heartbeat (it may be dead,
# stopped, or cut off from Redis) and forgets it after WORKER_TTL_S.
SILENT_AFTER_S = 10
WORKER_TTL_S = 600


FieldValue = str | int | float


def _fields(values: dict[str, Any]) -> dict[Any, FieldValue]:
    """Redis hash values are strings; say how everything else is written."""
    return {k: v if isinstance(v, str | int | float) else str(v) for k, v in values.items()}


F = TypeVar("F", bound=Callable[..., Any])
_TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


def _retried(fn: F) -> F:
    """Retry a coordination call through a Redis outage (named policy in shared/retry)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return retry.redis_calls(_TRANSIENT)(fn, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


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
        self._create = self.redis.register_script(_CREATE)

    def check_reachable(self) -> None:
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise ConnectionFailed(
                f"cannot reach Redis at {redacted(self.url)} ({exc}); start a local cluster with "
                "`mapreduce up`, or pass --redis-url / set MAPREDUCE_REDIS_URL"
            ) from exc

    # ---- pipelines ------------------------------------------------------------------

    @_retried
    def create_pipeline(self, pipeline_id: str, fields: dict[str, Any]) -> bool:
        """Register a new pipeline; False if the id is already taken."""
        token = fields.setdefault("token", uuid.uuid4().hex)  # same token if the call is retried
        values = _fields({"state": "submitted", **fields, "submitted": time.time()})
        flat = [x for kv in values.items() for x in kv]
        return bool(self._create(keys=[_pipeline_key(pipeline_id), "mr:pipelines", "mr:active"],
                                 args=[token, pipeline_id, *flat]))

    @_retried
    def update_pipeline(self, pipeline_id: str, **fields: Any) -> None:
        self.redis.hset(_pipeline_key(pipeline_id), mapping=_fields(fields))

    @_retried
    def finish_pipeline(self, pipeline_id: str, state: str, reason: str = "") -> str:
        """Move to a terminal state once; return the terminal state that holds."""
        assert state in TERMINAL
        return str(self._finish(keys=[_pipeline_key(pipeline_id), "mr:active"],
                                args=[state, reason, time.time(), pipeline_id]))

    @_retried
    def pipeline(self, pipeline_id: str) -> dict[str, str]:
        return self.redis.hgetall(_pipeline_key(pipeline_id))  # type: ignore[return-value]

    @_retried
    def active_pipeline_ids(self) -> list[str]:
        """Pipelines submitted and not yet done or failed."""
        return sorted(self.redis.smembers("mr:active"))  # type: ignore[arg-type]

    @_retried
    def pipeline_ids(self) -> list[str]:
        return sorted(self.redis.smembers("mr:pipelines"))  # type: ignore[arg-type]

    @_retried
    def forget_pipeline(self, pipeline_id: str, keep_status_s: int = 7 * 24 * 3600) -> None:
        """Drop a finished pipeline's coordination keys; its status hash expires later."""
        self.redis.hset(_pipeline_key(pipeline_id), "errors", self.error_count(pipeline_id))
        self.redis.delete(*[_ended_key(pipeline_id, s) for s in Stage],
                          f"mr:mapped:{pipeline_id}", f"mr:errors:{pipeline_id}",
                          f"mr:source:{pipeline_id}")
        self.redis.expire(_pipeline_key(pipeline_id), keep_status_s)

    # ---- barriers -------------------------------------------------------------------

    @_retried
    def mark_ended(self, pipeline_id: str, stage: Stage, partition: int, total: int) -> bool:
        """Add a partition to the stage's ended set; return whether all `total` have ended."""
        key = _ended_key(pipeline_id, stage)
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(key, partition)
        pipe.smembers(key)
        _, members = pipe.execute()
        return set(range(total)) <= {int(m) for m in members}

    @_retried
    def has_ended(self, pipeline_id: str, stage: Stage, partition: int) -> bool:
        return bool(self.redis.sismember(_ended_key(pipeline_id, stage), str(partition)))

    @_retried
    def ended_counts(self, pipeline_id: str) -> dict[str, int]:
        pipe = self.redis.pipeline(transaction=False)
        for stage in Stage:
            pipe.scard(_ended_key(pipeline_id, stage))
        pipe.scard(f"mr:mapped:{pipeline_id}")
        pipe.scard(f"mr:errors:{pipeline_id}")
        *counts, mapped, errors = pipe.execute()
        return {**{s.value: c for s, c in zip(Stage, counts, strict=True)}, "mapped": mapped,
                "errors": errors}

    @_retried
    def add_mapped(self, pipeline_id: str, seqs: Iterable[int]) -> None:
        seqs = list(seqs)
        if seqs:
            self.redis.sadd(f"mr:mapped:{pipeline_id}", *seqs)

    # ---- errors and the source's liveness --------------------------------------------

    @_retried
    def add_error(self, pipeline_id: str, identity: str) -> int:
        """Count a failed record or key once, however often it is replayed."""
        key = f"mr:errors:{pipeline_id}"
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(key, identity)
        pipe.scard(key)
        return int(pipe.execute()[1])

    @_retried
    def error_count(self, pipeline_id: str) -> int:
        return int(self.redis.scard(f"mr:errors:{pipeline_id}"))

    @_retried
    def touch_source(self, pipeline_id: str, ttl_s: int) -> None:
        self.redis.set(f"mr:source:{pipeline_id}", time.time(), ex=ttl_s)

    @_retried
    def source_alive(self, pipeline_id: str) -> bool:
        return bool(self.redis.exists(f"mr:source:{pipeline_id}"))

    @_retried
    def clear_source(self, pipeline_id: str) -> None:
        self.redis.delete(f"mr:source:{pipeline_id}")

    # ---- workers --------------------------------------------------------------------

    @_retried
    def heartbeat(self, worker_id: str, fields: dict[str, Any]) -> None:
        key = f"mr:worker:{worker_id}"
        pipe = self.redis.pipeline(transaction=True)
        # Redis's clock, not the worker's: workers on other hosts may disagree on the time.
        pipe.hset(key, mapping=_fields({**fields, "last_seen": self.now()}))
        pipe.expire(key, WORKER_TTL_S)
        pipe.execute()

    @_retried
    def now(self) -> float:
        seconds, micros = self.redis.time()
        return seconds + micros / 1e6

    @_retried
    def remove_worker(self, worker_id: str) -> None:
        self.redis.delete(f"mr:worker:{worker_id}")

    @_retried
    def workers(self) -> list[dict[str, str]]:
        keys = sorted(self.redis.scan_iter("mr:worker:*", count=500))
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return [{"id": k.split(":", 2)[2], **v} for k, v in zip(keys, pipe.execute(), strict=True)
                if v]
