"""The inline runner (mrjob's `-r inline`): a pipeline run in this process, with no Kafka or
Redis, the way the workers run it, for developing and testing pipelines.

Frames are cut as the source cuts them; each is mapped as a mapper maps it (`map_chunk`,
`map_batch` or `mapper`, then the combiner), values are grouped by key, every key is
reduced, and what the cluster would dead-letter (a record or key whose code raises, a key,
value or result that is not a JSON value) is left out and reported. Counters are counted as
the workers count them. The output directory has the cluster's layout and format: one part
per partition, keys sorted (a key's yielded pairs in the order the reducer yielded them; a
map-only pipeline's pairs in input order, frame n in part n mod partitions), `_SUCCESS`
last. On the same input the part files are
the same as the cluster's (tested on the samples).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mapreduce_kafka.services.client.reference import input_frames
from mapreduce_kafka.shared import output, sampling, side_files, task_context
from mapreduce_kafka.shared.codec import (
    decode_items,
    decode_records,
    encode_checked,
    key_order,
    pair_frames,
    step_frame_seq,
)
from mapreduce_kafka.shared.errors import InputError
from mapreduce_kafka.shared.inputs import TopicInput, resolve_inputs
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.shuffle import shuffle_frames
from mapreduce_kafka.shared.spec import PipelineCode, PipelineSpec, spec_from_module
from mapreduce_kafka.shared.task_context import Counters, Origin
from mapreduce_kafka.shared.user_code import reraise_unless_users

PIPELINE_ID = "inline"
Numbered = tuple[int, bytes, Origin | None]  # a frame, its number and where it comes from


@dataclass
class InlineResult:
    pairs: list[tuple[Any, Any]]  # the output's (key, value) pairs, in part order
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    output: Path | None = None
    counters: Counters = field(default_factory=dict)  # {group: {name: count}}

    @property
    def results(self) -> dict[Any, Any]:
        """The output as {key: value}, for a pipeline that gives each key once (its
        reducer returns a value); `pairs` holds any pipeline's output."""
        results = dict(self.pairs)
        if len(results) < len(self.pairs):
            raise ValueError(f"the output has {len(self.pairs)} pairs for {len(results)} "
                             "keys (a reducer that yields, or a map-only pipeline): read "
                             "`.pairs` instead of `.results`")
        return results

    @property
    def keys(self) -> int:
        return len(self.pairs)


def run_inline(code: PipelineCode, inputs: Iterable[Path | str], out: Path | str | None = None,
               *, fmt: str = "text", partitions: int = 4, output_format: str = "jsonl",
               settings: Settings | None = None, frame_bytes: int = 1 << 20,
               params: Mapping[str, str] | None = None,
               files: Iterable[Path | str] = ()) -> InlineResult:
    """Run a pipeline in this process. `settings` only for a `kafka:TOPIC` input (read up
    to its high watermarks now); `out`, when given, a directory that must not exist;
    `params`, the job's parameters; `files`, the files it ships (side_file)."""
    output_format, shipped = code.settled(fmt, output_format,
                                          side_files.checked([Path(f) for f in files]))
    spec = spec_from_module(code.namespace, pipeline_id=PIPELINE_ID, fmt=fmt,
                            partitions=partitions, output_dir=str(out or "-"),
                            source_partitions=1, where=code.name,
                            output_format=output_format, params=params)
    if shipped:
        spec = replace(spec, side_files=shipped)
    sources = resolve_inputs(list(inputs))
    input_files = [s for s in sources if isinstance(s, Path)]
    topics = [s for s in sources if isinstance(s, TopicInput)]
    spec = sampling.with_boundaries(spec, input_files, len(topics))  # total_order
    if topics and settings is None:
        raise InputError("a kafka: input needs a cluster: pass --bootstrap-servers or set "
                         "MAPREDUCE_BOOTSTRAP_SERVERS")
    from mapreduce_kafka.services.client.source import check_output, topic_ranges

    target = check_output(out) if out is not None else None
    if target is not None and output.is_topic(target):
        raise InputError("the inline runner writes a directory, not a topic")
    ranges = [r for t in topics for r in topic_ranges(settings, t.topic)]  # type: ignore[arg-type]
    letters: list[dict[str, Any]] = []
    counters: Counters = {}
    frames: list[Numbered] = [(seq, frame, origin) for seq, (frame, origin) in enumerate(
        input_frames(spec, input_files, ranges, settings))]
    for step in range(spec.step_count):
        at_step = spec.at_step(step)
        if at_step.map_only:
            parts = _map_only(at_step, frames, letters, counters)
        else:
            groups = _map_all(at_step, frames, letters, frame_bytes, counters)
            parts = _reduce_all(at_step, groups, letters, counters)
        # the next step's input, as the sinks cut it from each part
        frames = [(step_frame_seq(part, index), frame, None) for part, pairs in enumerate(parts)
                  for index, frame in enumerate(pair_frames(pairs, frame_bytes))]
    result = InlineResult([pair for part in parts for pair in part], letters,
                          counters=task_context.total([counters]))
    if target is not None:
        result.output = _write(spec, parts, Path(target))
    return result


def _letter(role: str, identity: str, data: Any, exc: BaseException) -> dict[str, Any]:
    return {"pipeline": PIPELINE_ID, "role": role, "identity": identity,
            "error": f"{type(exc).__name__}: {exc}", "data": repr(data)[:2000],
            "traceback": "".join(traceback.format_exception(exc))[-8000:]}


def _map_all(spec: PipelineSpec, source: Iterable[Numbered],
             letters: list[dict[str, Any]], limit: int,
             counters: Counters) -> dict[Any, list[Any]]:
    groups: dict[Any, list[Any]] = {}
    for seq, frame, origin in source:
        def on_error(role: str, at: object, data: object, exc: BaseException,
                     seq: int = seq) -> None:
            letters.append(_letter(role, f"{role}:{seq}:{at}", data, exc))

        with spec.task() as task:  # a frame is a mapper's task
            task.reading(frame, origin)
            mapped = spec.map_data(frame, lambda data: decode_records(data, spec.record_format),
                                   on_error)
        task_context.merge(counters, task.take())
        # what the mapper would send: the same encoding checks, then as the shuffler reads it
        sent, bad = shuffle_frames(mapped, 1, limit)
        for key, values, reason in bad:
            letters.append(_letter("mapper", f"encode:{seq}:{key!r}", (key, values),
                                   ValueError(reason)))
        for _partition, _chunk, data in sent:
            for key, values in decode_items(data):
                groups.setdefault(key, []).extend(values)
    return groups


def _map_only(spec: PipelineSpec, source: Iterable[Numbered],
              letters: list[dict[str, Any]], counters: Counters) -> list[list[tuple[Any, Any]]]:
    """A map-only step's parts: frame n's pairs, in the order they were yielded, in part
    n mod partitions (the map partition frame n is sent to), frames in number order."""
    parts: list[list[tuple[Any, Any]]] = [[] for _ in range(spec.partitions)]
    for seq, frame, origin in sorted(source, key=lambda numbered: numbered[0]):
        def on_error(role: str, at: object, data: object, exc: BaseException,
                     seq: int = seq) -> None:
            letters.append(_letter(role, f"{role}:{seq}:{at}", data, exc))

        with spec.task() as task:
            task.reading(frame, origin)
            pairs = spec.map_pairs(frame, lambda data: decode_records(data, spec.record_format),
                                   on_error)
        task_context.merge(counters, task.take())
        _, good, bad = encode_checked(pairs)
        for (key, value), reason in bad:
            letters.append(_letter("mapper", f"encode:{seq}:{key!r}", (key, value),
                                   ValueError(reason)))
        parts[seq % spec.partitions].extend((key, value) for key, value in good)
    return parts


def _reduce_all(spec: PipelineSpec, groups: dict[Any, list[Any]],
                letters: list[dict[str, Any]], counters: Counters) -> list[list[tuple[Any, Any]]]:
    """Each part's pairs, a reduce partition at a time (one task, with its hooks): the
    units of its keys in key order, a unit's pairs as the reducer yielded them, then what
    reducer_final yielded."""
    by_part: list[list[tuple[Any, list[Any]]]] = [[] for _ in range(spec.partitions)]
    for key, values in groups.items():
        by_part[spec.partition_of(key)].append((key, values))
    return [_reduce_part(spec, part, keyed, letters, counters)
            for part, keyed in enumerate(by_part)]


def _reduce_part(spec: PipelineSpec, part: int, groups: list[tuple[Any, list[Any]]],
                 letters: list[dict[str, Any]], counters: Counters) -> list[tuple[Any, Any]]:
    units = []

    def on_error(role: str, at: object, data: object, exc: BaseException) -> None:
        letters.append(_letter(role, f"{role}:final:{part}", data, exc))

    with spec.task() as task:
        if spec.reducer_init is not None:
            spec.reducer_init()  # raises: the cluster fails such a pipeline too
        for key, values in groups:
            try:
                units.append([key, spec.reduce_key(key, values)])
            except BaseException as exc:  # user code: dead-lettered, as the reducer does
                reraise_unless_users(exc)
                letters.append(_letter("reducer", f"reducer:{key!r}", (key, values), exc))
        final = spec.reduce_final(on_error)
        task_context.merge(counters, task.take())
    _, good, bad = encode_checked(units)
    for (key, result), reason in bad:
        letters.append(_letter("reducer", f"reducer:{key!r}", (key, result),
                               ValueError(f"the reducer's result {reason}")))
    _, final, bad = encode_checked(final)
    for (key, value), reason in bad:
        letters.append(_letter("reducer", f"reducer:final:{part}:{key!r}", (key, value),
                               ValueError(f"reducer_final's pair {reason}")))
    good.sort(key=lambda unit: key_order(unit[0]))
    return [(k, v) for _, pairs in good for k, v in pairs] + [(k, v) for k, v in final]


def _write(spec: PipelineSpec, parts: list[list[tuple[Any, Any]]], target: Path) -> Path:
    staging = output.staging_dir(target, PIPELINE_ID)
    for part, items in enumerate(parts):
        output.write_part(staging, part, items, spec.output_format)
    output.finalize(staging, target, PIPELINE_ID)
    return target
