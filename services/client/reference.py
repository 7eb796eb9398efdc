"""The sequential oracle: map, group, reduce in one process, with the same record decoding
as the workers. It is the oracle for `--verify`, `make demo` and every job test."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer

from mapreduce_kafka.shared import task_context
from mapreduce_kafka.shared.codec import (
    TopicRange,
    decode_records,
    encode_checked,
    pair_frames,
    problem_of,
)
from mapreduce_kafka.shared.inputs import frame_spans, topic_range_pieces
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.spec import PipelineSpec
from mapreduce_kafka.shared.task_context import FileOrigin, Origin
from mapreduce_kafka.shared.user_code import reraise_unless_users

FRAME_BYTES = 1 << 20


def input_frames(spec: PipelineSpec, files: list[Path], ranges: Iterable[TopicRange] = (),
                 settings: Settings | None = None) -> Iterator[tuple[bytes, Origin | None]]:
    """The frames of a job's input, each with where it comes from: its files, then the
    topic ranges its source recorded (read with `settings`); records that are not records
    are left out, as dead letters are."""
    for path, offset, frame in frame_spans(files, FRAME_BYTES, spec.fmt):
        yield frame, FileOrigin(str(path.resolve()), offset, spec.fmt)
    ranges = list(ranges)
    if not ranges:
        return
    if settings is None:
        raise ValueError("reading a topic input needs the cluster's settings")
    config = settings.consumer_config("mapreduce-oracle")
    config["enable.partition.eof"] = True
    consumer = Consumer(config)
    try:
        for span in ranges:
            yield from topic_range_pieces(consumer, span, spec.fmt, FRAME_BYTES,
                                          lambda _offset, _value, _why: None)
    finally:
        consumer.close()


def run_sequential(spec: PipelineSpec, files: list[Path], ranges: Iterable[TopicRange] = (),
                   settings: Settings | None = None) -> list[tuple[Any, Any]]:
    """Map every record, group by key, reduce every key: the output's (key, value) pairs
    (a map-only pipeline's are its mapper's, in input order). The framework's error policy
    applies here too: a record whose mapper raises, a pair whose key or value is not a JSON
    value, and a key whose reducer raises or gives something that is not a JSON value are
    left out (the framework dead-letters them), so that results stay comparable.

    It uses the per-record `mapper` even when the pipeline has a faster `map_batch` or
    `map_chunk`, so that a job's check compares them; only a pipeline without `mapper` is
    mapped here with those, frame by frame."""
    with spec.task():  # param() works here; counts are not kept
        pairs = _run_step(spec, input_frames(spec, files, ranges, settings))
        for step in range(1, spec.step_count):  # a later step reads the previous one's pairs
            pairs = _run_step(spec.at_step(step), unplaced(pair_frames(pairs, FRAME_BYTES)))
    return pairs


def unplaced(frames: Iterable[bytes]) -> Iterator[tuple[bytes, Origin | None]]:
    """A later step's frames: they come from no file or topic."""
    for frame in frames:
        yield frame, None


def _reading(source: Iterable[tuple[bytes, Origin | None]]) -> Iterator[bytes]:
    """The frames, the task told where each comes from as it is mapped."""
    task = task_context.current()
    for frame, origin in source:
        if task is not None:
            task.reading(frame, origin)
        yield frame


def _run_step(spec: PipelineSpec,
              source: Iterable[tuple[bytes, Origin | None]]) -> list[tuple[Any, Any]]:
    if spec.map_only:
        return _map_only(spec, _reading(source))
    return _run_frames(spec, _reading(source))


def _map_only(spec: PipelineSpec, source: Iterable[bytes]) -> list[tuple[Any, Any]]:
    plain = replace(spec, map_chunk=None, map_batch=None) if spec.mapper else spec
    out: list[tuple[Any, Any]] = []
    for frame in source:
        pairs = plain.map_pairs(frame, lambda data: decode_records(data, spec.record_format),
                                lambda *_: None)  # dead-lettered by the framework
        _, good, _ = encode_checked(pairs)
        out.extend((key, value) for key, value in good)
    return out


def _run_frames(spec: PipelineSpec, source: Iterable[bytes]) -> list[tuple[Any, Any]]:
    """Map frame by frame (mapper_init and mapper_final per frame, as a mapper runs them),
    group, reduce. Without the combiner, unless it has hooks: a combiner must not change
    the result, but its `combiner_final` may add pairs."""
    plain = replace(spec, map_chunk=None, map_batch=None) if spec.mapper else spec
    if spec.combiner_init is None and spec.combiner_final is None:
        plain = replace(plain, combiner=None)
    groups: dict[Any, list[Any]] = {}
    for frame in source:
        mapped = plain.map_data(frame, lambda data: decode_records(data, spec.record_format),
                                lambda *_: None)  # dead-lettered by the framework
        for key, values in mapped.items():
            groups.setdefault(key, []).extend(values)
    return _reduce_all(spec, groups)


def _reduce_all(spec: PipelineSpec, groups: dict[Any, list[Any]]) -> list[tuple[Any, Any]]:
    """Every key reduced; with reducer hooks, a reduce partition at a time (its task:
    reducer_init, its keys, what reducer_final yields)."""
    by_part: dict[int, list[tuple[Any, list[Any]]]] = {}
    for key, values in _encodable(groups):
        by_part.setdefault(spec.partition_of(key) if spec.reduce_tasks else 0, []).append(
            (key, values))
    out: list[tuple[Any, Any]] = []
    for _part, keyed in sorted(by_part.items()):
        if spec.reducer_init is not None:
            spec.reducer_init()
        units = []
        for key, values in keyed:
            try:
                units.append([key, spec.reduce_key(key, values)])
            except BaseException as exc:  # dead-lettered by the framework: left out here too
                reraise_unless_users(exc)
                continue
        _, good, _ = encode_checked(units)
        _, final, _ = encode_checked(spec.reduce_final(lambda *_: None))
        out += [(key, value) for _, pairs in good for key, value in pairs]
        out += [(key, value) for key, value in final]
    return out


def _encodable(groups: dict[Any, list[Any]]) -> list[tuple[Any, list[Any]]]:
    """The groups without the keys and values that are not JSON values."""
    items = [[key, values] for key, values in groups.items()]
    _, good, bad = encode_checked(items)
    kept = [(key, values) for key, values in good]
    for (key, values), _reason in bad:
        if problem_of(key) is None:
            values = [v for v in values if problem_of(v) is None]
            if values:
                kept.append((key, values))
    return kept


@dataclass
class Comparison:
    expected_keys: int
    actual_keys: int
    missing: list[Any] = field(default_factory=list)
    unexpected: list[Any] = field(default_factory=list)
    duplicated: list[Any] = field(default_factory=list)
    different: list[tuple[Any, Any, Any]] = field(default_factory=list)
    counted: str = "keys"  # or "pairs", where keys repeat (compared as multisets)

    @property
    def equal(self) -> bool:
        return not (self.missing or self.unexpected or self.duplicated or self.different)

    def summary(self, limit: int = 5) -> str:
        if self.equal:
            return f"identical: {self.actual_keys} {self.counted}, every value equal"
        parts = [f"expected {self.expected_keys} {self.counted}, got {self.actual_keys}"]
        for name, items in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("duplicated", self.duplicated), ("different", self.different)):
            if items:
                parts.append(f"{len(items)} {name} (e.g. {items[:limit]})")
        return "; ".join(parts)


def compare(expected: list[tuple[Any, Any]] | dict[Any, Any],
            actual_items: list[tuple[Any, Any]]) -> Comparison:
    """Compare as JSON: the output file holds JSON, so tuples are lists there. Where the
    expected output has each key once (a reducer that returns), by key: a value that
    differs is named with its key. Otherwise (yielding reducers, map-only pipelines) as
    multisets of pairs: a pair the output lacks is missing, one it has too often is
    unexpected."""
    pairs = list(expected.items()) if isinstance(expected, dict) else list(expected)
    want = {orjson.dumps(k): orjson.dumps(v) for k, v in pairs}
    if len(want) < len(pairs):
        return _compare_multisets(pairs, actual_items)
    got: dict[bytes, bytes] = {}
    result = Comparison(expected_keys=len(want), actual_keys=len(actual_items))
    for key, value in actual_items:
        k = orjson.dumps(key)
        if k in got:
            result.duplicated.append(key)
        got[k] = orjson.dumps(value)
    for k, v in want.items():
        if k not in got:
            result.missing.append(orjson.loads(k))
        elif got[k] != v:
            result.different.append((orjson.loads(k), orjson.loads(v), orjson.loads(got[k])))
    result.unexpected = [orjson.loads(k) for k in got if k not in want]
    return result


def _compare_multisets(expected: list[tuple[Any, Any]],
                       actual: list[tuple[Any, Any]]) -> Comparison:
    want = Counter(orjson.dumps([k, v]) for k, v in expected)
    got = Counter(orjson.dumps([k, v]) for k, v in actual)
    result = Comparison(expected_keys=len(expected), actual_keys=len(actual), counted="pairs")
    result.missing = [orjson.loads(pair) for pair in (want - got).elements()]
    result.unexpected = [orjson.loads(pair) for pair in (got - want).elements()]
    return result
