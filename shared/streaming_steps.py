"""Streaming steps (Hadoop Streaming's, mrjob's) as the framework's steps.

A streaming step has up to three stages, mapper, combiner and reducer. Each is a command
(run as a subprocess over tab-separated lines), or the job's own code (a *script*: an
mrjob job's methods, shared/mrjob_jobs.py), optionally behind a pre-filter command. The
framework runs them as Hadoop does:
- a map task is one input frame: the mapper stage over the frame's lines, then, when the
  step reduces, the combiner stage over the mapper's output sorted by key;
- the reducer stage reads each key's lines, sorted by key (values sorted too with
  `sort_values`). A reducer command, or a reducer behind a pre-filter, reads its whole
  reduce partition as one stream, as on Hadoop: the partition runs as one reduce task
  (reducer_init/reducer_final of shared/spec.py), its lines held until the task's end;
- lines travel as byte-text pairs (shared/streaming.py), so commands and scripts mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Protocol

from mapreduce_kafka.shared import streaming
from mapreduce_kafka.shared.errors import PipelineDefinitionError
from mapreduce_kafka.shared.spec import PipelineCode, Step


@dataclass(frozen=True)
class Stage:
    """A mapper, combiner or reducer: `command`, run as a subprocess; or the job's code
    (`command` None), behind the shell command `pre_filter` when there is one."""

    command: str | None = None
    pre_filter: str | None = None


@dataclass(frozen=True)
class StreamingStep:
    """One step. `mapper` None: lines pass on as they are (a later step's identity map);
    `reducer` None: a map-only step (no combiner runs). `reducer_hooks`: the job's reducer
    has reducer_init or reducer_final, so that a reduce partition is one task."""

    mapper: Stage | None
    combiner: Stage | None = None
    reducer: Stage | None = None
    sort_values: bool = False
    reducer_hooks: bool = False

    @property
    def whole_partition(self) -> bool:
        """Whether the reducer stage reads its partition as one stream (a command)."""
        return self.reducer is not None and (
            self.reducer.command is not None or self.reducer.pre_filter is not None)


class Script(Protocol):
    """The job's own code for the stages without a command: each takes and gives lines."""

    def task(self, role: str, step: int,
             length: int | None = None) -> AbstractContextManager[None]:
        """The environment one task of `role` ("mapper", "reducer") of `step` runs in;
        `length`, a first-step map task's input bytes."""

    def map(self, step: int, lines: list[bytes]) -> list[bytes]:
        """One map task: mapper_init, the mapper over each line, mapper_final."""

    def combine(self, step: int, lines: list[bytes]) -> list[bytes]:
        """One combine task over lines sorted by key."""

    def reduce_task(self, step: int, lines: list[bytes]) -> list[bytes]:
        """One whole reduce task over its partition's lines, sorted by key."""

    def reduce_key(self, step: int, lines: list[bytes]) -> list[bytes]:
        """The reducer over one key's lines, inside a reduce task begun with reducer_init."""

    def reducer_init(self, step: int) -> list[bytes]:
        """A reduce task's start: what reducer_init yields."""

    def reducer_final(self, step: int) -> list[bytes]:
        """A reduce task's end: what reducer_final yields."""


@dataclass
class StepCode:
    """One streaming step's functions, in the forms shared/spec.py calls. Pickled with the
    spec; a reduce task's state (`_held`, `_opening`) lives in its private copy."""

    index: int
    step: StreamingStep
    script: Script | None
    _held: list[bytes] = field(default_factory=list)
    _opening: list[bytes] = field(default_factory=list)

    def map_chunk(self, data: bytes) -> list[tuple[str, str | None]]:
        """The first step's map task: a frame of input, as raw bytes."""
        return self._map(streaming.lines_of(data), len(data))

    def map_batch(self, records: list[Any]) -> list[tuple[str, str | None]]:
        """A later step's map task: the previous step's pairs."""
        return self._map([streaming.line_of(key, value) for key, value in records])

    def _map(self, lines: list[bytes],
             length: int | None = None) -> list[tuple[str, str | None]]:
        with self._task("mapper", length):
            out = self._stage(self.step.mapper, lines, lambda script: script.map)
            if self.step.combiner is not None and self.step.reducer is not None:
                out = self._stage(self.step.combiner,
                                  streaming.sorted_lines(out, self.step.sort_values),
                                  lambda script: script.combine)
        return [streaming.pair_of(line) for line in out]

    def reducer(self, key: str, values: list[str | None]) -> Iterator[tuple[str, str | None]]:
        lines = [streaming.line_of(key, value) for value in values]
        if self.step.whole_partition:
            self._held.extend(lines)  # the command reads the partition at the task's end
            return
        with self._task("reducer"):
            out = self._script().reduce_key(self.index, lines)
        for line in out:
            yield streaming.pair_of(line)

    def reducer_init(self) -> None:
        self._held, self._opening = [], []
        if not self.step.whole_partition:
            with self._task("reducer"):
                self._opening = self._script().reducer_init(self.index)

    def reducer_final(self) -> list[tuple[str, str | None]]:
        with self._task("reducer"):
            if self.step.whole_partition:
                held, self._held = self._held, []
                out = self._stage(self.step.reducer,
                                  streaming.sorted_lines(held, self.step.sort_values),
                                  lambda script: script.reduce_task)
            else:
                out = self._opening + self._script().reducer_final(self.index)
        return [streaming.pair_of(line) for line in out]

    def _stage(self, stage: Stage | None, lines: list[bytes],
               form: Callable[[Script], Callable[[int, list[bytes]], list[bytes]]]
               ) -> list[bytes]:
        """Lines through a stage: its command, or its pre-filter then the job's code in
        the given form (none: the lines as they are, a later step's identity mapper)."""
        if stage is None:
            return lines
        if stage.command is not None:
            return streaming.run_command(streaming.command_argv(stage.command), lines)
        if stage.pre_filter is not None:
            lines = streaming.run_command(streaming.shell_argv(stage.pre_filter), lines)
        return form(self._script())(self.index, lines)

    def _script(self) -> Script:
        if self.script is None:
            raise ValueError("a stage without a command needs the job's code")
        return self.script

    def _task(self, role: str, length: int | None = None) -> AbstractContextManager[None]:
        return (nullcontext() if self.script is None
                else self.script.task(role, self.index, length))


def framework_step(code: StepCode) -> Step:
    """The framework's Step running one streaming step."""
    step = code.step
    first = code.index == 0
    maps = first or step.mapper is not None or (step.combiner is not None
                                                and step.reducer is not None)
    task = step.reducer is not None and (step.whole_partition or step.reducer_hooks)
    return Step(
        map_chunk=code.map_chunk if first else None,
        map_batch=code.map_batch if maps and not first else None,
        reducer=code.reducer if step.reducer is not None else None,
        sort_values=step.sort_values and step.reducer is not None,
        reducer_init=code.reducer_init if task else None,
        reducer_final=code.reducer_final if task else None,
    )


def streaming_code(name: str, steps: list[StreamingStep], script: Script | None = None,
                   side_files: dict[str, bytes] | None = None) -> PipelineCode:
    """A pipeline of streaming steps, written as lines (output format `lines`)."""
    framework = [framework_step(StepCode(index, step, script))
                 for index, step in enumerate(steps)]
    return PipelineCode(SimpleNamespace(steps=framework), name, (), side_files=side_files,
                        output_format="lines", reads_lines=True)


def command_code(mapper: str, combiner: str | None = None,
                 reducer: str | None = None) -> PipelineCode:
    """Hadoop Streaming's job from the command line: `--mapper-cmd`, `--combiner-cmd`,
    `--reducer-cmd`."""
    for option, command in (("--mapper-cmd", mapper), ("--combiner-cmd", combiner),
                            ("--reducer-cmd", reducer)):
        if command is not None:
            try:  # an empty or badly quoted command fails here, not on a worker
                streaming.command_argv(command)
            except (ValueError, streaming.CommandFailed) as exc:
                raise PipelineDefinitionError(f"{option} {command!r}: {exc}") from exc
    if combiner is not None and reducer is None:
        raise PipelineDefinitionError("--combiner-cmd needs --reducer-cmd: a map-only job "
                                      "has nothing to combine for")
    step = StreamingStep(
        mapper=Stage(command=mapper),
        combiner=Stage(command=combiner) if combiner is not None else None,
        reducer=Stage(command=reducer) if reducer is not None else None)
    return streaming_code("commands", [step])
