"""What a pipeline's own code can ask of the task running it: the job's parameters, its
counters and the files shipped with it.

    from mapreduce_kafka import increment_counter, param

    def mapper(line):
        if not line.strip():
            increment_counter("input", "blank lines")
            return
        if line.startswith(param("prefix", "")):
            yield line, 1

A *task* is the framework's call into user code for one frame of input (a mapper, with
its combiner) or one key (a reducer). The framework opens a task around each call
(`running`) and takes what it counted afterwards (`Task.take`): a task's counts travel
with the output it produced and are dropped with it when it is a replay, so that a job's
counters are exact however often a worker dies (docs/pipelines.md, "Counters").

Counters are `{group: {name: int}}`; `merge` adds such dicts (a pure function)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mapreduce_kafka.shared.side_files import SideFiles

Counters = dict[str, dict[str, int]]

_MISSING: Any = object()


@dataclass(frozen=True)
class InputContext:
    """Where the record a mapper is given came from (`input_context()`). For a file: its
    path and the record's byte offset in it (in the decompressed text, for a compressed
    file). For a `kafka:TOPIC` input: the topic, partition and offset of the record's
    message, its key and its timestamp (milliseconds). In `map_batch`/`map_chunk`, which
    get a whole frame, `offset` is where the frame starts. A later step's records come
    from the step before: every field is None."""

    path: str | None = None
    offset: int | None = None
    topic: str | None = None
    partition: int | None = None
    kafka_offset: int | None = None
    key: bytes | None = None
    timestamp: int | None = None


@dataclass(frozen=True)
class FileOrigin:
    """A frame of a file: its path, and the offset of the frame's first byte."""

    path: str
    offset: int
    fmt: str  # how the frame's lines are records: jsonl skips blank lines

    def record(self, frame: bytes, index: int | None, starts: list[int]) -> InputContext:
        if index is None or index >= len(starts):
            return InputContext(path=self.path, offset=self.offset)
        return InputContext(path=self.path, offset=self.offset + starts[index])


@dataclass(frozen=True)
class TopicOrigin:
    """A frame of a topic range: per line of the frame, its message's partition, offset,
    key and timestamp."""

    topic: str
    lines: tuple[tuple[int, int, bytes | None, int | None], ...]

    def record(self, frame: bytes, index: int | None, starts: list[int]) -> InputContext:
        if index is None or index >= len(self.lines):
            first = self.lines[0] if self.lines else (None, None, None, None)
            return InputContext(topic=self.topic, partition=first[0], kafka_offset=first[1])
        partition, offset, key, timestamp = self.lines[index]
        return InputContext(topic=self.topic, partition=partition, kafka_offset=offset,
                            key=key, timestamp=timestamp)


Origin = FileOrigin | TopicOrigin


def record_starts(frame: bytes, fmt: str) -> list[int]:
    """The offset in the frame of each record's line (jsonl leaves blank lines out, as
    decoding does)."""
    starts, at = [], 0
    for line in frame.split(b"\n")[:-1] if frame.endswith(b"\n") else frame.split(b"\n"):
        if fmt != "jsonl" or line.strip():
            starts.append(at)
        at += len(line) + 1
    return starts


class Task:
    """The task user code runs in: the job's parameters and files, what it counted so far,
    and where its input comes from (the frame being mapped, and the record's index)."""

    __slots__ = ("_starts", "counters", "files", "frame", "job", "origin", "params", "record")

    def __init__(self, params: Mapping[str, str], files: SideFiles | None = None,
                 job: str = "") -> None:
        self.params = params
        self.files = files
        self.job = job  # the pipeline's id ("" where there is none: a module being loaded)
        self.counters: Counters = {}
        self.origin: Origin | None = None
        self.frame = b""
        self.record: int | None = None  # the record the per-record mapper is given
        self._starts: list[int] | None = None

    def reading(self, frame: bytes, origin: Origin | None) -> None:
        """The frame the mapper is given next, and where it comes from."""
        self.frame, self.origin, self.record, self._starts = frame, origin, None, None

    def input_context(self) -> InputContext:
        if self.origin is None:
            return InputContext()
        if self.record is None or not isinstance(self.origin, FileOrigin):
            return self.origin.record(self.frame, self.record, [])
        if self._starts is None:  # once per frame, only when asked
            self._starts = record_starts(self.frame, self.origin.fmt)
        return self.origin.record(self.frame, self.record, self._starts)

    def take(self) -> Counters:
        """What was counted since the last take, and start again from nothing."""
        counted, self.counters = self.counters, {}
        return counted

    def saved(self) -> Counters:
        """A copy of the counts, to go back to if the attempt that follows is abandoned
        (a frame mapped again record by record after `map_chunk` raised)."""
        return {group: dict(names) for group, names in self.counters.items()}

    def restore(self, saved: Counters) -> None:
        self.counters = saved


_current: ContextVar[Task | None] = ContextVar("mapreduce_task", default=None)


@contextmanager
def running(params: Mapping[str, str] | None, files: SideFiles | None = None,
            job: str = "") -> Iterator[Task]:
    """Run user code inside a task of pipeline `job` with these parameters and shipped
    files; yields it."""
    task = Task(params or {}, files, job)
    token = _current.set(task)
    try:
        yield task
    finally:
        _current.reset(token)


def current() -> Task | None:
    return _current.get()


def _task(what: str) -> Task:
    task = _current.get()
    if task is None:
        raise RuntimeError(f"{what} works inside a mapper, combiner or reducer (or while the "
                           "pipeline's module is loaded for a job)")
    return task


def increment_counter(group: str, name: str, amount: int = 1) -> None:
    """Add `amount` to the counter `name` of `group` (mrjob's and Hadoop's counters). A job's
    counters are shown by `mapreduce status ID`, `Job.counters()` and the dashboard."""
    if not isinstance(group, str) or not isinstance(name, str):
        raise TypeError(f"a counter's group and name are strings, not {group!r:.40}, "
                        f"{name!r:.40}")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"a counter grows by an int, not {type(amount).__name__} {amount!r:.40}")
    counters = _task("increment_counter()").counters
    names = counters.get(group)
    if names is None:
        counters[group] = {name: amount}
    else:
        names[name] = names.get(name, 0) + amount


def param(name: str, default: Any = _MISSING) -> Any:
    """The job parameter `name` (`--param NAME=VALUE`, or `params=` in the Python API), a
    string; `default` when the job was not given it (without a default: KeyError)."""
    values = _task("param()").params
    if name in values:
        return values[name]
    if default is _MISSING:
        raise KeyError(f"the job has no parameter {name!r} (give it with --param "
                       f"{name}=VALUE); it has {sorted(values) or 'none'}")
    return default


def params() -> dict[str, str]:
    """Every job parameter, as a new dict."""
    return dict(_task("params()").params)


def input_context() -> InputContext:
    """Where the record being mapped came from: a file's path and the record's byte offset,
    or a topic's partition, offset, key and timestamp (see InputContext)."""
    return _task("input_context()").input_context()


def side_file(name: str) -> Path:
    """The local path of a file shipped with the job (`--file PATH`), by its name: on
    every worker, written there before first use. FileNotFoundError for a name the job
    does not ship."""
    files = _task("side_file()").files
    if files is None:
        raise FileNotFoundError(f"the job ships no files (ship {name!r} with --file)")
    return files.path(name)


def merge(into: Counters, more: Mapping[str, Mapping[str, int]]) -> Counters:
    """Add `more`'s counts to `into` (changed in place, and returned)."""
    for group, names in more.items():
        target = into.setdefault(group, {})
        for name, amount in names.items():
            target[name] = target.get(name, 0) + amount
    return into


def total(parts: Iterator[Mapping[str, Mapping[str, int]]] | list[Counters]) -> Counters:
    """The sum of several tasks' counters, groups and names sorted (for display)."""
    summed: Counters = {}
    for part in parts:
        merge(summed, part)
    return {group: dict(sorted(names.items())) for group, names in sorted(summed.items())}
