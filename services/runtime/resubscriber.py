"""How mappers and reducers follow the set of live pipelines: the strategies.

Strategies share one interface (Strategy): the consumers to poll, the consumer that owns
a topic (to commit its offsets), `topics_changed()` with the live topics in the order their
pipelines became ready, `on_assigned()`, and `close()`. `reconnect` runs the resubscribe
state machine (shared/resubscribe.py) on one consumer; `in-place`, `consumer-protocol` and
`regex` keep one consumer for the worker's life; `group-per-pipeline` holds one consumer
per live pipeline, each in its own group (shared/pipeline_groups.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, assert_never

import structlog
from confluent_kafka import Consumer, KafkaException

from mapreduce_kafka.services.runtime.producer import DeliveryFailed
from mapreduce_kafka.shared import resubscribe_strategies, retry
from mapreduce_kafka.shared.pipeline_groups import (
    DEFAULT_CAPACITY,
    Assigned,
    Close,
    Closed,
    Drain,
    Drained,
    Open,
    PipelineGroups,
    PipelinesChanged,
)
from mapreduce_kafka.shared.pipeline_groups import Command as GroupCommand
from mapreduce_kafka.shared.pipeline_groups import State as GroupState
from mapreduce_kafka.shared.pipeline_groups import Transitioned as GroupTransitioned
from mapreduce_kafka.shared.resubscribe import (
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
from mapreduce_kafka.shared.resubscribe_strategies import Shape

log = structlog.get_logger("resubscribe")


class ResubscribeGaveUp(RuntimeError):
    """A step failed every attempt: the worker exits non-zero and is restarted."""


class Strategy(Protocol):
    name: str
    # whether a burst of pipeline changes is waited out first, so that it costs one
    # rebalance (strategies whose consumers rejoin one group on every change)
    coalesce: bool
    # whether consumers take short turns (a consumer per pipeline, served in rounds)
    fair_share: bool
    # whether a revocation first flushes every output and commits (one consumer serves
    # every pipeline: fewer replays), or only commits what is durable already
    drain_on_revoke: bool

    def consumers(self) -> list[Consumer]: ...

    def consumer_for(self, topic: str) -> Consumer | None: ...

    def topics_changed(self, topics: tuple[str, ...], reason: str) -> None: ...

    def on_assigned(self, topics: set[str]) -> None: ...

    def is_closing(self, consumer: Consumer) -> bool:
        """Whether this consumer is an ended pipeline's, closing on a thread of its own:
        its revocation callbacks must leave the worker's state alone."""
        ...

    def close(self) -> None: ...


class _OneConsumer:
    """What strategies with one consumer for every pipeline share."""

    consumer: Consumer | None
    drain_on_revoke = True
    coalesce = True
    fair_share = False

    def consumers(self) -> list[Consumer]:
        return [] if self.consumer is None else [self.consumer]

    def consumer_for(self, topic: str) -> Consumer | None:
        return self.consumer

    def on_assigned(self, topics: set[str]) -> None:
        """Nothing to do: one consumer, one group."""

    def is_closing(self, consumer: Consumer) -> bool:
        return False  # the one consumer closes only when the worker stops


class ReconnectStrategy(_OneConsumer):
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

    def topics_changed(self, topics: tuple[str, ...], reason: str) -> None:
        self._run(self.machine.handle(TopicsChanged(frozenset(topics), reason)))

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


class _LiveConsumerStrategy(_OneConsumer):
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

    def topics_changed(self, topics: tuple[str, ...], reason: str) -> None:
        wanted = frozenset(topics)
        if wanted == self.subscribed:
            return
        started = time.monotonic()
        if self.consumer is None:
            self.consumer = self._make_consumer()
        else:
            self._drain()  # everything processed is committed before partitions move
        if wanted:
            self._subscribe(self.consumer, sorted(wanted))
        else:
            # With KIP-848, a subscribe() soon after this sometimes gets a fatal
            # INVALID_REQUEST from the coordinator (1 benchmark job in 3); the worker then
            # restarts (services/runtime/consuming.py). The alternatives tried were worse:
            # keeping the finished topics subscribed left a reducer's next assignment stuck
            # for 5 minutes, and closing the consumer made static members fail to rejoin.
            self.consumer.unsubscribe()
        self.subscribed = wanted
        log.info("resubscribed", strategy=self.name, reason=reason, topics=len(wanted),
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

    def topics_changed(self, topics: tuple[str, ...], reason: str) -> None:
        """Nothing to do: the subscription already covers every topic of the role."""



class GroupPerPipelineStrategy:
    """One consumer per live pipeline, each in the pipeline's own group, polled in turn by
    the worker (shared/pipeline_groups.py has the states). A new pipeline makes a new
    group; the groups of running pipelines never change, so they never rebalance.

    A pipeline leaves the live set only when it has ended (done or failed), so its
    consumer is not drained before it closes: what was processed of it and not committed
    is forgotten (an ended pipeline needs nothing replayed), and the close runs on its own
    thread, so that no other pipeline waits for it. For the same reason a revocation only
    commits what is already durable: the partitions' next owner replays the rest, and
    replays are dropped downstream (flushing here would stall every other pipeline), except
    for an at-least-once pipeline (pipeline_worker.drains_on_revoke)."""

    name = "group-per-pipeline"
    drain_on_revoke = False
    coalesce = False  # a new pipeline changes no running group: nothing to wait out
    fair_share = True

    def __init__(self, make_consumer: Callable[[str], Consumer], drain: Callable[[], None],
                 forget: Callable[[str], None], subscribe: Callable[[Consumer, list[str]], None],
                 capacity: int = DEFAULT_CAPACITY) -> None:
        self.machine = PipelineGroups(capacity)
        self._consumers: dict[str, Consumer] = {}  # topic -> its pipeline's consumer
        # consumers being closed on threads of their own: their revocation callbacks run on
        # those threads and must leave the worker's state alone (the pipeline has ended)
        self.closing: set[int] = set()
        self._make_consumer = make_consumer
        self._drain = drain
        self._forget = forget
        self._subscribe = subscribe
        self._entered: dict[str, float] = {}

    def consumers(self) -> list[Consumer]:
        return list(self._consumers.values())

    def consumer_for(self, topic: str) -> Consumer | None:
        return self._consumers.get(topic)

    def topics_changed(self, topics: tuple[str, ...], reason: str) -> None:
        self._run(self.machine.handle(PipelinesChanged(tuple(topics), reason)))

    def is_closing(self, consumer: Consumer) -> bool:
        return id(consumer) in self.closing

    def on_assigned(self, topics: set[str]) -> None:
        for topic in topics:
            if self.machine.states.get(topic) is GroupState.JOINING:
                self._run(self.machine.handle(Assigned(topic)))

    def _run(self, commands: list[GroupCommand]) -> None:
        pending = list(commands)
        while pending:
            command = pending.pop(0)
            if isinstance(command, GroupTransitioned):
                now = time.monotonic()
                since = self._entered.pop(command.pipeline, now)
                if command.target is not GroupState.CLOSED:
                    self._entered[command.pipeline] = now
                log.info("pipeline consumer", topic=command.pipeline,
                         source=command.source.value if command.source else None,
                         target=command.target.value, reason=command.reason,
                         duration=round(now - since, 4))
            elif isinstance(command, Open):
                consumer = self._make_consumer(command.pipeline)
                self._consumers[command.pipeline] = consumer
                self._subscribe(consumer, [command.pipeline])
            elif isinstance(command, Drain):
                self._forget(command.pipeline)
                pending.extend(self.machine.handle(Drained(command.pipeline)))
            elif isinstance(command, Close):
                consumer = self._consumers.pop(command.pipeline)
                self.closing.add(id(consumer))
                threading.Thread(target=self._close_in_background,
                                 args=(consumer, command.pipeline),
                                 name=f"close-{command.pipeline}", daemon=True).start()
                pending.extend(self.machine.handle(Closed(command.pipeline)))

    def _close_in_background(self, consumer: Consumer, topic: str) -> None:
        try:
            _close_quietly(consumer, topic)
        finally:
            self.closing.discard(id(consumer))

    def close(self) -> None:
        """The worker stops: everything processed is committed, every consumer closes."""
        if self._consumers:
            self._drain()
        for topic, consumer in list(self._consumers.items()):
            _close_quietly(consumer, topic)
        self._consumers.clear()


def _close_quietly(consumer: Consumer, topic: str) -> None:
    """Leave a finished pipeline's group. Its topic may be deleted already, so errors
    here are expected and change nothing: the group is never read again."""
    try:
        consumer.close()
    except KafkaException as exc:
        log.info("closing a finished pipeline's consumer", topic=topic, error=str(exc))


def build_strategy(strategy: str, prefix: str, make_consumer: Callable[[str | None], Consumer],
                   drain: Callable[[], None], forget: Callable[[str], None],
                   subscribe: Callable[[Consumer, list[str]], None],
                   capacity: int = DEFAULT_CAPACITY) -> Strategy:
    """The runner of a strategy named in shared/resubscribe_strategies.py, by its shape.
    make_consumer(topic): a consumer in the role's group, or with a topic, in the group
    of that topic's pipeline; forget(topic): drop what is pending of an ended pipeline."""

    def shared_group() -> Consumer:
        return make_consumer(None)

    match resubscribe_strategies.strategy(strategy).shape:
        case Shape.RECONNECT:
            return ReconnectStrategy(shared_group, drain, subscribe)
        case Shape.IN_PLACE:
            return InPlaceStrategy(strategy, shared_group, drain, subscribe)
        case Shape.REGEX:
            return RegexStrategy(f"^{prefix}.*", shared_group, drain, subscribe)
        case Shape.GROUP_PER_PIPELINE:
            return GroupPerPipelineStrategy(make_consumer, drain, forget, subscribe, capacity)
        case unknown:
            assert_never(unknown)
