"""The coordination store in Redis: pipeline status, end-of-stream barriers, worker
heartbeats. Redis holds coordination only, never data.

Keys (all under ``mr:``):
  mr:pipelines                  set of pipeline ids, for `status`
  mr:active                     set of pipeline ids not yet done or failed
  mr:finishing                  sorted set (by end time) of pipelines done or failed whose
                                cleanup (tombstone, keys) is not finished: see lifecycle
  mr:staging                    pipelines whose sink created a staging directory
  mr:pipeline:<id>              hash: state, reason, output, partitions, frames, times
                                (submitted, ready, sent, completed.<stage>, finished)
  mr:ended:<id>:<stage>         set of partitions that ended at that stage (the barrier)
  mr:mapped:<id>                set of source frame numbers mapped (progress, idempotent)
  mr:errors:<id>                set of identities of records or keys that failed
  mr:worker:<worker-id>         hash: role, host, pid, partitions, last_seen (expires)

States: submitted -> running -> [finalizing ->] done, or failed from any but finalizing.
`finalizing` is the sink's claim that the output is complete and being renamed into place:
from then on the job can only end done (or failed by the sink itself, if the output cannot
be written), so a job is never reported failed with a finished output.

Every write about a pipeline (a barrier mark, progress, an error) is made only while the
pipeline is active: a late mark from a zombie worker cannot recreate the keys of a
pipeline that was already forgotten.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis

from mapreduce_kafka.shared import redis_client, retry
from mapreduce_kafka.shared.barrier import Stage, is_complete
from mapreduce_kafka.shared.config import redacted
from mapreduce_kafka.shared.errors import ConnectionFailed

TERMINAL = ("done", "failed")
FINALIZING = "finalizing"

# Finish a pipeline once: the first terminal state wins, later ones are ignored. A failure
# does not override the sink's finalizing claim unless forced (by the sink itself). Unless
# the pipeline is kept, it joins mr:finishing until its cleanup is done.
_FINISH = """
local s = redis.call('HGET', KEYS[1], 'state')
if s == 'done' or s == 'failed' then return s end
if s == 'finalizing' and ARGV[1] == 'failed' and ARGV[5] ~= '1' then return s end
redis.call('SREM', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2], 'finished', ARGV[3])
if redis.call('HGET', KEYS[1], 'keep') ~= '1' then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
end
return ARGV[1]
"""

# The sink's claim before it renames the staging directory (see the module's docstring).
_CLAIM_FINALIZING = """
local s = redis.call('HGET', KEYS[1], 'state')
if s == 'done' or s == 'failed' or not s then return s or 'gone' end
redis.call('HSET', KEYS[1], 'state', 'finalizing')
return 'finalizing'
"""

# A write about an active pipeline: SADD members to a set of it and return the set's
# members (ARGV[2] == 'members') or its size, or nothing (nil) when the pipeline is no
# longer active.
_ADD_IF_ACTIVE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return false end
redis.call('SADD', KEYS[2], unpack(ARGV, 3))
if ARGV[2] == 'members' then return redis.call('SMEMBERS', KEYS[2]) end
return redis.call('SCARD', KEYS[2])
"""

# A barrier mark: _ADD_IF_ACTIVE's SADD, and when the set is full the first time, the time
# the stage completed in the pipeline's status (its timeline: `status`, the dashboard).
_MARK_ENDED = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return false end
redis.call('SADD', KEYS[2], ARGV[2])
local members = redis.call('SMEMBERS', KEYS[2])
if #members >= tonumber(ARGV[3]) then redis.call('HSETNX', KEYS[3], ARGV[4], ARGV[5]) end
return members
"""

# Fields written only while the pipeline is active (progress figures, the running state).
_SET_IF_ACTIVE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[2], 'state') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
return 1
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


class NotReplicated(redis.TimeoutError):
    """A write the primary took but too few replicas confirmed in time: it is not counted
    as done (it is retried, and it is idempotent)."""


F = TypeVar("F", bound=Callable[..., Any])
# NotReplicated is a TimeoutError: retried like an outage.
_TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
# How long a write waits for its replicas before it is retried.
WAIT_TIMEOUT_MS = 2_000


def _retried(fn: F) -> F:
    """Retry a coordination call through a Redis outage (named policy in shared/retry)."""

    def attempt(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.ResponseError as exc:
            # A primary without a replica in touch refuses writes (min-replicas-to-write):
            # just after a failover, until the other replica follows the new primary.
            if str(exc).startswith("NOREPLICAS"):
                raise NotReplicated(str(exc)) from exc
            raise

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return retry.redis_calls(_TRANSIENT)(attempt, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _pipeline_key(pipeline_id: str) -> str:
    return f"mr:pipeline:{pipeline_id}"


def _ended_key(pipeline_id: str, stage: Stage) -> str:
    return f"mr:ended:{pipeline_id}:{stage.value}"


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.target = redis_client.parse(url)
        self.redis = redis_client.connect(self.target)
        self._finish = self.redis.register_script(_FINISH)
        self._create = self.redis.register_script(_CREATE)
        self._claim = self.redis.register_script(_CLAIM_FINALIZING)
        self._add_if_active = self.redis.register_script(_ADD_IF_ACTIVE)
        self._mark_ended = self.redis.register_script(_MARK_ENDED)
        self._set_if_active = self.redis.register_script(_SET_IF_ACTIVE)

    def _durably(self, write: Callable[[Any], Any]) -> Any:
        """Run `write` against a client and return the result of its last command; with
        replicas to wait for, its commands and a WAIT go down one connection (WAIT counts
        that connection's writes) and the write counts only once enough replicas hold it."""
        wanted = self.target.wait_replicas
        if not wanted:
            return write(self.redis)
        pipe = self.redis.pipeline(transaction=False)
        write(pipe)
        pipe.wait(wanted, WAIT_TIMEOUT_MS)
        *results, acknowledged = pipe.execute()
        result = results[-1] if results else None
        if acknowledged < wanted:
            raise NotReplicated(f"a coordination write reached {acknowledged} of the "
                                f"{wanted} replicas it must reach in {WAIT_TIMEOUT_MS} ms")
        return result

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
        return bool(self._durably(lambda client: self._create(
            keys=[_pipeline_key(pipeline_id), "mr:pipelines", "mr:active"],
            args=[token, pipeline_id, *flat], client=client)))

    @_retried
    def update_pipeline(self, pipeline_id: str, *, if_state: str = "", **fields: Any) -> bool:
        """Set fields of an active pipeline (and only if its state is `if_state`, when
        given); False when it is no longer active (or in another state)."""
        flat = [x for kv in _fields(fields).items() for x in kv]
        return bool(self._durably(lambda client: self._set_if_active(
            keys=["mr:active", _pipeline_key(pipeline_id)], args=[pipeline_id, if_state, *flat],
            client=client)))

    @_retried
    def finish_pipeline(self, pipeline_id: str, state: str, reason: str = "",
                        force: bool = False) -> str:
        """Move to a terminal state once; return the state that holds (a refused failure
        returns `finalizing`: the sink is putting a complete output in place)."""
        assert state in TERMINAL
        return str(self._durably(lambda client: self._finish(
            keys=[_pipeline_key(pipeline_id), "mr:active", "mr:finishing"],
            args=[state, reason, time.time(), pipeline_id, "1" if force else "0"],
            client=client)))

    @_retried
    def claim_finalizing(self, pipeline_id: str) -> str:
        """The sink's claim before it puts the output in place: `finalizing` when granted
        (or already held), else the terminal state (or `gone`) that holds."""
        return str(self._durably(lambda client: self._claim(
            keys=[_pipeline_key(pipeline_id)], client=client)))

    @_retried
    def pipeline(self, pipeline_id: str) -> dict[str, str]:
        return self.redis.hgetall(_pipeline_key(pipeline_id))  # type: ignore[return-value]

    @_retried
    def states(self, pipeline_ids: Iterable[str]) -> dict[str, str]:
        """The state of each pipeline ("" once its status is gone), in one round trip."""
        ids = list(pipeline_ids)
        pipe = self.redis.pipeline(transaction=False)
        for pipeline_id in ids:
            pipe.hget(_pipeline_key(pipeline_id), "state")
        return {pid: state or "" for pid, state in zip(ids, pipe.execute(), strict=True)}

    @_retried
    def active_pipeline_ids(self) -> list[str]:
        """Pipelines submitted and not yet done or failed."""
        return sorted(self.redis.smembers("mr:active"))  # type: ignore[arg-type]

    @_retried
    def pipeline_ids(self) -> list[str]:
        """Every pipeline whose status is still kept; ids whose status expired are pruned."""
        ids: list[str] = sorted(self.redis.smembers("mr:pipelines"))  # type: ignore[arg-type]
        pipe = self.redis.pipeline(transaction=False)
        for pipeline_id in ids:
            pipe.exists(_pipeline_key(pipeline_id))
        gone = [pid for pid, exists in zip(ids, pipe.execute(), strict=True) if not exists]
        if gone:
            self.redis.srem("mr:pipelines", *gone)
        return [pid for pid in ids if pid not in set(gone)]

    @_retried
    def finishing(self, older_than_s: float) -> list[str]:
        """Pipelines that ended at least `older_than_s` ago and whose cleanup is not done:
        whoever ended them died before finishing it."""
        return sorted(self.redis.zrangebyscore(  # type: ignore[arg-type]
            "mr:finishing", "-inf", time.time() - older_than_s))

    @_retried
    def forget_pipeline(self, pipeline_id: str, keep_status_s: int = 7 * 24 * 3600) -> None:
        """Drop a finished pipeline's coordination keys, keeping its final figures in its
        status hash, which expires later."""
        counts = self.ended_counts(pipeline_id)
        status = self.pipeline(pipeline_id)

        def forget(client: Any) -> Any:
            if status:
                final: dict[str, FieldValue] = {f"final.{name}": count
                                                for name, count in counts.items()}
                final["errors"] = max(counts["errors"], int(status.get("errors") or 0))
                client.hset(_pipeline_key(pipeline_id), mapping=final)
                client.expire(_pipeline_key(pipeline_id), keep_status_s)
            client.delete(*[_ended_key(pipeline_id, s) for s in Stage],
                          f"mr:mapped:{pipeline_id}", f"mr:errors:{pipeline_id}",
                          f"mr:source:{pipeline_id}")
            # last: a pipeline stays on the list until all of the above is done (whoever
            # finds it there does it again; every step is idempotent)
            return client.zrem("mr:finishing", pipeline_id)

        self._durably(forget)

    # ---- barriers -------------------------------------------------------------------

    @_retried
    def mark_ended(self, pipeline_id: str, stage: Stage, partition: int, total: int) -> bool:
        """Add a partition to the stage's ended set; return whether all `total` have ended.
        A pipeline that is no longer active is never complete (and nothing is written)."""
        members = self._durably(lambda client: self._mark_ended(
            keys=["mr:active", _ended_key(pipeline_id, stage), _pipeline_key(pipeline_id)],
            args=[pipeline_id, partition, total, f"completed.{stage.value}", time.time()],
            client=client))
        return members is not None and is_complete(map(int, members), total)

    @_retried
    def stage_complete(self, pipeline_id: str, stage: Stage, total: int) -> bool:
        """Whether every partition of a stage has ended (for a replayed end marker: the
        hand-off after a complete stage is sent again by whoever finds it complete)."""
        members = self.redis.smembers(_ended_key(pipeline_id, stage))
        return is_complete(map(int, members), total)  # type: ignore[arg-type]

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
            self._add_if_active(keys=["mr:active", f"mr:mapped:{pipeline_id}"],
                                args=[pipeline_id, "count", *seqs])

    # ---- errors and the source's liveness --------------------------------------------

    @_retried
    def add_error(self, pipeline_id: str, identity: str) -> int:
        """Count a failed record or key once, however often it is replayed (0 once the
        pipeline is no longer active)."""
        count = self._durably(lambda client: self._add_if_active(
            keys=["mr:active", f"mr:errors:{pipeline_id}"], args=[pipeline_id, "count", identity],
            client=client))
        return int(count or 0)

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

    # ---- staging directories ---------------------------------------------------------

    @_retried
    def add_staging(self, pipeline_id: str) -> None:
        self._durably(lambda client: client.sadd("mr:staging", pipeline_id))

    @_retried
    def staging_ids(self) -> list[str]:
        return sorted(self.redis.smembers("mr:staging"))  # type: ignore[arg-type]

    @_retried
    def remove_staging(self, pipeline_id: str) -> None:
        self.redis.srem("mr:staging", pipeline_id)

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

    def held_partitions(self) -> set[str]:
        """The partitions (`TOPIC[p]`) that workers still beating report holding."""
        now = self.now()
        return {p for w in self.workers() if now - float(w.get("last_seen") or 0) <= SILENT_AFTER_S
                for p in (w.get("partitions") or "").split(",") if p}

    @_retried
    def workers(self) -> list[dict[str, str]]:
        keys = sorted(self.redis.scan_iter("mr:worker:*", count=500))
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return [{"id": k.split(":", 2)[2], **v} for k, v in zip(keys, pipe.execute(), strict=True)
                if v]
