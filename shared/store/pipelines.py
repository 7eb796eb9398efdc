"""A pipeline's status: its state, its figures, and the cleanup once it has ended.

States: submitted -> running -> [finalizing ->] done, or failed from any but finalizing.
`finalizing` is the sink's claim that the output is complete and being renamed into place:
from then on the job can only end done (or failed by the sink itself, if the output cannot
be written), so a job is never reported failed with a finished output.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from mapreduce_kafka.shared.barrier import Stage
from mapreduce_kafka.shared.store import keys
from mapreduce_kafka.shared.store.claims import ClaimHeld
from mapreduce_kafka.shared.store.connection import (
    Connection,
    FieldValue,
    hash_fields,
    retried,
)
from mapreduce_kafka.shared.store.counters import summed

TERMINAL = ("done", "failed")
FINALIZING = "finalizing"

# Finish a pipeline once: the first terminal state wins, later ones are ignored. A failure
# does not override the sink's finalizing claim unless forced (by the sink itself). The
# names it claimed (claims.py) are released with the state, kept pipeline or not. It joins
# mr:finishing until its cleanup is done, kept or not: a kept pipeline is tombstoned too,
# or every mapper and reducer would hold a consumer slot for it for good.
_FINISH = """
local s = redis.call('HGET', KEYS[1], 'state')
if s == 'done' or s == 'failed' then return s end
if s == 'finalizing' and ARGV[1] == 'failed' and ARGV[5] ~= '1' then return s end
redis.call('SREM', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2], 'finished', ARGV[3])
local claims = redis.call('HGET', KEYS[1], 'claims')
if claims then
  for _, key in ipairs(cjson.decode(claims)) do
    if redis.call('GET', key) == ARGV[4] then redis.call('DEL', key) end
  end
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return ARGV[1]
"""

# The sink's claim before it renames the staging directory (see the module's docstring).
_CLAIM_FINALIZING = """
local s = redis.call('HGET', KEYS[1], 'state')
if s == 'done' or s == 'failed' or not s then return s or 'gone' end
redis.call('HSET', KEYS[1], 'state', 'finalizing')
return 'finalizing'
"""

# Fields written only while the pipeline is active (progress figures, the running state).
_SET_IF_ACTIVE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[2], 'state') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
return 1
"""

# Register a pipeline in one step: the status hash, the sets `status` and the dispatcher's
# dead-source watchdog read, and its claims (KEYS[4..], claims.py). Done as separate calls,
# a source killed between them left a pipeline no watchdog could see. A retried call with
# our token is success. A claim held by another active pipeline refuses the registration,
# before anything is written: {claim, holder}.
_CREATE = """
local token = redis.call('HGET', KEYS[1], 'token')
if token and token ~= ARGV[1] then return 0 end
local claims = {}
for i = 4, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder and holder ~= ARGV[2] and redis.call('SISMEMBER', KEYS[3], holder) == 1 then
    return {KEYS[i], holder}
  end
  claims[#claims + 1] = KEYS[i]
end
for _, key in ipairs(claims) do redis.call('SET', key, ARGV[2]) end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'claims', cjson.encode(claims), unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""


class Pipelines(Connection):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._finish = self.redis.register_script(_FINISH)
        self._create = self.redis.register_script(_CREATE)
        self._claim = self.redis.register_script(_CLAIM_FINALIZING)
        self._set_if_active = self.redis.register_script(_SET_IF_ACTIVE)

    @retried
    def create_pipeline(self, pipeline_id: str, fields: dict[str, Any],
                        claims: Sequence[str] = ()) -> bool:
        """Register a new pipeline holding `claims` (claims.py); False if the id is already
        taken, ClaimHeld if another active pipeline holds one of the claims."""
        token = fields.setdefault("token", uuid.uuid4().hex)  # same token if the call is retried
        values = hash_fields({"state": "submitted", **fields, "submitted": time.time()})
        values.pop("token")
        flat = [x for kv in values.items() for x in kv]
        result = self._durably(lambda client: self._create(
            keys=[keys.pipeline(pipeline_id), keys.PIPELINES, keys.ACTIVE, *claims],
            args=[token, pipeline_id, *flat], client=client))
        if isinstance(result, list):
            raise ClaimHeld(*result)
        return bool(result)

    @retried
    def update_pipeline(self, pipeline_id: str, *, if_state: str = "", **fields: Any) -> bool:
        """Set fields of an active pipeline (and only if its state is `if_state`, when
        given); False when it is no longer active (or in another state)."""
        flat = [x for kv in hash_fields(fields).items() for x in kv]
        return bool(self._durably(lambda client: self._set_if_active(
            keys=[keys.ACTIVE, keys.pipeline(pipeline_id)], args=[pipeline_id, if_state, *flat],
            client=client)))

    @retried
    def finish_pipeline(self, pipeline_id: str, state: str, reason: str = "",
                        force: bool = False) -> str:
        """Move to a terminal state once; return the state that holds (a refused failure
        returns `finalizing`: the sink is putting a complete output in place)."""
        assert state in TERMINAL
        return str(self._durably(lambda client: self._finish(
            keys=[keys.pipeline(pipeline_id), keys.ACTIVE, keys.FINISHING],
            args=[state, reason, time.time(), pipeline_id, "1" if force else "0"],
            client=client)))

    @retried
    def claim_finalizing(self, pipeline_id: str) -> str:
        """The sink's claim before it puts the output in place: `finalizing` when granted
        (or already held), else the terminal state (or `gone`) that holds."""
        return str(self._durably(lambda client: self._claim(
            keys=[keys.pipeline(pipeline_id)], client=client)))

    @retried
    def pipeline(self, pipeline_id: str) -> dict[str, str]:
        return self.redis.hgetall(keys.pipeline(pipeline_id))  # type: ignore[return-value]

    @retried
    def states(self, pipeline_ids: Iterable[str]) -> dict[str, str]:
        """The state of each pipeline ("" once its status is gone), in one round trip."""
        ids = list(pipeline_ids)
        pipe = self.redis.pipeline(transaction=False)
        for pipeline_id in ids:
            pipe.hget(keys.pipeline(pipeline_id), "state")
        return {pid: state or "" for pid, state in zip(ids, pipe.execute(), strict=True)}

    @retried
    def kept(self, pipeline_ids: Iterable[str]) -> set[str]:
        """The pipelines submitted with --keep (whose status is still there), in one round
        trip."""
        ids = list(pipeline_ids)
        pipe = self.redis.pipeline(transaction=False)
        for pipeline_id in ids:
            pipe.hget(keys.pipeline(pipeline_id), "keep")
        return {pid for pid, keep in zip(ids, pipe.execute(), strict=True) if keep == "1"}

    @retried
    def active_pipeline_ids(self) -> list[str]:
        """Pipelines submitted and not yet done or failed."""
        return sorted(self.redis.smembers(keys.ACTIVE))  # type: ignore[arg-type]

    @retried
    def pipeline_ids(self) -> list[str]:
        """Every pipeline whose status is still kept; ids whose status expired are pruned."""
        ids: list[str] = sorted(self.redis.smembers(keys.PIPELINES))  # type: ignore[arg-type]
        pipe = self.redis.pipeline(transaction=False)
        for pipeline_id in ids:
            pipe.exists(keys.pipeline(pipeline_id))
        gone = [pid for pid, exists in zip(ids, pipe.execute(), strict=True) if not exists]
        if gone:
            self.redis.srem(keys.PIPELINES, *gone)
        return [pid for pid in ids if pid not in set(gone)]

    @retried
    def ended_counts(self, pipeline_id: str, step: int = 0) -> dict[str, int]:
        """The live figures: partitions ended at each stage (of `step`), frames mapped,
        errors."""
        pipe = self.redis.pipeline(transaction=False)
        for stage in Stage:
            pipe.scard(keys.ended(pipeline_id, stage, step))
        pipe.scard(keys.mapped(pipeline_id))
        pipe.scard(keys.errors(pipeline_id))
        *counts, mapped, errors = pipe.execute()
        return {**{s.value: c for s, c in zip(Stage, counts, strict=True)}, "mapped": mapped,
                "errors": errors}

    @retried
    def finishing(self, older_than_s: float) -> list[str]:
        """Pipelines that ended at least `older_than_s` ago and whose cleanup is not done:
        whoever ended them died before finishing it."""
        return sorted(self.redis.zrangebyscore(  # type: ignore[arg-type]
            keys.FINISHING, "-inf", time.time() - older_than_s))

    @retried
    def forget_pipeline(self, pipeline_id: str, keep_status_s: int = 7 * 24 * 3600) -> None:
        """Drop a finished pipeline's coordination keys, keeping its final figures in its
        status hash, which expires later. A kept pipeline (--keep) keeps its keys and its
        status for good, to be looked at: no worker reads them once it has ended, and its
        writes are refused (the pipeline is no longer active)."""
        counts = self.ended_counts(pipeline_id)
        status = self.pipeline(pipeline_id)
        kept = status.get("keep") == "1"
        counted = self.redis.hgetall(keys.counters(pipeline_id))

        def forget(client: Any) -> Any:
            if status:
                final: dict[str, FieldValue] = {f"final.{name}": count
                                                for name, count in counts.items()}
                final["errors"] = max(counts["errors"], int(status.get("errors") or 0))
                if counted:
                    final["counters"] = orjson.dumps(summed(counted)).decode()  # type: ignore[arg-type]
                client.hset(keys.pipeline(pipeline_id), mapping=final)
                if not kept:
                    client.expire(keys.pipeline(pipeline_id), keep_status_s)
            if not kept:
                client.delete(*keys.coordination(pipeline_id,
                                                 int(status.get("steps") or 1)))
            # last: a pipeline stays on the list until all of the above is done (whoever
            # finds it there does it again; every step is idempotent)
            return client.zrem(keys.FINISHING, pipeline_id)

        self._durably(forget)
