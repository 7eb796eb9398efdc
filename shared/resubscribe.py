"""The resubscribe state machine of mappers and reducers, as a pure object.

When the set of live pipelines changes, a worker goes
CONSUMING -> DRAINING -> CLOSING -> CONNECTING -> SUBSCRIBING -> CONSUMING:
commit the batch in hand, close the consumer (it leaves the group), make a new one,
subscribe to every live per-pipeline topic of its role, resume.

The machine knows nothing of Kafka. ``handle(event)`` returns commands; a runner performs
them and feeds back StepSucceeded / StepFailed. A failed step is retried from that same
step (up to ``max_attempts`` times, the runner waiting a backoff between attempts), never
from the start. Topic changes that arrive mid-cycle are coalesced: the SUBSCRIBING step
takes the latest wanted set, so a burst of announcements costs one rebalance, not one each.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(enum.Enum):
    CONSUMING = "consuming"
    DRAINING = "draining"
    CLOSING = "closing"
    CONNECTING = "connecting"
    SUBSCRIBING = "subscribing"
    FAILED = "failed"


class Step(enum.Enum):
    DRAIN = "drain"  # finish and commit the batch in hand
    CLOSE = "close"  # close the consumer: it leaves the group
    CONNECT = "connect"  # create a new consumer
    SUBSCRIBE = "subscribe"  # subscribe it to every live topic


# The transition table: each transitional state, the step it performs, and where it goes.
STEP_OF: dict[State, Step] = {
    State.DRAINING: Step.DRAIN,
    State.CLOSING: Step.CLOSE,
    State.CONNECTING: Step.CONNECT,
    State.SUBSCRIBING: Step.SUBSCRIBE,
}
NEXT: dict[State, State] = {
    State.DRAINING: State.CLOSING,
    State.CLOSING: State.CONNECTING,
    State.CONNECTING: State.SUBSCRIBING,
    State.SUBSCRIBING: State.CONSUMING,
}


# ---- events --------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicsChanged:
    topics: frozenset[str]
    reason: str = "pipelines changed"


@dataclass(frozen=True)
class StepSucceeded:
    step: Step


@dataclass(frozen=True)
class StepFailed:
    step: Step
    error: str


Event = TopicsChanged | StepSucceeded | StepFailed


# ---- commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class Transitioned:
    """Log it: the machine moved."""

    source: State
    target: State
    reason: str


@dataclass(frozen=True)
class RunStep:
    """Perform one attempt of a step (attempt > 1: wait a backoff first)."""

    step: Step
    attempt: int
    topics: frozenset[str]  # for SUBSCRIBE: the topics to subscribe to


@dataclass(frozen=True)
class GiveUp:
    """A step failed `max_attempts` times: the worker must exit and be restarted."""

    step: Step
    error: str


Command = Transitioned | RunStep | GiveUp


class InvalidEvent(RuntimeError):
    """An event the current state cannot receive: a bug in the runner."""


@dataclass
class Resubscription:
    max_attempts: int = 5
    state: State = State.CONSUMING
    subscribed: frozenset[str] = frozenset()  # what the live consumer is subscribed to
    wanted: frozenset[str] = frozenset()  # what it should be subscribed to
    attempt: int = 1  # attempt number of the step in progress
    subscribing: frozenset[str] = frozenset()  # the set the SUBSCRIBE in progress installs

    def handle(self, event: Event) -> list[Command]:
        if self.state is State.FAILED:
            return []
        if isinstance(event, TopicsChanged):
            self.wanted = event.topics
            if self.state is State.CONSUMING and self.wanted != self.subscribed:
                return self._move(State.DRAINING, event.reason)
            return []  # mid-cycle: coalesced, SUBSCRIBING takes the latest wanted set
        expected = STEP_OF.get(self.state)
        if event.step is not expected:
            raise InvalidEvent(f"{event} received in state {self.state.value}")
        if isinstance(event, StepFailed):
            if self.attempt >= self.max_attempts:
                commands: list[Command] = [
                    Transitioned(self.state, State.FAILED, f"{event.step.value}: {event.error}")
                ]
                self.state = State.FAILED
                return [*commands, GiveUp(event.step, event.error)]
            self.attempt += 1
            return [RunStep(event.step, self.attempt, self.wanted)]
        return self._succeeded()

    def _succeeded(self) -> list[Command]:
        if self.state is State.SUBSCRIBING:
            self.subscribed = self.subscribing
            if self.wanted != self.subscribed:  # changed while we were busy: go again
                return [
                    Transitioned(State.SUBSCRIBING, State.CONSUMING, "subscribed"),
                    *self._cycle_from_consuming("pipelines changed during resubscription"),
                ]
        return self._move(NEXT[self.state], f"{STEP_OF[self.state].value} done")

    def _cycle_from_consuming(self, reason: str) -> list[Command]:
        self.state = State.CONSUMING
        return self._move(State.DRAINING, reason)

    def _move(self, target: State, reason: str) -> list[Command]:
        commands: list[Command] = [Transitioned(self.state, target, reason)]
        self.state = target
        self.attempt = 1
        step = STEP_OF.get(target)
        if step is not None:
            if step is Step.SUBSCRIBE:
                self.subscribing = self.wanted
            commands.append(RunStep(step, 1, self.wanted))
        return commands

