"""The end-of-stream barriers (shared/barrier.py) and the mapped-frame progress set: sets,
so that a replayed mark counts once."""

from __future__ import annotations

import time
from collections.abc import Iterable

from mapreduce_kafka.shared.barrier import Stage, is_complete
from mapreduce_kafka.shared.store import keys
from mapreduce_kafka.shared.store.connection import Connection, retried

# A barrier mark: Connection's add-if-active SADD, and when the set is full the first time,
# the time the stage completed in the pipeline's status (its timeline: `status`, the
# dashboard).
_MARK_ENDED = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return false end
redis.call('SADD', KEYS[2], ARGV[2])
local members = redis.call('SMEMBERS', KEYS[2])
if #members >= tonumber(ARGV[3]) then redis.call('HSETNX', KEYS[3], ARGV[4], ARGV[5]) end
return members
"""


class Barriers(Connection):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._mark_ended = self.redis.register_script(_MARK_ENDED)

    @retried
    def mark_ended(self, pipeline_id: str, stage: Stage, partition: int, total: int,
                   step: int = 0) -> bool:
        """Add a partition to the stage's ended set (of the pipeline's `step`); return
        whether all `total` have ended. A pipeline that is no longer active is never
        complete (and nothing is written)."""
        completed = f"completed.{stage.value}" + (f".{step}" if step else "")
        members = self._durably(lambda client: self._mark_ended(
            keys=[keys.ACTIVE, keys.ended(pipeline_id, stage, step),
                  keys.pipeline(pipeline_id)],
            args=[pipeline_id, partition, total, completed, time.time()],
            client=client))
        return members is not None and is_complete(map(int, members), total)

    @retried
    def stage_complete(self, pipeline_id: str, stage: Stage, total: int,
                       step: int = 0) -> bool:
        """Whether every partition of a stage has ended (for a replayed end marker: the
        hand-off after a complete stage is sent again by whoever finds it complete)."""
        members = self.redis.smembers(keys.ended(pipeline_id, stage, step))
        return is_complete(map(int, members), total)  # type: ignore[arg-type]

    @retried
    def current_step(self, pipeline_id: str, steps: int, partitions: int) -> int:
        """The step a pipeline of several is at: the first whose sink barrier is not
        complete (the last, once all are)."""
        if steps <= 1:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for step in range(steps - 1):
            pipe.smembers(keys.ended(pipeline_id, Stage.SINK, step))
        for step, members in enumerate(pipe.execute()):
            if not is_complete(map(int, members), partitions):
                return step
        return steps - 1

    @retried
    def has_ended(self, pipeline_id: str, stage: Stage, partition: int, step: int = 0) -> bool:
        return bool(self.redis.sismember(keys.ended(pipeline_id, stage, step), str(partition)))

    @retried
    def add_mapped(self, pipeline_id: str, seqs: Iterable[int]) -> None:
        seqs = list(seqs)
        if seqs:
            self._add_if_active(keys=[keys.ACTIVE, keys.mapped(pipeline_id)],
                                args=[pipeline_id, "count", *seqs])
