"""A job's counters (shared/task_context.py): one hash field per task that counted, named
by the task's identity, so that a replayed task overwrites its first attempt's counts
instead of adding to them. A mapper's task is a frame (`m<step>:<frame>`); a reducer's
counts reach the sink with its results, are de-duplicated there per key like them, and are
written per part (`r<step>:<part>`). The job's counters are the sum of the fields; once it
has ended they are kept in its status hash (`counters`, JSON), as its other figures are."""

from __future__ import annotations

from typing import Any

import orjson

from mapreduce_kafka.shared import task_context
from mapreduce_kafka.shared.store import keys
from mapreduce_kafka.shared.store.connection import Connection, retried
from mapreduce_kafka.shared.task_context import Counters

# HSET while the pipeline is active (a zombie's late write cannot recreate the hash)
_COUNTERS_IF_ACTIVE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
"""


def task_field(role: str, step: int, number: int) -> str:
    """The hash field of one task: a mapper's frame (role "m") or a sink's part ("r")."""
    return f"{role}{step}:{number}"


def summed(fields: dict[Any, Any]) -> Counters:
    """The job's counters from its hash's fields (JSON values)."""
    return task_context.total([orjson.loads(value) for value in fields.values()])


class JobCounters(Connection):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._counters_if_active = self.redis.register_script(_COUNTERS_IF_ACTIVE)

    @retried
    def record_counters(self, pipeline_id: str, task: str, counters: Counters) -> None:
        """A task's counters, replacing what an earlier attempt of the task recorded."""
        if counters:
            self._durably(lambda client: self._counters_if_active(
                keys=[keys.ACTIVE, keys.counters(pipeline_id)],
                args=[pipeline_id, task, orjson.dumps(counters)], client=client))

    @retried
    def counters(self, pipeline_id: str, info: dict[str, str] | None = None) -> Counters:
        """The job's counters: summed from its tasks while they are kept, else the total
        kept in its status once it ended (`info`: that status, when the caller has it)."""
        fields = self.redis.hgetall(keys.counters(pipeline_id))
        if fields:
            return summed(fields)  # type: ignore[arg-type]
        if info is None:
            info = self.redis.hgetall(keys.pipeline(pipeline_id))  # type: ignore[assignment]
        kept = (info or {}).get("counters")
        return orjson.loads(kept) if kept else {}
