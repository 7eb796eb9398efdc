"""The runner of the resubscribe state machine (shared/resubscribe.py) for the `reconnect`
strategy: it performs the machine's steps on a real consumer and feeds back the outcome.

Strategies share one interface: `consumer` (the live consumer or None), `topics_changed()`
and `close()`, so that others (in-place subscribe, KIP-848, regex) can sit behind it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import structlog
from confluent_kafka import Consumer

from services.producer import DeliveryFailed
from shared import retry
from shared.resubscribe import (
    Command,
    GiveUp,
    Resubscription,
    RunStep,
    Step,
    StepFailed,
    StepSucceeded,
    TopicsChanged,
    Transitioned,
)

log = structlog.get_logger("resubscribe")


class ResubscribeGaveUp(RuntimeError):
    """A step failed every attempt: the worker exits non-zero and is restarted."""


class Strategy(Protocol):
    consumer: Consumer | None

    def topics_changed(self, topics: frozenset[str], reason: str) -> None: ...

    def close(self) -> None: ...


class ReconnectStrategy:
    """Drain, close, new consumer, subscribe: the owner's chosen shape."""

    name = "reconnect"

    def __init__(self, make_consumer: Callable[[], Consumer], drain: Callable[[], None],
                 subscribe: Callable[[Consumer, list[str]], None],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.machine = Resubscription()
        self.consumer: Consumer | None = None
        self._make_consumer = make_consumer
        self._drain = drain
        self._subscribe = subscribe
        self._sleep = sleep
        self._entered = time.monotonic()

    def topics_changed(self, topics: frozenset[str], reason: str) -> None:
        self._run(self.machine.handle(TopicsChanged(topics, reason)))

    def _run(self, commands: list[Command]) -> None:
        pending = list(commands)
        while pending:
            command = pending.pop(0)
            if isinstance(command, Transitioned):
                now = time.monotonic()
                log.info("transition", source=command.source.value, target=command.target.value,
                         reason=command.reason, duration=round(now - self._entered, 4))
                self._entered = now
            elif isinstance(command, RunStep):
                if command.attempt > 1:
                    self._sleep(retry.step_backoff_seconds(command.attempt))
                try:
                    self._perform(command)
                except DeliveryFailed:
                    # Not a step that may be tried again: output was lost, and a drain that
                    # "succeeded" next time would commit input past it. The worker restarts.
                    raise
                except Exception as exc:  # any other failure of a step is an event
                    log.warning("step failed", step=command.step.value,
                                attempt=command.attempt, error=repr(exc))
                    pending.extend(self.machine.handle(StepFailed(command.step, repr(exc))))
                else:
                    pending.extend(self.machine.handle(StepSucceeded(command.step)))
            elif isinstance(command, GiveUp):
                raise ResubscribeGaveUp(f"{command.step.value} failed: {command.error}")

    def _perform(self, command: RunStep) -> None:
        if command.step is Step.DRAIN:
            if self.consumer is not None:
                self._drain()
        elif command.step is Step.CLOSE:
            if self.consumer is not None:
                self.consumer.close()
                self.consumer = None
        elif command.step is Step.CONNECT:
            if self.consumer is None:
                self.consumer = self._make_consumer()
        elif command.step is Step.SUBSCRIBE:
            assert self.consumer is not None
            if command.topics:
                self._subscribe(self.consumer, sorted(command.topics))

    def close(self) -> None:
        if self.consumer is not None:
            self._drain()
            self.consumer.close()
            self.consumer = None


class _LiveConsumerStrategy:
    """What strategies that keep one consumer for the worker's life share."""

    consumer: Consumer | None
    _drain: Callable[[], None]

    def close(self) -> None:
        if self.consumer is not None:
            self._drain()
            self.consumer.close()
            self.consumer = None


class InPlaceStrategy(_LiveConsumerStrategy):
    """`subscribe()` again on the live consumer with the full topic list. With the classic
    protocol and cooperative-sticky assignment only the partitions that move are revoked;
    with KIP-848 (`consumer-protocol`) the broker computes the new assignment itself and
    members reconcile incrementally, without a group-wide stop."""

    def __init__(self, name: str, make_consumer: Callable[[], Consumer],
                 drain: Callable[[], None],
                 subscribe: Callable[[Consumer, list[str]], None]) -> None:
        self.name = name
        self.consumer: Consumer | None = None
        self._make_consumer = make_consumer
        self._drain = drain
        self._subscribe = subscribe
        self.subscribed: frozenset[str] = frozenset()

    def topics_changed(self, topics: frozenset[str], reason: str) -> None:
        if topics == self.subscribed:
            return
        started = time.monotonic()
        if self.consumer is None:
            self.consumer = self._make_consumer()
        else:
            self._drain()  # everything processed is committed before partitions move
        if topics:
            self._subscribe(self.consumer, sorted(topics))
        else:
            # With KIP-848, a subscribe() soon after this sometimes gets a fatal
            # INVALID_REQUEST from the coordinator (1 benchmark job in 3); the worker then
            # restarts (services/runtime.py). The alternatives tried were worse: keeping the
            # finished topics subscribed left a reducer's next assignment stuck for 5
            # minutes, and closing the consumer made static members fail to rejoin.
            self.consumer.unsubscribe()
        self.subscribed = topics
        log.info("resubscribed", strategy=self.name, reason=reason, topics=len(topics),
                 duration=round(time.monotonic() - started, 4))



class RegexStrategy(_LiveConsumerStrategy):
    """One subscription to `^<PREFIX>.*` for the worker's whole life: the client notices new
    and deleted topics on its metadata refresh, and the group rebalances (cooperatively)
    without the worker doing anything. Records of a pipeline whose spec is not in the view
    yet are fine: the view reads to the end of PIPELINES when it meets an unknown id."""

    name = "regex"

    def __init__(self, pattern: str, make_consumer: Callable[[], Consumer],
                 drain: Callable[[], None],
                 subscribe: Callable[[Consumer, list[str]], None]) -> None:
        self.consumer: Consumer | None = make_consumer()
        self._drain = drain
        subscribe(self.consumer, [pattern])

    def topics_changed(self, topics: frozenset[str], reason: str) -> None:
        """Nothing to do: the subscription already covers every topic of the role."""



# Regex subscriptions see new topics on the metadata refresh: its period bounds pickup.
REGEX_METADATA_REFRESH_MS = 1000


def consumer_overrides(strategy: str) -> dict[str, object]:
    """librdkafka settings each strategy needs (merged by Settings.consumer_config)."""
    if strategy == "reconnect":
        return {"assignor": "roundrobin"}
    if strategy == "in-place":
        return {"assignor": "cooperative-sticky"}
    if strategy == "consumer-protocol":
        return {"protocol": "consumer"}
    if strategy == "regex":
        return {"assignor": "cooperative-sticky",
                "topic.metadata.refresh.interval.ms": REGEX_METADATA_REFRESH_MS}
    raise ValueError(f"unknown resubscribe strategy {strategy!r}")


def build_strategy(strategy: str, prefix: str, make_consumer: Callable[[], Consumer],
                   drain: Callable[[], None],
                   subscribe: Callable[[Consumer, list[str]], None]) -> Strategy:
    if strategy == "reconnect":
        return ReconnectStrategy(make_consumer, drain, subscribe)
    if strategy in ("in-place", "consumer-protocol"):
        return InPlaceStrategy(strategy, make_consumer, drain, subscribe)
    if strategy == "regex":
        return RegexStrategy(f"^{prefix}.*", make_consumer, drain, subscribe)
    raise ValueError(f"unknown resubscribe strategy {strategy!r}")
