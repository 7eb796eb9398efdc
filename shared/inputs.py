"""Inputs: what a job reads, found and cut into frames the same way by the source, the
mappers, the inline runner and the sequential oracle.

An input is a file, a directory (its files, recursively, leaving out names that start with
`.` or `_`, as Hadoop does), a glob pattern (`logs/2026-*/*.gz`), or a Kafka topic
(`kafka:TOPIC`, read up to the high watermarks taken when the job is submitted: a bounded
snapshot). Files ending in .gz, .bz2, .xz or .zst are decompressed as they are read; a
compressed file cannot be cut at an offset, so it is one split (Hadoop's rule for
non-splittable codecs), mapped by its mapper a frame at a time.

A frame is whole lines of at most `frame_bytes`, or one line alone when that line is
longer, so never more than max(frame_bytes, MAX_RECORD_BYTES + 1) bytes: one Kafka message.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import lzma
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, Message

from mapreduce_kafka.shared import kafka
from mapreduce_kafka.shared.codec import CodecError, Split, TopicRange
from mapreduce_kafka.shared.errors import InputError
from mapreduce_kafka.shared.task_context import TopicOrigin

# One record must fit in one Kafka message (the broker's default limit is 1 MiB, and a
# frame carries headers and framing too).
MAX_RECORD_BYTES = 900 * 1024
KAFKA_PREFIX = "kafka:"


def _open_zstd(path: Path) -> BinaryIO:
    try:
        import zstandard
    except ImportError as exc:  # an optional dependency
        raise InputError(f"{path}: reading .zst needs the zstandard package "
                         "(pip install zstandard)") from exc
    raw = open(path, "rb")  # noqa: SIM115 - closed with the reader
    return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[no-any-return]


def _open_gzip(path: Path) -> BinaryIO:
    return gzip.GzipFile(path, "rb")  # type: ignore[return-value]  # noqa: SIM115


def _open_bz2(path: Path) -> BinaryIO:
    return bz2.BZ2File(path, "rb")  # type: ignore[return-value]  # noqa: SIM115


def _open_xz(path: Path) -> BinaryIO:
    return lzma.LZMAFile(path, "rb")  # type: ignore[return-value]  # noqa: SIM115


# Readers are closed by whoever opens them (a `with` block around open_input).
OPENERS: dict[str, Callable[[Path], BinaryIO]] = {
    ".gz": _open_gzip, ".bz2": _open_bz2, ".xz": _open_xz, ".zst": _open_zstd,
}


def compression(path: Path | str) -> str | None:
    """The compression a file's name says it has, or None."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in OPENERS else None


def open_input(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when its name says it is compressed."""
    codec = compression(path)
    try:
        return OPENERS[codec](path) if codec else open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read input {path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class TopicInput:
    """An existing Kafka topic read as input."""

    topic: str


Input = Path | TopicInput


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def resolve_inputs(specs: Sequence[Path | str]) -> list[Input]:
    """Files (directories expanded recursively, sorted by path; globs expanded, sorted) and
    topics, in the order given. InputError names what is missing."""
    if not specs:
        raise InputError("no --input given")
    found: list[Input] = []
    for spec in map(str, specs):
        if spec.startswith(KAFKA_PREFIX):
            topic = spec[len(KAFKA_PREFIX):]
            if not topic:
                raise InputError(f"{spec!r}: name a topic after kafka:")
            found.append(TopicInput(topic))
            continue
        path = Path(spec)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _visible(p, path))
            if not files:
                raise InputError(f"no input files in {path}")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(spec):
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True)
                             if Path(p).is_file())
            if not matches:
                raise InputError(f"no input files match {spec}")
            found.extend(matches)
        else:
            raise InputError(f"input path does not exist: {path}")
    return found


def input_files(specs: Sequence[Path | str]) -> list[Path]:
    """The files of the inputs (resolve_inputs without topics)."""
    return [i for i in resolve_inputs(specs) if isinstance(i, Path)]


# ---- frames ------------------------------------------------------------------------


def frames(files: list[Path], frame_bytes: int, fmt: str) -> Iterator[bytes]:
    """Whole lines, about `frame_bytes` at a time; a frame never spans two files. jsonl lines
    are validated here, so that a bad line fails the job before it is finalized."""
    for _path, _offset, frame in frame_spans(files, frame_bytes, fmt):
        yield frame


def frame_spans(files: list[Path], frame_bytes: int,
                fmt: str) -> Iterator[tuple[Path, int, bytes]]:
    """frames() with where each frame starts in its (decompressed) file. A last line without
    a newline gets one in the frame (not in the file)."""
    for path in files:
        with open_input(path) as f:
            yield from ((path, offset, frame) for offset, frame in
                        stream_frames(f, frame_bytes, fmt, str(path)))


def stream_frames(f: BinaryIO, frame_bytes: int, fmt: str,
                  name: str) -> Iterator[tuple[int, bytes]]:
    """(offset, frame) of a stream of lines (see the module's docstring)."""
    line_no = 0
    offset = 0
    buffer = b""
    while True:
        try:
            chunk = f.read(frame_bytes)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise InputError(f"{name}: cannot be read or decompressed: {exc}") from exc
        buffer += chunk
        while True:
            cut = frame_cut(buffer, frame_bytes, at_end=not chunk)
            if not cut:
                break
            frame, buffer = buffer[:cut], buffer[cut:]
            line_no = _check(frame, fmt, name, line_no)
            yield offset, frame
            offset += len(frame)
        if len(buffer) > MAX_RECORD_BYTES and b"\n" not in buffer:
            raise InputError(f"{name}: line {line_no + 1} is over {MAX_RECORD_BYTES} "
                             "bytes, the largest record that fits in a Kafka message")
        if not chunk:
            break
    if buffer:
        _check(buffer + b"\n", fmt, name, line_no)
        yield offset, buffer + b"\n"


def frame_cut(buffer: bytes, frame_bytes: int, at_end: bool) -> int:
    """Where the next frame of `buffer` ends (0: not yet known, read more): after the last
    newline within frame_bytes, or after the first line if that alone is longer. Before the
    end of the file, a frame waits until it can be full."""
    if len(buffer) < frame_bytes and not at_end:
        return 0
    first = buffer.find(b"\n")
    if first < 0:
        return 0
    if first + 1 >= frame_bytes:
        return first + 1
    return buffer.rfind(b"\n", 0, frame_bytes) + 1


def _check(frame: bytes, fmt: str, name: str, line_no: int) -> int:
    if fmt == "text" and len(frame) <= MAX_RECORD_BYTES:  # no line can be too long
        return line_no + frame.count(b"\n")
    lines = frame[:-1].split(b"\n")
    if fmt == "jsonl":
        for offset, line in enumerate(lines, 1):
            if line.strip():
                try:
                    orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise InputError(f"{name}: line {line_no + offset} is not valid JSON "
                                     f"({exc})") from exc
    longest = max(map(len, lines))
    if longest > MAX_RECORD_BYTES:
        raise InputError(f"{name}: a line near line {line_no + 1} is {longest} bytes, over "
                         f"{MAX_RECORD_BYTES}, the largest record that fits in a Kafka message")
    return line_no + len(lines)


def values_frame(values: list[bytes | None], fmt: str,
                 on_bad: Callable[[int, bytes, str], None]) -> tuple[bytes, list[int]]:
    """Kafka record values as a frame of lines, and for each line the index of the value it
    came from: a text value as it is (one with a newline in it is several records), a JSON
    value re-encoded on one line. A value that cannot be a record (not JSON in a jsonl
    job, or a tombstone) goes to on_bad(index, value, why)."""
    lines: list[bytes] = []
    sources: list[int] = []
    for index, value in enumerate(values):
        if value is None:
            on_bad(index, b"", "a tombstone (no value)")
        elif fmt == "jsonl":
            try:
                lines.append(orjson.dumps(orjson.loads(value)))
                sources.append(index)
            except orjson.JSONDecodeError as exc:
                on_bad(index, value, f"not valid JSON ({exc})")
        else:
            text = value.rstrip(b"\n")
            lines.append(text)
            sources.extend([index] * (text.count(b"\n") + 1))
    return b"".join(line + b"\n" for line in lines), sources


def confined(split: Split, named: dict[str, tuple[int, int]] | None,
             roots: Sequence[Path] = ()) -> None:
    """CodecError unless the split's file is one the pipeline's signed spec names, as the
    source saw it (path, size, mtime), and lies under one of `roots` (when any is set),
    symlinks resolved: a forged split cannot make a mapper read any other file."""
    if named is not None and tuple(named.get(split.path, ())) != (split.size, split.mtime_ns):
        raise CodecError(f"input split names {split.path}, a file this pipeline's spec does "
                         "not name (as submitted): refused")
    if roots:
        real = Path(os.path.realpath(split.path))
        if not any(real.is_relative_to(os.path.realpath(root)) for root in roots):
            raise CodecError(f"input split names {split.path}, outside the input roots "
                             f"{', '.join(map(str, roots))}: refused")


def split_size(signed: int, own: int) -> int:
    """The size a mapper cuts a compressed split or a topic range into pieces of: the
    submitter's, carried by the signed spec, so that every mapper cuts the same pieces
    (their chunks are tagged by position); `own`, the worker's setting, for a spec without
    it (0)."""
    return signed or own


def read_split(split: Split, frame_bytes: int) -> Iterator[tuple[int, bytes]]:
    """The frames of an input split, read where it was submitted, each with its offset in
    the file: the split's bytes as one frame, or a compressed file's lines a frame at a
    time (offsets in the decompressed text). CodecError when the file is not
    there as it was submitted."""
    path = Path(split.path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise CodecError(f"cannot read input split {split.path}@{split.offset}: "
                         f"{exc.strerror}; workers must see the input files at the same "
                         "path (else submit with --input-mode kafka)") from exc
    if (stat.st_size, stat.st_mtime_ns) != (split.size, split.mtime_ns):
        raise CodecError(f"input file {split.path} changed since it was submitted")
    if compression(path):
        try:
            with open_input(path) as f:
                yield from stream_frames(f, frame_bytes, "text", split.path)
        except InputError as exc:
            raise CodecError(str(exc)) from exc
        return
    with open(path, "rb") as f:
        f.seek(split.offset)
        data = f.read(split.length)
    if len(data) != split.length:
        raise CodecError(f"input file {split.path} is shorter than when it was submitted")
    yield split.offset, data if data.endswith(b"\n") else data + b"\n"  # a last line: one


def topic_range_frames(consumer: Consumer, span: TopicRange, fmt: str, frame_bytes: int,
                       on_bad: Callable[[int, bytes, str], None]) -> Iterator[bytes]:
    """The records of a topic range as frames of about frame_bytes (see values_frame);
    on_bad(offset, value, why) for a record that cannot be one."""
    for frame, _origin in topic_range_pieces(consumer, span, fmt, frame_bytes, on_bad):
        yield frame


def topic_range_pieces(consumer: Consumer, span: TopicRange, fmt: str, frame_bytes: int,
                       on_bad: Callable[[int, bytes, str], None]
                       ) -> Iterator[tuple[bytes, TopicOrigin]]:
    """topic_range_frames(), each frame with where its lines come from: per line, its
    message's partition, offset, key and timestamp (task_context.input_context)."""
    messages: list[Message] = []
    size = 0

    def piece() -> tuple[bytes, TopicOrigin]:
        def bad(index: int, value: bytes, why: str) -> None:
            on_bad(messages[index].offset() or 0, value, why)

        frame, sources = values_frame([m.value() for m in messages], fmt, bad)
        described = [(span.partition, m.offset() or 0, m.key(), _timestamp(m))
                     for m in messages]
        return frame, TopicOrigin(span.topic, tuple(described[i] for i in sources))

    for batch in kafka.read_range(consumer, span.topic, span.partition, span.start, span.end):
        for msg in batch:
            messages.append(msg)
            size += len(msg.value() or b"") + 1
            if size >= frame_bytes:
                yield piece()
                messages, size = [], 0
    if messages:
        yield piece()


def _timestamp(msg: Message) -> int | None:
    kind, value = msg.timestamp()
    return value if kind != TIMESTAMP_NOT_AVAILABLE else None
