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
"""

from __future__ import annotations

import enum
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle
import orjson


class Kind(enum.Enum):
    ANNOUNCED = "announced"  # PIPELINES: a spec submitted by a source
    READY = "ready"  # PIPELINES: the dispatcher made the pipeline's topics usable; also
    # the first record of every MAP---/REDUCE--- partition (services/dispatcher.py)
    RECORDS = "records"  # a frame of data
    SPLIT = "split"  # where a frame of data is: a file, an offset and a length (see Split)
    STREAM_ENDED = "ended"  # end-of-stream marker, one per partition


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: Kind
    pipeline: str
    seq: int = -1  # source frame number: the identity that lets the shuffler drop replays
    chunk: int = 0  # a mapper may split one frame's output for one partition in chunks
    part: int = -1  # reduce partition of an OUTPUT frame: the part file it belongs to

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("mr-k", self.kind.value.encode()),
            ("mr-p", self.pipeline.encode()),
            ("mr-s", str(self.seq).encode()),
            ("mr-c", str(self.chunk).encode()),
            ("mr-r", str(self.part).encode()),
        ]

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


def decode_records(frame: bytes, fmt: str) -> list[Any]:
    """The user-visible records of a frame: str lines, or parsed JSON values for jsonl."""
    lines = split_lines(frame)
    if fmt == "text":
        return [line.decode("utf-8", "replace") for line in lines]
    if fmt == "jsonl":
        return [orjson.loads(line) for line in lines if line.strip()]
    raise CodecError(f"unknown record format {fmt!r}")


@dataclass(frozen=True, slots=True)
class Split:
    """A frame that stays in its file (Hadoop's input split): workers that see the same
    filesystem read `length` bytes at `offset` themselves, instead of receiving them
    through Kafka twice. Size and mtime tell a reader that the file changed since."""

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

    def read(self) -> bytes:
        """The frame's bytes; CodecError when the file is not there as it was submitted."""
        try:
            with open(self.path, "rb") as f:
                stat = os.fstat(f.fileno())
                if (stat.st_size, stat.st_mtime_ns) != (self.size, self.mtime_ns):
                    raise CodecError(f"input file {self.path} changed since it was submitted")
                f.seek(self.offset)
                data = f.read(self.length)
        except OSError as exc:
            raise CodecError(f"cannot read input split {self.path}@{self.offset}: "
                             f"{exc.strerror}; workers must see the input files at the same "
                             "path (else submit with --input-mode kafka)") from exc
        if len(data) != self.length:
            raise CodecError(f"input file {self.path} is shorter than when it was submitted")
        return data


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
        return key.encode()
    try:
        return orjson.dumps(key)
    except TypeError as exc:  # e.g. integers beyond 64 bits, sets, objects
        raise CodecError(f"key {key!r} is not a JSON value: {exc}") from exc


def partition_for(key: Any, partitions: int) -> int:
    return zlib.crc32(key_bytes(key)) % partitions


def split_by_size(items: list[Any], limit: int) -> Iterable[bytes]:
    """Encode items as one or more arrays, each at most `limit` bytes where possible."""
    data = encode_items(items)
    if len(data) <= limit or len(items) <= 1:
        yield data
        return
    mid = len(items) // 2
    yield from split_by_size(items[:mid], limit)
    yield from split_by_size(items[mid:], limit)


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
    except Exception as exc:  # unpickling runs arbitrary imports: any error is possible
        raise CodecError(f"pipeline spec cannot be unpickled: {type(exc).__name__}: {exc}") from exc
