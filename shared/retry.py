"""Named retry policies (tenacity). Each logs before it sleeps and says what it gave up on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

log = structlog.get_logger("retry")
T = TypeVar("T")

# Backoff between attempts of one resubscription step: quick first retries (a broker that
# is mid-election answers within a second), capped so a long outage is polled every 5 s.
STEP_BACKOFF = wait_exponential(multiplier=0.2, min=0.2, max=5)


def step_backoff_seconds(attempt: int) -> float:
    """The wait before attempt `attempt` (2, 3, ...) of a resubscription step."""
    state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = max(1, attempt - 1)
    return float(STEP_BACKOFF(state))


def _before_sleep(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying", what=what, attempt=state.attempt_number, error=str(exc),
            sleep=round(state.next_action.sleep, 2) if state.next_action else None,
        )

    return before_sleep


def until_deadline(
    what: str, fn: Callable[[], T], *, seconds: float, on: tuple[type[BaseException], ...]
) -> T:
    """Call fn until it succeeds or `seconds` pass; then re-raise its last error."""
    retrying = Retrying(
        stop=stop_after_delay(seconds),
        wait=wait_exponential(multiplier=0.1, max=2),
        retry=retry_if_exception_type(on),
        before_sleep=_before_sleep(what),
        reraise=True,
    )
    result: Any = retrying(fn)
    return result  # type: ignore[no-any-return]


# Redis briefly unreachable (restart, failover): retry each coordination call for up to
# 60 s. Every call in shared/store/ is idempotent, so repeating one is safe.
REDIS_OUTAGE_S = 60.0


def redis_calls(exceptions: tuple[type[BaseException], ...]) -> Retrying:
    return Retrying(
        stop=stop_after_delay(REDIS_OUTAGE_S),
        wait=wait_exponential(multiplier=0.1, max=2),
        retry=retry_if_exception_type(exceptions),
        before_sleep=_before_sleep("redis call"),
        reraise=True,
    )
