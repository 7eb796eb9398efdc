"""The failure budget's count: how often a pipeline's task took a worker down (it raised
past every guard, or ran over its time limit), kept in its status hash with the last
reason and where it happened, so that every worker and `status` see the same count."""

from __future__ import annotations

from mapreduce_kafka.shared.store import keys
from mapreduce_kafka.shared.store.connection import Connection, retried

# Only while the pipeline is active (a late charge must not recreate a forgotten status).
_CHARGE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
local count = redis.call('HINCRBY', KEYS[2], 'charges', 1)
redis.call('HSET', KEYS[2], 'charge.reason', ARGV[2], 'charge.where', ARGV[3])
return count
"""


class Charges(Connection):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._charge = self.redis.register_script(_CHARGE)

    @retried
    def charge(self, pipeline_id: str, reason: str, where: str) -> int:
        """Count one charge against an active pipeline; its charges so far (0 once it is
        no longer active)."""
        return int(self._durably(lambda client: self._charge(
            keys=[keys.ACTIVE, keys.pipeline(pipeline_id)], args=[pipeline_id, reason, where],
            client=client)) or 0)
