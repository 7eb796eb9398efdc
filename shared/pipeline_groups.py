"""The `group-per-pipeline` strategy's state machine, as a pure object.

Each live pipeline gets its own consumer group per role (`mappers.<id>`, `reducers.<id>`),
and a worker holds one consumer per pipeline it serves. A new pipeline creates a new group;
the groups of running pipelines never change, so they never rebalance.

Per pipeline, on one worker:

    WAITING -> JOINING -> CONSUMING -> DRAINING -> CLOSED
       (a slot)   (first assignment)  (pipeline gone)  (drained, closed)

A worker holds at most `capacity` consumers (each has librdkafka threads, sockets and up
to its prefetch of memory). Pipelines beyond that wait, in the order they became ready,
until a slot frees: every worker keeps the same order, so the oldest pipelines are served
everywhere first, and a waiting pipeline is never half-served.

``handle(event)`` returns commands (Open, Drain, Close, Transitioned); a runner
(services/runtime/resubscriber.py) performs them and feeds back Drained / Closed / Assigned.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# Consumers a worker holds at once (MAPREDUCE_PIPELINE_CONSUMERS). Each costs librdkafka's
# threads (about 3), a socket per broker and up to its prefetch (8 MiB) of fetched records:
# 16 is 128 MiB at the most, and more pipelines than 2 cores can serve fairly; past it a
# new pipeline waits for a finished one's slot.
DEFAULT_CAPACITY = 16


class State(enum.Enum):
    WAITING = "waiting"  # live, but the worker holds `capacity` consumers already
    JOINING = "joining"  # consumer made and subscribed, no partition assigned yet
    CONSUMING = "consuming"
    DRAINING = "draining"  # the pipeline is gone: commit what was processed, then close
    CLOSED = "closed"


@dataclass(frozen=True)
class PipelinesChanged:
    live: tuple[str, ...]  # live pipelines, in the order they became ready
    reason: str = "pipelines changed"


@dataclass(frozen=True)
class Assigned:
    pipeline: str


@dataclass(frozen=True)
class Drained:
    pipeline: str


@dataclass(frozen=True)
class Closed:
    pipeline: str


Event = PipelinesChanged | Assigned | Drained | Closed


@dataclass(frozen=True)
class Open:
    """Make a consumer in the pipeline's group and subscribe it to the pipeline's topic."""

    pipeline: str


@dataclass(frozen=True)
class Drain:
    """Flush and commit what was processed of the pipeline."""

    pipeline: str


@dataclass(frozen=True)
class Close:
    """Close the pipeline's consumer: it leaves the pipeline's group."""

    pipeline: str


@dataclass(frozen=True)
class Transitioned:
    pipeline: str
    source: State | None
    target: State
    reason: str


Command = Open | Drain | Close | Transitioned


class InvalidEvent(RuntimeError):
    """An event the pipeline's state cannot receive: a bug in the runner."""


@dataclass
class PipelineGroups:
    capacity: int = DEFAULT_CAPACITY
    states: dict[str, State] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # live pipelines, oldest first

    def holding(self) -> int:
        """Consumers held: every pipeline past WAITING and not yet CLOSED."""
        return sum(s in (State.JOINING, State.CONSUMING, State.DRAINING)
                   for s in self.states.values())

    def handle(self, event: Event) -> list[Command]:
        if isinstance(event, PipelinesChanged):
            return self._changed(event)
        state = self.states.get(event.pipeline)
        if isinstance(event, Assigned):
            if state is State.JOINING:
                return self._move(event.pipeline, State.CONSUMING, "first assignment")
            if state in (State.CONSUMING, State.DRAINING):
                return []  # a later assignment (another worker joined or left the group)
        elif isinstance(event, Drained) and state is State.DRAINING:
            return [Close(event.pipeline)]
        elif isinstance(event, Closed) and state is State.DRAINING:
            commands = self._move(event.pipeline, State.CLOSED, "closed")
            del self.states[event.pipeline]
            return commands + self._fill_slots()
        raise InvalidEvent(f"{event} received in state {state}")

    def _changed(self, event: PipelinesChanged) -> list[Command]:
        live = set(event.live)
        commands: list[Command] = []
        for pipeline in list(self.states):
            if pipeline in live:
                continue
            state = self.states[pipeline]
            if state is State.WAITING:
                commands += self._move(pipeline, State.CLOSED, event.reason)
                del self.states[pipeline]
            elif state in (State.JOINING, State.CONSUMING):
                commands += [*self._move(pipeline, State.DRAINING, event.reason),
                             Drain(pipeline)]
        self.order = [p for p in event.live if p in live]
        for pipeline in self.order:
            if pipeline not in self.states:
                commands += self._move(pipeline, State.WAITING, event.reason)
        return commands + self._fill_slots()

    def _fill_slots(self) -> list[Command]:
        """Open consumers for the oldest waiting pipelines while there is room."""
        commands: list[Command] = []
        for pipeline in self.order:
            if self.holding() >= self.capacity:
                break
            if self.states.get(pipeline) is State.WAITING:
                commands += [*self._move(pipeline, State.JOINING, "a slot is free"),
                             Open(pipeline)]
        return commands

    def _move(self, pipeline: str, target: State, reason: str) -> list[Command]:
        source = self.states.get(pipeline)
        self.states[pipeline] = target
        return [Transitioned(pipeline, source, target, reason)]
