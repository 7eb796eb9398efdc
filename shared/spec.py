"""The pipeline spec: what a user writes (mrjob-shaped) and what travels to the workers.

A pipeline is a plain Python module with
- ``mapper(record)``: yields items, by default ``(key, value)`` pairs;
- optional ``map_batch(records)``: the same for a whole list of records at once (Spark's
  ``mapPartitions``); when present the workers call it instead of ``mapper``, which saves
  the per-record call. A frame whose ``map_batch`` raises is mapped again record by record
  with ``mapper`` (if defined), so that only the bad records are dead-lettered;
- optional ``map_chunk(data)``: the same for a frame of text input as raw bytes (whole
  lines, UTF-8, each ending with a newline), for pipelines that can work on bytes without
  first splitting them into str lines (word count: about twice as fast, README). Text input
  only; preferred over the other two when present, and a frame it raises on is mapped again
  with ``map_batch`` or ``mapper``. One of the three is required;
- optional ``reducer(key, values)``: returns the reduced value for one key, or, written as
  a generator, yields any number of ``(key, value)`` pairs with any keys (filtering,
  re-keying, exploding). Without a reducer the pipeline is *map-only*: the mapper's pairs
  are the output, in input order, duplicates kept, with no shuffle;
- optional ``combiner(key, values)``: returns a partial value of the same kind as the
  values (or yields ``(key, value)`` pairs for its own key), applied map-side to shrink the
  shuffle (it must not change the result). As in Hadoop, it may run any number of times,
  including none: a key with a single value is passed on as it is;
- optional ``key_selector(item)`` / ``value_selector(item)`` when mapper items are not pairs.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import inspect
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from types import GeneratorType, ModuleType, SimpleNamespace
from typing import Any

from mapreduce_kafka.shared import sampling, task_context
from mapreduce_kafka.shared.codec import key_order, partition_for
from mapreduce_kafka.shared.errors import PipelineDefinitionError
from mapreduce_kafka.shared.side_files import SideFiles
from mapreduce_kafka.shared.user_code import reraise_unless_users

FORMATS = ("text", "jsonl")
# exactly-once: a frame a mapper replays after a fault is recognized by its tag and dropped.
# at-least-once: it is counted again (faster only by the bookkeeping it skips; measured in
# benchmarks/guarantee.py).
GUARANTEES = ("exactly-once", "at-least-once")
# on_error(role, where, data, exception): `where` is a record's index in its frame or a key
ErrorHook = Callable[[str, Any, Any, BaseException], None]
HOOKS = ("mapper_init", "mapper_final", "combiner_init", "combiner_final", "reducer_init",
         "reducer_final")


def _first(item: Any) -> Any:
    return item[0]


def _second(item: Any) -> Any:
    return item[1]


@dataclass(frozen=True)
class Step:
    """One step of a pipeline of several: `steps = [Step(mapper=..., reducer=...), ...]` at
    the top of a module, or `Pipeline(steps=[...])`. Each function is optional, with the
    meaning it has at the top of a one-step module: a step without a reducer is map-only
    (its pairs go on to the next step, or are the output); a later step without a mapper
    passes the pairs it is given on as they are. A later step's records are the previous
    step's `(key, value)` pairs, as tuples."""

    mapper: Callable[[Any], Iterable[Any]] | None = None
    reducer: Callable[[Any, list[Any]], Any] | None = None
    combiner: Callable[[Any, list[Any]], Any] | None = None
    map_batch: Callable[[list[Any]], Iterable[Any]] | None = None
    map_chunk: Callable[[bytes], Iterable[Any]] | None = None
    key_selector: Callable[[Any], Any] | None = None
    value_selector: Callable[[Any], Any] | None = None
    partitioner: Callable[[Any, int], int] | None = None
    sort_values: bool = False
    total_order: bool = False
    mapper_init: Callable[[], Any] | None = None
    mapper_final: Callable[[], Iterable[Any]] | None = None
    combiner_init: Callable[[], Any] | None = None
    combiner_final: Callable[[], Iterable[Any]] | None = None
    reducer_init: Callable[[], Any] | None = None
    reducer_final: Callable[[], Iterable[Any]] | None = None


def _spec_fields(step: Step) -> dict[str, Any]:
    """A step's functions and options as the spec's fields (selectors defaulted)."""
    fields = {f.name: getattr(step, f.name) for f in dataclasses.fields(Step)}
    fields["key_selector"] = step.key_selector or _first
    fields["value_selector"] = step.value_selector or _second
    return fields


def _pass_on(record: Any) -> Iterable[Any]:
    """A later step's mapper when it has none: the previous step's pair, unchanged."""
    yield record


@dataclass(frozen=True)
class PipelineSpec:
    pipeline_id: str
    mapper: Callable[[Any], Iterable[Any]] | None
    reducer: Callable[[Any, list[Any]], Any] | None  # None: a map-only pipeline
    combiner: Callable[[Any, list[Any]], Any] | None
    key_selector: Callable[[Any], Any]
    value_selector: Callable[[Any], Any]
    fmt: str  # "text" or "jsonl": how frames become records
    partitions: int  # partitions of MAP---<id> and REDUCE---<id>; one output part each
    output_dir: str
    source_partitions: int  # end-of-stream markers expected from the source, one each
    name: str = ""  # the module's file name, for people
    keep: bool = False  # keep topics and coordination keys after the job (debugging)
    max_errors: int | None = None  # fail the job once more records than this failed
    guarantee: str = "exactly-once"  # one of GUARANTEES
    map_batch: Callable[[list[Any]], Iterable[Any]] | None = None
    map_chunk: Callable[[bytes], Iterable[Any]] | None = None
    output_format: str = "jsonl"  # part files: shared/output.FORMATS
    # Inside the signature: when the spec was made, and a nonce, so that a replayed spec is
    # told apart (refused past the spec age limit) and no two specs sign the same bytes.
    created: float = 0.0
    nonce: str = ""
    # Seconds one task (a message of this pipeline: a frame, a split, a key group) may run
    # before the worker's watchdog charges it to the pipeline and restarts; 0: the
    # cluster's default (MAPREDUCE_TASK_TIMEOUT_S).
    task_timeout_s: float = 0.0
    # The input files the source read, as it saw them: path -> (size, mtime_ns). A mapper
    # reads no other file, whatever a split names.
    input_files: dict[str, tuple[int, int]] | None = None
    # The submitter's split size: mappers cut compressed splits and topic ranges with it,
    # so a replay on a host with another MAPREDUCE_SPLIT_BYTES tags the same keys with the
    # same (frame, chunk). 0 (a spec without it): the mapper's own setting.
    split_bytes: int = 0
    # A pipeline of several steps: every step's functions, resolved (step 0's are also the
    # fields above); () for one step. `step`: the step this spec stands for (at_step).
    steps: tuple[Step, ...] = ()
    step: int = 0
    # The job's parameters (`--param NAME=VALUE`), read by user code with param()/params()
    # (shared/task_context.py); inside the signature like everything else here.
    params: dict[str, str] | None = None
    # Files shipped with the job (`--file`), by name: read by user code with side_file().
    side_files: dict[str, bytes] | None = None
    # `partitioner(key, partitions)`: the reduce partition (= output part) of a key, instead
    # of a hash of it. `sort_values`: each key's values sorted (codec.key_order) before
    # the reducer sees them (Hadoop's secondary sort, mrjob's SORT_VALUES).
    partitioner: Callable[[Any, int], int] | None = None
    sort_values: bool = False
    # `total_order`: keys partitioned by ranges, so that every key of part i sorts before
    # every key of part i+1; `boundaries`: where parts 1.. start, sampled from the input at
    # submission (shared/sampling.py). The first step only: later steps' keys are unknown.
    total_order: bool = False
    boundaries: tuple[Any, ...] | None = None
    # Hooks per task (docs/pipelines.md, "Hooks"): a mapper's task is one input split, a
    # reducer's one reduce partition; `*_final` yields pairs after the task's records.
    mapper_init: Callable[[], Any] | None = None
    mapper_final: Callable[[], Iterable[Any]] | None = None
    combiner_init: Callable[[], Any] | None = None
    combiner_final: Callable[[], Iterable[Any]] | None = None
    reducer_init: Callable[[], Any] | None = None
    reducer_final: Callable[[], Iterable[Any]] | None = None

    @property
    def step_count(self) -> int:
        return max(1, len(self.steps))

    @property
    def last_step(self) -> bool:
        """Whether this step writes the output (the others feed the next step)."""
        return self.step == self.step_count - 1

    @property
    def record_format(self) -> str:
        """How this step's frames become records: the input's format (`fmt`) for the first
        step, the previous step's [key, value] lines ("pairs") for a later one."""
        return self.fmt if self.step == 0 else "pairs"

    def at_step(self, step: int) -> PipelineSpec:
        """This pipeline as step `step` runs it: that step's functions, and for a later
        step, records that are the previous step's pairs (record_format)."""
        if step == self.step:
            return self
        if not 0 <= step < self.step_count:
            raise ValueError(f"pipeline {self.pipeline_id} has no step {step}")
        return replace(self, step=step, **_spec_fields(self.steps[step]))

    def task(self) -> AbstractContextManager[task_context.Task]:
        """The context user code of this pipeline runs in (a task): its parameters, its
        shipped files, and counters the caller takes afterwards."""
        files = (SideFiles(f"{self.pipeline_id}-{self.nonce[:12]}", self.side_files)
                 if self.side_files else None)
        return task_context.running(self.params, files, self.pipeline_id)

    def partition_of(self, key: Any) -> int:
        """The reduce partition (and output part) of a key: the pipeline's partitioner's
        answer, checked, or a hash of the key's JSON (the same in every process)."""
        if self.total_order and self.boundaries is not None:
            return sampling.part_of(key, self._starts)
        if self.partitioner is None:
            return partition_for(key, self.partitions)
        partition = self.partitioner(key, self.partitions)
        if (isinstance(partition, bool) or not isinstance(partition, int)
                or not 0 <= partition < self.partitions):
            raise ValueError(f"the partitioner gave {partition!r:.40} for key {key!r:.60}: "
                             f"a partition from 0 to {self.partitions - 1} is needed")
        return partition

    @functools.cached_property
    def _starts(self) -> list[Any]:
        """The boundaries in key order, for bisecting (computed once per spec object)."""
        return [key_order(boundary) for boundary in self.boundaries or ()]

    def values_for(self, values: list[Any]) -> list[Any]:
        """A key's values as its reducer gets them: sorted when the step asks."""
        if not self.sort_values:
            return values
        try:
            return sorted(values)
        except TypeError:  # values of mixed types: the order part files use for keys
            return sorted(values, key=key_order)

    @property
    def map_only(self) -> bool:
        """No reducer: the mapper's pairs are the output, with no shuffle."""
        return self.reducer is None

    @property
    def reducer_yields(self) -> bool:
        """Whether the reducer is a generator function, yielding pairs; any other reducer
        returns the one value of its key."""
        return self.reducer is not None and inspect.isgeneratorfunction(self.reducer)

    @property
    def sends_units(self) -> bool:
        """Whether results travel to the sink as units, [identity, pairs]: a map-only
        pipeline's and a yielding reducer's; a returning reducer's as [key, value]."""
        return self.reducer is None or self.reducer_yields

    @property
    def keys_may_repeat(self) -> bool:
        """Whether the output may hold a key more than once: where results are units, or a
        reducer_final adds pairs (a returning reducer alone gives each key once)."""
        return self.sends_units or self.reducer_final is not None

    @property
    def reduce_tasks(self) -> bool:
        """Whether reduce partitions run as whole tasks (reducer_init or reducer_final):
        each partition's reducer state is its own, and a replay re-runs it from its start
        (services/roles/reducer.py)."""
        return self.reducer_init is not None or self.reducer_final is not None

    def reduce_final(self, on_error: ErrorHook | None) -> list[Any]:
        """What reducer_final yields at the end of a reduce task, as [key, value] pairs."""
        return self._final(self.reducer_final, "reducer", _as_pairs, on_error)

    def reduce_key(self, key: Any, values: list[Any]) -> list[Any]:
        """The reducer's output for one key as [key, value] pairs: the pairs it yields, or
        for a reducer that returns, [key, what it returned]."""
        assert self.reducer is not None
        values = self.values_for(values)
        if not self.reducer_yields:
            return [[key, self.reducer(key, values)]]
        return yielded_pairs(self.reducer(key, values), key, "reducer")

    def map_pairs(self, frame: bytes, decode: Callable[[bytes], list[Any]],
                  on_error: ErrorHook | None = None) -> list[Any]:
        """A map-only pipeline's output for a frame: [key, value] pairs in the order the
        mapper yielded them, duplicates kept. Errors are handled as in `map_data`."""
        key_of, value_of = self.key_selector, self.value_selector

        def pairs(items: Iterable[Any]) -> list[Any]:
            return [[key_of(item), value_of(item)] for item in items]

        def each(records: list[Any]) -> list[Any]:
            out: list[Any] = []
            for _index, record_pairs in self._each_record(records, pairs, on_error):
                out.extend(record_pairs)
            return out

        mapped = self._cascade(frame, lambda: decode(frame), on_error, pairs, each, [])
        return mapped + self._final(self.mapper_final, "mapper", pairs, on_error)

    def map_data(self, frame: bytes, decode: Callable[[bytes], list[Any]],
                 on_error: ErrorHook | None = None) -> dict[Any, list[Any]]:
        """Map a frame of input (`decode` turns it into records): with `map_chunk`, the raw
        bytes in one call; a frame it raises on is mapped again from its records with
        `map_batch` or `mapper` (or reported whole when there is neither)."""
        groups = self._cascade(frame, lambda: decode(frame), on_error, self._group,
                               lambda records: self._map_each(records, on_error), {})
        return self._combine(self._with_final(groups, on_error), on_error)

    def map_frame(self, records: Iterable[Any],
                  on_error: ErrorHook | None = None) -> dict[Any, list[Any]]:
        """Map a batch of records and group the values by key (combined when possible).

        With `map_batch`, one call maps the whole batch (see the module's docstring for
        what happens when it raises). A record whose mapper (or selector) raises
        contributes nothing: it is handed to
        `on_error("mapper", index, record, exc)`. A combiner that raises for a key leaves
        that key's values uncombined (no value is lost) and is reported the same way.
        Without `on_error`, exceptions propagate."""
        listed = list(records)
        groups = self._cascade(None, lambda: listed, on_error, self._group,
                               lambda records: self._map_each(records, on_error), {})
        return self._combine(self._with_final(groups, on_error), on_error)

    def _with_final(self, groups: dict[Any, list[Any]],
                    on_error: ErrorHook | None) -> dict[Any, list[Any]]:
        """The frame's groups with what `mapper_final` yielded added."""
        for key, value in self._final(self.mapper_final, "mapper", self._pairs, on_error):
            groups.setdefault(key, []).append(value)
        return groups

    def _pairs(self, items: Iterable[Any]) -> list[Any]:
        key_of, value_of = self.key_selector, self.value_selector
        return [[key_of(item), value_of(item)] for item in items]

    @staticmethod
    def _final(hook: Callable[[], Iterable[Any]] | None, role: str,
               pairs: Callable[[Iterable[Any]], list[Any]],
               on_error: ErrorHook | None) -> list[Any]:
        """What a `*_final` hook yields, as [key, value] pairs (none without the hook). A
        hook that raises is reported as the role's error at "final"; its pairs are lost."""
        if hook is None:
            return []
        try:
            return pairs(hook() or ())
        except BaseException as exc:  # user code: reported, the task's other output stays
            reraise_unless_users(exc)
            if on_error is None:
                raise
            on_error(role, "final", None, exc)
            return []

    def _init(self, hook: Callable[[], Any] | None) -> None:
        if hook is not None:
            hook()

    def _cascade(self, frame: bytes | None, records: Callable[[], list[Any]],
                 on_error: ErrorHook | None, whole: Callable[[Iterable[Any]], Any],
                 each: Callable[[list[Any]], Any], empty: Any) -> Any:
        """The frame through the fastest form the pipeline has: `map_chunk` on its bytes
        (text only; None: no bytes), else `map_batch` on its records, else `mapper` record
        by record. A form that raises hands the frame to the next one, so that only the
        bad records are reported; with no next form, the frame is reported whole and
        gives `empty`. `whole` turns a form's items into the result, `each` maps records
        one by one."""
        # what an abandoned form counted is forgotten: the next form counts the frame again
        task = task_context.current()
        saved = task.saved() if task is not None else None

        def begin() -> BaseException | None:
            """mapper_init, before each form tried: what it raised, if it did."""
            try:
                self._init(self.mapper_init)
            except BaseException as exc:  # user code: the frame cannot be mapped
                reraise_unless_users(exc)
                return exc
            return None

        failed = begin()
        if failed is not None:
            return _frame_failed(on_error, records(), failed, empty)
        if self.map_chunk is not None and frame is not None:
            try:
                return whole(self.map_chunk(frame))
            except BaseException as exc:  # user code: find the bad records, or drop the frame
                reraise_unless_users(exc)
                if self.mapper is None and self.map_batch is None:
                    return _frame_failed(on_error, records(), exc, empty)
                if task is not None and saved is not None:
                    task.restore(saved)
                    saved = task.saved()  # a copy again: the next form changes these
                failed = begin()
                if failed is not None:
                    return _frame_failed(on_error, records(), failed, empty)
        listed = records()
        if self.map_batch is not None:
            try:
                return whole(self.map_batch(listed))
            except BaseException as exc:  # user code: find the bad records, or drop the frame
                reraise_unless_users(exc)
                if self.mapper is None:
                    return _frame_failed(on_error, listed, exc, empty)
                if task is not None and saved is not None:
                    task.restore(saved)
                failed = begin()
                if failed is not None:
                    return _frame_failed(on_error, listed, failed, empty)
        return each(listed)

    def _each_record(self, records: Iterable[Any], pairs: Callable[[Iterable[Any]], list[Any]],
                     on_error: ErrorHook | None) -> Iterable[tuple[int, list[Any]]]:
        """(index, the record's pairs) for each record whose mapper does not raise; one
        that raises is handed to on_error (without it, the exception propagates)."""
        mapper = self.mapper
        assert mapper is not None
        task = task_context.current()  # input_context() names the record being mapped
        for index, record in enumerate(records):
            if task is not None:
                task.record = index
            try:
                yield index, pairs(mapper(record))
            except BaseException as exc:  # user code: the caller decides skip or fail
                reraise_unless_users(exc)
                if on_error is None:
                    raise
                on_error("mapper", index, record, exc)
        if task is not None:
            task.record = None

    def _group(self, items: Iterable[Any]) -> dict[Any, list[Any]]:
        groups: dict[Any, list[Any]] = {}
        key_of, value_of = self.key_selector, self.value_selector
        if key_of is _first and value_of is _second:  # pairs: no call per item
            for key, value in items:
                bucket = groups.get(key)
                if bucket is None:
                    groups[key] = [value]
                else:
                    bucket.append(value)
            return groups
        for item in items:
            key = key_of(item)
            bucket = groups.get(key)
            if bucket is None:
                groups[key] = [value_of(item)]
            else:
                bucket.append(value_of(item))
        return groups

    def _map_each(self, records: Iterable[Any],
                  on_error: ErrorHook | None) -> dict[Any, list[Any]]:
        groups: dict[Any, list[Any]] = {}
        key_of, value_of = self.key_selector, self.value_selector

        def pairs(items: Iterable[Any]) -> list[Any]:
            return [(key_of(item), value_of(item)) for item in items]

        for _index, record_pairs in self._each_record(records, pairs, on_error):
            for key, value in record_pairs:
                bucket = groups.get(key)
                if bucket is None:
                    groups[key] = [value]
                else:
                    bucket.append(value)
        return groups

    def _combine(self, groups: dict[Any, list[Any]],
                 on_error: ErrorHook | None) -> dict[Any, list[Any]]:
        if self.combiner is None:
            return groups
        try:
            self._init(self.combiner_init)
        except BaseException as exc:  # user code: no combining, no value lost
            reraise_unless_users(exc)
            if on_error is None:
                raise
            on_error("combiner", "init", None, exc)
            return groups
        combined: dict[Any, list[Any]] = {}
        for key, values in groups.items():
            if len(values) == 1:  # nothing to combine (the combiner may run zero times)
                combined[key] = values
                continue
            try:
                result = self.combiner(key, values)
                combined[key] = (combined_values(result, key)
                                 if isinstance(result, GeneratorType) else [result])
            except BaseException as exc:  # user code: keep the values, report the error
                reraise_unless_users(exc)
                if on_error is None:
                    raise
                on_error("combiner", key, values, exc)
                combined[key] = values
        for key, value in self._final(self.combiner_final, "combiner", _as_pairs, on_error):
            combined.setdefault(key, []).append(value)
        return combined


def _as_pairs(items: Iterable[Any]) -> list[Any]:
    """A combiner's or reducer's `*_final` items, each checked to be a (key, value) pair."""
    return yielded_pairs((item for item in items), None, "final hook")


def _frame_failed(on_error: ErrorHook | None, records: list[Any], exc: BaseException,
                  empty: Any) -> Any:
    """A frame no form of the mapper could map: reported whole (raised without on_error)."""
    if on_error is None:
        raise exc
    on_error("mapper", "frame", records, exc)
    return empty


def yielded_pairs(result: Any, key: Any, role: str) -> list[Any]:
    """What a reducer (or combiner) gave for `key` as [key, value] pairs: a generator's
    pairs (each checked to be a pair), or [key, result] for a plain return value."""
    if not isinstance(result, GeneratorType):
        return [[key, result]]
    pairs = []
    for item in result:
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise TypeError(f"a {role} that yields must yield (key, value) pairs, "
                            f"not {type(item).__name__} {item!r:.80}")
        pairs.append([item[0], item[1]])
    return pairs


def combined_values(result: Any, key: Any) -> list[Any]:
    """A combiner's output for `key` as values: the one value it returned, or the values of
    the pairs it yielded, which must all be for `key` (a combiner cannot move values to
    another key: they would miss the reducer of their own)."""
    values = []
    for other, value in yielded_pairs(result, key, "combiner"):
        if other != key:
            raise ValueError(f"a combiner may yield pairs for its own key only: it was "
                             f"given {key!r:.60} and yielded {other!r:.60}")
        values.append(value)
    return values


def load_module(path: str | Path) -> ModuleType:
    """Import a pipeline file under a unique module name, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise PipelineDefinitionError(f"pipeline file not found: {path}")
    if path.suffix != ".py":
        raise PipelineDefinitionError(f"pipeline file must be a Python module (.py): {path}")
    name = f"mapreduce_pipeline_{path.stem}_{uuid.uuid4().hex[:8]}"
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise PipelineDefinitionError(f"cannot load pipeline file {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except BaseException as exc:
        reraise_unless_users(exc)
        del sys.modules[name]
        raise PipelineDefinitionError(
            f"pipeline {path} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _callable(module: Any, name: str, arity: int, required: bool, where: str) -> Any:
    fn = getattr(module, name, None)
    if fn is None:
        if required:
            signature = "(record)" if arity == 1 else "(key, values)"
            raise PipelineDefinitionError(f"{where} defines no `{name}{signature}` function")
        return None
    if not callable(fn):
        raise PipelineDefinitionError(f"{where}: `{name}` is not callable")
    try:
        inspect.signature(fn).bind(*range(arity))
    except TypeError as exc:
        raise PipelineDefinitionError(
            f"{where}: `{name}` must accept {arity} positional argument(s): {exc}"
        ) from exc
    except ValueError:
        pass  # builtins without a signature: trust them
    return fn


def spec_from_module(
    module: Any,
    *,
    pipeline_id: str,
    fmt: str,
    partitions: int,
    output_dir: str,
    source_partitions: int,
    where: str,
    keep: bool = False,
    max_errors: int | None = None,
    guarantee: str = "exactly-once",
    output_format: str = "jsonl",
    params: Mapping[str, str] | None = None,
) -> PipelineSpec:
    if guarantee not in GUARANTEES:
        raise PipelineDefinitionError(
            f"unknown processing guarantee {guarantee!r}; choose one of {GUARANTEES}")
    if fmt not in FORMATS:
        raise PipelineDefinitionError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    if partitions < 1:
        raise PipelineDefinitionError(f"partitions must be at least 1, not {partitions}")
    steps = _steps_of(module, fmt, where)
    first = steps[0]
    return PipelineSpec(
        pipeline_id=pipeline_id,
        **_spec_fields(first),
        fmt=fmt,
        partitions=partitions,
        output_dir=output_dir,
        source_partitions=source_partitions,
        name=where,
        keep=keep,
        max_errors=max_errors,
        guarantee=guarantee,
        output_format=output_format,
        created=time.time(),
        nonce=uuid.uuid4().hex,
        steps=steps if len(steps) > 1 else (),
        params=checked_params(params),
    )


def checked_params(params: Mapping[str, str] | None) -> dict[str, str] | None:
    """A job's parameters, checked: names without `=` or spaces, values strings (what a
    command line gives; a program converts them itself)."""
    if not params:
        return None
    for name, value in params.items():
        if not isinstance(name, str) or not name or "=" in name or name != name.strip():
            raise PipelineDefinitionError(f"a parameter name is a non-empty string without "
                                          f"`=` or surrounding spaces, not {name!r:.60}")
        if not isinstance(value, str):
            raise PipelineDefinitionError(f"parameter {name}: values are strings (as on the "
                                          f"command line), not {type(value).__name__}")
    return dict(params)


STEP_FUNCTIONS = ("mapper", "reducer", "combiner", "map_batch", "map_chunk", "key_selector",
                  "value_selector", "partitioner", *HOOKS)
STEP_OPTIONS = ("sort_values", "total_order")  # not functions: flags


def _steps_of(module: Any, fmt: str, where: str) -> tuple[Step, ...]:
    """The pipeline's steps, each checked: a module's `steps` list, or the one step its
    top-level functions make."""
    declared = getattr(module, "steps", None)
    if declared is None:
        return (_checked_step(module, 0, fmt, where),)
    defined = [name for name in (*STEP_FUNCTIONS, *STEP_OPTIONS)
               if getattr(module, name, None) not in (None, False)]
    if defined:
        raise PipelineDefinitionError(
            f"{where} defines both `steps` and top-level {', '.join(defined)}: put every "
            "function in a Step")
    if (not isinstance(declared, list | tuple) or not declared
            or not all(isinstance(step, Step) for step in declared)):
        raise PipelineDefinitionError(f"{where}: `steps` must be a non-empty list of Step(...)")
    return tuple(_checked_step(step, index, fmt, f"{where} step {index + 1}")
                 for index, step in enumerate(declared))


def _checked_step(functions: Any, index: int, fmt: str, where: str) -> Step:
    map_batch = _callable(functions, "map_batch", 1, False, where)
    map_chunk = _callable(functions, "map_chunk", 1, False, where)
    mapper_defined = getattr(functions, "mapper", None) is not None
    if map_chunk is not None and (fmt != "text" or index > 0):
        if map_batch is None and not mapper_defined:
            raise PipelineDefinitionError(
                f"{where}: `map_chunk(data)` reads text input only; define `mapper(record)` "
                f"or `map_batch(records)` for " +
                (f"--format {fmt}" if index == 0 else "the pairs of the step before"))
        map_chunk = None  # the other forms map parsed records
    mapper = _callable(functions, "mapper", 1, False, where)
    if map_batch is None and map_chunk is None and mapper is None:
        if index == 0:
            raise PipelineDefinitionError(f"{where} defines no `mapper(record)` function (nor "
                                          "`map_batch(records)` or `map_chunk(data)`)")
        mapper = _pass_on
    reducer = _callable(functions, "reducer", 2, False, where)
    combiner = _callable(functions, "combiner", 2, False, where)
    if reducer is None and combiner is not None:
        raise PipelineDefinitionError(f"{where} defines a `combiner` but no `reducer`: a "
                                      "map-only pipeline has nothing to combine for")
    hooks = {name: _callable(functions, name, 0, False, where) for name in HOOKS}
    for role, function in (("combiner", combiner), ("reducer", reducer)):
        if function is None and (hooks[f"{role}_init"] or hooks[f"{role}_final"]):
            raise PipelineDefinitionError(f"{where} defines {role} hooks but no `{role}`")
    partitioner = _callable(functions, "partitioner", 2, False, where)
    sort_values, total_order = (_flag(functions, name, where) for name in STEP_OPTIONS)
    if reducer is None and (partitioner is not None or sort_values or total_order):
        raise PipelineDefinitionError(f"{where} defines `partitioner`, `sort_values` or "
                                      "`total_order` but no `reducer`: a map-only step has "
                                      "no reduce partitions")
    if total_order and (index > 0 or partitioner is not None):
        raise PipelineDefinitionError(
            f"{where}: `total_order` samples the job's input for its keys, so only the first "
            "step can have it, and not with a `partitioner` of its own")
    return Step(mapper=mapper, reducer=reducer, combiner=combiner, map_batch=map_batch,
                map_chunk=map_chunk,
                key_selector=_callable(functions, "key_selector", 1, False, where),
                value_selector=_callable(functions, "value_selector", 1, False, where),
                partitioner=partitioner, sort_values=sort_values, total_order=total_order,
                **hooks)


def _flag(functions: Any, name: str, where: str) -> bool:
    value = getattr(functions, name, False)
    if not isinstance(value, bool):
        raise PipelineDefinitionError(f"{where}: `{name}` is True or False, not {value!r:.40}")
    return value


@dataclass(frozen=True)
class PipelineCode:
    """What a user wrote, before it is a spec: a module loaded from a file, or plain
    functions (a notebook's). `modules` are pickled by value with the spec, so that workers
    never need to import them; functions defined in __main__ always travel by value."""

    namespace: Any  # a module, or a namespace holding mapper, reducer, ...
    name: str
    modules: tuple[ModuleType, ...] = ()
    # What the code itself brings (an mrjob job, streaming commands): files it ships
    # (its FILES), the output format it writes (`lines`), and whether it reads its input
    # as lines of bytes only (no --format jsonl).
    side_files: dict[str, bytes] | None = None
    output_format: str | None = None
    reads_lines: bool = False

    def settled(self, fmt: str, output_format: str,
                files: dict[str, bytes] | None) -> tuple[str, dict[str, bytes] | None]:
        """The output format and the shipped files of a job of this code, given the
        user's: what the code brings wins (an mrjob job writes its own lines), and a file
        the user ships may not clash with one of the code's by name."""
        if self.reads_lines and fmt != "text":
            raise PipelineDefinitionError(f"{self.name} reads its input as lines (an mrjob "
                                          "job's INPUT_PROTOCOL decodes them): drop "
                                          f"--format {fmt}")
        if not self.side_files:
            return self.output_format or output_format, files
        clash = sorted(set(self.side_files) & set(files or {}))
        if clash:
            raise PipelineDefinitionError(f"{self.name} ships {clash[0]!r} itself: --file "
                                          "may not ship another file of that name")
        return self.output_format or output_format, {**self.side_files, **(files or {})}

    @classmethod
    def from_file(cls, path: str | Path,
                  params: Mapping[str, str] | None = None) -> PipelineCode:
        """The module at `path`, loaded here (where its top level runs, with the job's
        `params` readable: workers get its functions and globals, and never run it)."""
        with task_context.running(checked_params(params)):
            module = load_module(path)
        return cls(module, Path(path).name, (module,))

    @classmethod
    def from_functions(cls, name: str = "pipeline", **functions: Any) -> PipelineCode:
        """mapper=..., reducer=..., combiner=..., map_batch=..., map_chunk=...,
        key_selector=..., value_selector=..., or steps=[Step(...), ...] (None for those
        not given)."""
        known = {*STEP_FUNCTIONS, *STEP_OPTIONS, "steps"}
        unknown = sorted(set(functions) - known)
        if unknown:
            raise PipelineDefinitionError(f"unknown pipeline functions {unknown}; "
                                          f"a pipeline has {sorted(known)}")
        every = [fn for name, fn in functions.items() if name in STEP_FUNCTIONS]
        every += [getattr(step, name) for step in functions.get("steps") or ()
                  for name in STEP_FUNCTIONS if isinstance(step, Step)]
        modules = {sys.modules.get(getattr(fn, "__module__", "") or "")
                   for fn in every if fn is not None}
        by_value = tuple(m for m in modules if m is not None and _users_own(m))
        return cls(SimpleNamespace(**{k: v for k, v in functions.items() if v is not None}),
                   name, by_value)


def _users_own(module: ModuleType) -> bool:
    """A module the user wrote (not the standard library, not an installed package, not
    __main__, which cloudpickle ships by value anyway): ship it with the spec."""
    name = module.__name__
    path = getattr(module, "__file__", None)
    if name == "__main__" or path is None or name.split(".")[0] in sys.stdlib_module_names:
        return False
    return "site-packages" not in Path(path).parts and "dist-packages" not in Path(path).parts
