"""The wire format: the one module that knows how things look inside Kafka messages.

Contract
- Every message carries its metadata in Kafka headers (an Envelope): kind, pipeline id,
  frame sequence number, chunk number, reduce partition. Values hold data only.
- Input records travel as *frames*: raw bytes of whole lines, many records per message.
  A text record is one line without its newline; a jsonl record is that line parsed.
- Intermediate data travels as orjson arrays: pairs ``[[key, value], ...]`` from mappers,
  groups ``[[key, [values...]], ...]`` from shufflers, results ``[[key, value], ...]`` from
  reducers. Keys and values must therefore be JSON values; a JSON array in key position
  comes back as a tuple so that it stays hashable.
- The pipeline spec is the only thing pickled (cloudpickle, by value) and this is the only
  module that calls cloudpickle.
- Partitions are chosen from a stable CRC-32 of the key (never Python's salted hash()), so
  one key always lands in one partition, in every process and every run.
- Keys and values must be JSON values: finite numbers (orjson would write NaN as null),
  strings that are valid Unicode, lists, dicts with string keys. An item that is not is
  reported by `encode_checked`, never half-written.
- A message larger than the limit it is sent with (a hot key's values, one large result)
  travels as fragments: pieces of its bytes with a group id, an index and a count in the
  `mr-f` header, reassembled by the reader (shared/reassembly.py). A Kafka message's size
  is a transport limit, not a data limit.
"""

from __future__ import annotations

import enum
import math
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle
import orjson

from mapreduce_kafka.shared.user_code import reraise_unless_users


class Kind(enum.Enum):
    ANNOUNCED = "announced"  # PIPELINES: a spec submitted by a source
    READY = "ready"  # PIPELINES: the dispatcher made the pipeline's topics usable; also
    # the first record of every MAP---/REDUCE--- partition (services/roles/dispatcher.py)
    RECORDS = "records"  # a frame of data
    SPLIT = "split"  # where a frame of data is: a file, an offset and a length (see Split)
    TOPIC_RANGE = "range"  # records of an input topic: a partition and an offset range
    STREAM_ENDED = "ended"  # end-of-stream marker, one per partition
    COUNTERS = "counters"  # OUTPUT: what a reducer counted, per key: [[key, counters], ...]
    SPEC_PART = "spec-part"  # PIPELINES: a part of a spec too large for one message


@dataclass(frozen=True, slots=True)
class Fragment:
    """One piece of a message too large to send whole."""

    group: str  # new for every attempt to send the message: a replay is another group
    index: int
    count: int

    def header(self) -> bytes:
        return f"{self.group}:{self.index}:{self.count}".encode()

    @classmethod
    def parse(cls, raw: bytes) -> Fragment:
        group, index, count = raw.decode().split(":")
        fragment = cls(group, int(index), int(count))
        if not 0 <= fragment.index < fragment.count:
            raise ValueError(f"fragment {fragment.index} of {fragment.count}")
        return fragment


# The kinds that carry input: a frame, or where to read one.
INPUT_KINDS = frozenset({Kind.RECORDS, Kind.SPLIT, Kind.TOPIC_RANGE})
# The chunk of a reduce task's final unit on OUTPUT (and of its counters): what
# reducer_final yielded, one per reduce partition (services/roles/reducer.py).
TASK_FINAL = 1


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: Kind
    pipeline: str
    seq: int = -1  # source frame number: the identity that lets the shuffler drop replays
    chunk: int = 0  # a mapper may split one frame's output for one partition in chunks
    part: int = -1  # reduce partition of an OUTPUT frame: the part file it belongs to
    fragment: Fragment | None = None  # set on each piece of an oversized message
    step: int = 0  # the pipeline's step the message belongs to (a header from step 1 on)
    # where a frame sent through Kafka starts in its input: JSON [path, offset] (so that a
    # mapper can tell its records' origin, task_context.input_context)
    origin: bytes = b""

    def headers(self) -> list[tuple[str, bytes]]:
        headers = [
            ("mr-k", self.kind.value.encode()),
            ("mr-p", self.pipeline.encode()),
            ("mr-s", str(self.seq).encode()),
            ("mr-c", str(self.chunk).encode()),
            ("mr-r", str(self.part).encode()),
        ]
        if self.fragment is not None:
            headers.append(("mr-f", self.fragment.header()))
        if self.step:
            headers.append(("mr-t", str(self.step).encode()))
        if self.origin:
            headers.append(("mr-o", self.origin))
        return headers

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes | None]] | None) -> Envelope:
        if not headers:
            raise CodecError("message has no headers")
        h = {k: v for k, v in headers}
        try:
            return cls(
                kind=Kind(h["mr-k"].decode()),  # type: ignore[union-attr]
                pipeline=h["mr-p"].decode(),  # type: ignore[union-attr]
                seq=int(h.get("mr-s") or b"-1"),
                chunk=int(h.get("mr-c") or b"0"),
                part=int(h.get("mr-r") or b"-1"),
                fragment=Fragment.parse(h["mr-f"]) if h.get("mr-f") else None,  # type: ignore[arg-type]
                step=int(h.get("mr-t") or b"0"),
                origin=h.get("mr-o") or b"",
            )
        except (KeyError, ValueError, AttributeError) as exc:
            raise CodecError(f"malformed envelope headers {sorted(h)}: {exc}") from exc


class CodecError(ValueError):
    """A message that cannot be decoded."""


# ---- records -------------------------------------------------------------------------


def split_lines(frame: bytes) -> list[bytes]:
    """The lines of a frame (frames always end with a newline)."""
    if not frame:
        return []
    return frame[:-1].split(b"\n") if frame.endswith(b"\n") else frame.split(b"\n")


def count_lines(frame: bytes) -> int:
    """len(split_lines(frame)), without making the lines (a C-speed count)."""
    if not frame:
        return 0
    return frame.count(b"\n") + (not frame.endswith(b"\n"))


def decode_records(frame: bytes, fmt: str) -> list[Any]:
    """The user-visible records of a frame: str lines, or parsed JSON values for jsonl."""
    lines = split_lines(frame)
    if fmt == "text":
        return [line.decode("utf-8", "replace") for line in lines]
    if fmt == "jsonl":
        return [orjson.loads(line) for line in lines if line.strip()]
    if fmt == "pairs":  # a later step's input: the previous step's [key, value] lines
        return [(hashable(key), value) for key, value in map(orjson.loads, lines)]
    raise CodecError(f"unknown record format {fmt!r}")


def pair_frames(pairs: Iterable[Any], limit: int) -> Iterable[bytes]:
    """A step's output pairs as the next step's input frames: one JSON [key, value] line
    each, cut before a frame would pass `limit` bytes (a longer line is a frame alone).
    Deterministic: the same pairs in the same order give the same frames, whose tags
    then name the same data on a replay."""
    frame: list[bytes] = []
    size = 0
    for key, value in pairs:
        line = orjson.dumps([key, value]) + b"\n"
        if frame and size + len(line) > limit:
            yield b"".join(frame)
            frame, size = [], 0
        frame.append(line)
        size += len(line)
    if frame:
        yield b"".join(frame)


# Frames a sink cuts from one part of a step's output for the next step, at most; the
# next step's frame numbers are part * STEP_FRAMES_PER_PART + index, unique in the step.
STEP_FRAMES_PER_PART = 1 << 32


def step_frame_seq(part: int, index: int) -> int:
    if not 0 <= index < STEP_FRAMES_PER_PART:
        raise CodecError(f"a part cut in more than {STEP_FRAMES_PER_PART} frames")
    return part * STEP_FRAMES_PER_PART + index


@dataclass(frozen=True, slots=True)
class Split:
    """A frame that stays in its file (Hadoop's input split): workers that see the same
    filesystem read `length` bytes at `offset` themselves, instead of receiving them
    through Kafka twice. Size and mtime tell a reader that the file changed since. A
    compressed file is one split: offset 0, its whole size (shared/inputs.py reads it)."""

    path: str
    offset: int
    length: int
    size: int
    mtime_ns: int

    def encode(self) -> bytes:
        return orjson.dumps([self.path, self.offset, self.length, self.size, self.mtime_ns])

    @classmethod
    def decode(cls, data: bytes) -> Split:
        try:
            return cls(*orjson.loads(data))
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            raise CodecError(f"undecodable input split: {exc}") from exc


@dataclass(frozen=True, slots=True)
class TopicRange:
    """Records of an input topic that one frame number stands for: offsets [start, end) of
    one partition, within the high watermark taken when the job was submitted."""

    topic: str
    partition: int
    start: int
    end: int

    def encode(self) -> bytes:
        return orjson.dumps([self.topic, self.partition, self.start, self.end])

    @classmethod
    def decode(cls, data: bytes) -> TopicRange:
        try:
            return cls(*orjson.loads(data))
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            raise CodecError(f"undecodable topic range: {exc}") from exc


# ---- keyed data ----------------------------------------------------------------------


def hashable(key: Any) -> Any:
    """A decoded JSON key as a dict key: arrays become tuples."""
    return tuple(hashable(k) for k in key) if isinstance(key, list) else key


def encode_items(items: Sequence[Any]) -> bytes:
    """Pairs, groups or results: any list of [key, value] arrays."""
    try:
        return orjson.dumps(items)
    except TypeError as exc:
        raise CodecError(f"keys and values must be JSON values: {exc}") from exc


def decode_items(data: bytes) -> list[tuple[Any, Any]]:
    try:
        return [(hashable(k), v) for k, v in orjson.loads(data)]
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise CodecError(f"undecodable data frame: {exc}") from exc


def key_bytes(key: Any) -> bytes:
    if isinstance(key, str):
        try:
            return key.encode()
        except UnicodeEncodeError as exc:  # a lone surrogate (say, from surrogateescape)
            raise CodecError(f"key {key!r} is not valid Unicode: {exc.reason}") from exc
    try:
        return orjson.dumps(key)
    except TypeError as exc:  # e.g. integers beyond 64 bits, sets, objects
        raise CodecError(f"key {key!r} is not a JSON value: {exc}") from exc


def partition_for(key: Any, partitions: int) -> int:
    return zlib.crc32(key_bytes(key)) % partitions


def split_by_size(items: list[Any], limit: int, data: bytes | None = None) -> Iterable[bytes]:
    """Encode items as one or more arrays, each at most `limit` bytes unless it holds a
    single item (which then travels as fragments). Deterministic: the same items in the
    same order give the same arrays."""
    if data is None:
        data = encode_items(items)
    if len(data) <= limit or len(items) <= 1:
        yield data
        return
    mid = len(items) // 2
    yield from split_by_size(items[:mid], limit)
    yield from split_by_size(items[mid:], limit)


def key_order(key: Any) -> tuple[int, Any]:
    """A total, deterministic order on keys of any JSON type: strings as strings, numbers
    as numbers, arrays element by element, anything else by its JSON text (part files and
    chunking use it; a map-only pipeline's output is ordered by its (frame, piece, chunk)
    arrays, which must sort as numbers)."""
    if isinstance(key, str):
        return (0, key)
    if isinstance(key, int | float):
        return (1, key)
    if isinstance(key, tuple | list):
        return (2, tuple(key_order(element) for element in key))
    return (3, orjson.dumps(key))


def sort_items(items: list[Any]) -> list[Any]:
    """[key, value] items in key order: the same whatever order a mapper yielded them."""
    try:
        return sorted(items, key=lambda item: item[0])
    except TypeError:  # keys of mixed types
        return sorted(items, key=lambda item: key_order(item[0]))


def _has_null_token(data: bytes) -> bool:
    """Whether encoded JSON holds a `null` value (not merely the letters, as in "devnull"
    inside a string). orjson writes NaN and infinity as null, so then the data is searched
    for non-finite floats; a string that holds a JSON-looking `,null]` costs that search
    too, and nothing else. A find() per occurrence: no scan slower than memchr's."""
    at = data.find(b"null")
    while at >= 0:
        if data[at - 1:at] in _BEFORE_NULL and data[at + 4:at + 5] in _AFTER_NULL:
            return True
        at = data.find(b"null", at + 4)
    return False


_BEFORE_NULL = (b"", b"[", b",", b":")
_AFTER_NULL = (b"", b"]", b",", b"}")


def problem_of(value: Any) -> str | None:
    """Why a key or value is not a JSON value this format can carry, or None."""
    try:
        data = orjson.dumps(value)
    except TypeError as exc:
        return f"not a JSON value: {exc}"
    if _has_null_token(data) and _non_finite(value):
        return "not a JSON value: NaN or infinity (JSON has no such number)"
    return None


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list | tuple):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def encode_checked(items: list[Any]) -> tuple[bytes, list[Any], list[tuple[Any, str]]]:
    """Encode [key, value] items, leaving out those whose key or value is not a JSON value:
    (the encoded good items, the good items, [(bad item, reason)]). The common case costs
    one encoding and a scan for `null` (orjson writes NaN and infinity as null)."""
    try:
        data = orjson.dumps(items)
    except TypeError:
        pass
    else:
        if not _has_null_token(data) or not _non_finite(items):
            return data, items, []
    good, bad = [], []
    for item in items:
        reason = problem_of(item)
        if reason is None:
            good.append(item)
        else:
            bad.append((item, reason))
    return orjson.dumps(good), good, bad


def fragments(data: bytes, limit: int) -> list[tuple[bytes, Fragment | None]]:
    """A message's bytes as one piece when they fit in `limit`, else as fragments under one
    new group id (see the module's docstring)."""
    if len(data) <= limit:
        return [(data, None)]
    view = memoryview(data)
    count = -(-len(data) // limit)
    group = uuid.uuid4().hex[:16]
    return [(bytes(view[i * limit:(i + 1) * limit]), Fragment(group, i, count))
            for i in range(count)]


# ---- the pipeline spec ---------------------------------------------------------------


def dump_spec(spec: Any, by_value_modules: Iterable[Any] = ()) -> bytes:
    """Pickle a spec so that the user's module travels by value: workers never import it."""
    registered = []
    for module in by_value_modules:
        cloudpickle.register_pickle_by_value(module)
        registered.append(module)
    try:
        return cloudpickle.dumps(spec)
    finally:
        for module in registered:
            cloudpickle.unregister_pickle_by_value(module)


def load_spec(data: bytes) -> Any:
    try:
        return cloudpickle.loads(data)
    except BaseException as exc:  # unpickling runs arbitrary imports: any error is possible
        reraise_unless_users(exc)
        raise CodecError(f"pipeline spec cannot be unpickled: {type(exc).__name__}: {exc}") from exc
