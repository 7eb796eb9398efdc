"""The store's Redis connection and the rules every coordination call follows: retried
through an outage, durable on the replicas the URL asks for, and, for a write about a
pipeline, made only while the pipeline is active."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from mapreduce_kafka.shared import redis_client, retry
from mapreduce_kafka.shared.errors import ConnectionFailed
from mapreduce_kafka.shared.redis_client import redacted

# A write about an active pipeline: SADD members to a set of it and return the set's
# members (ARGV[2] == 'members') or its size, or nothing (nil) when the pipeline is no
# longer active.
_ADD_IF_ACTIVE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return false end
redis.call('SADD', KEYS[2], unpack(ARGV, 3))
if ARGV[2] == 'members' then return redis.call('SMEMBERS', KEYS[2]) end
return redis.call('SCARD', KEYS[2])
"""

FieldValue = str | int | float


def hash_fields(values: dict[str, Any]) -> dict[Any, FieldValue]:
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


def retried(fn: F) -> F:
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


class Connection:
    def __init__(self, url: str) -> None:
        self.url = url
        self.target = redis_client.parse(url)
        self.redis = redis_client.connect(self.target)
        self._add_if_active = self.redis.register_script(_ADD_IF_ACTIVE)

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

    @retried
    def now(self) -> float:
        """Redis's clock, not this host's: workers on other hosts may disagree on the time."""
        seconds, micros = self.redis.time()
        return seconds + micros / 1e6
