"""A job's output: a directory written all or nothing (Hadoop's convention), or a topic.

Each reduce partition becomes `part-NNNNN`, sorted by key (codec.key_order), in one of
FORMATS: `jsonl`, one [key, value] JSON array per line; `tsv`, key<TAB>value with both
fields JSON-encoded; or `lines`, the lines of a streaming job (command steps, an mrjob
job's OUTPUT_PROTOCOL) as they were written (shared/streaming.py). Parts are written in a
staging directory beside the output, each to a temporary name, fsynced, renamed. When
every part exists, the staging directory is renamed to the output directory and
`_SUCCESS` is written last, naming the pipeline that wrote the output
(`{"pipeline": ID}`; an empty one predates that). A directory without `_SUCCESS` is not a
result, and one whose `_SUCCESS` names another pipeline is not this pipeline's result.

`kafka:TOPIC` as the output writes each result as a record to that topic, created
compacted if it is missing: its key the JSON array [pipeline id, result key] (with the
part and the line number after them where a key may repeat: a map-only pipeline, a
reducer that yields), its value
the result as JSON, the pipeline id in a header too. After the last one comes a
completion record keyed `__mapreduce_success__:<pipeline id>` (success_key) whose value
names the pipeline: the topic's `_SUCCESS`. Keys are the job's own, so compaction never
lets one job's records (or completion record) erase another's. A topic cannot be written
all or nothing: a job that fails after some of its parts were written leaves them there,
without a completion record, and a replayed part writes the same records again
(compaction keeps one)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from mapreduce_kafka.shared import streaming

SUCCESS = "_SUCCESS"
SUCCESS_KEY = b"__mapreduce_success__"
FORMATS = ("jsonl", "tsv", "lines")
USER_FORMATS = ("jsonl", "tsv")  # what --output-format offers: `lines` is a streaming job's
TOPIC_PREFIX = "kafka:"


def is_topic(output: str | Path) -> bool:
    return str(output).startswith(TOPIC_PREFIX)


def topic_of(output: str | Path) -> str:
    return str(output)[len(TOPIC_PREFIX):]


def success_key(pipeline_id: str) -> bytes:
    """The key of a pipeline's completion record in an output topic."""
    return SUCCESS_KEY + b":" + pipeline_id.encode()


def topic_key(pipeline_id: str, key: Any, at: tuple[int, int] | None = None) -> bytes:
    """The key of a result's record in an output topic: unique to the pipeline. Where a key
    may come more than once (a map-only pipeline, a reducer that yields), `at` (part,
    line) makes each record's key its own, the same when a part is written again."""
    return orjson.dumps([pipeline_id, key] if at is None else [pipeline_id, key, *at])


def topic_result(pipeline_id: str, raw_key: bytes | None, raw_value: bytes | None) -> \
        tuple[Any, Any] | None:
    """A record of an output topic as (result key, value) when it is one of the pipeline's
    results; None for its completion record and for records of other pipelines."""
    if raw_key is None or raw_key.startswith(SUCCESS_KEY):
        return None
    try:
        decoded = orjson.loads(raw_key)
    except orjson.JSONDecodeError:
        return None  # not written by a pipeline: someone else's record
    if not (isinstance(decoded, list) and len(decoded) in (2, 4)
            and decoded[0] == pipeline_id):
        return None
    return decoded[1], orjson.loads(raw_value or b"null")


def encode_line(key: Any, value: Any, fmt: str = "jsonl") -> bytes:
    if fmt == "lines":
        return streaming.line_of(key, value) + b"\n"
    if fmt == "tsv":
        return orjson.dumps(key) + b"\t" + orjson.dumps(value) + b"\n"
    return orjson.dumps([key, value]) + b"\n"


def decode_line(line: bytes, fmt: str = "jsonl") -> tuple[Any, Any]:
    if fmt == "lines":
        return streaming.pair_of(line[:-1] if line.endswith(b"\n") else line)
    if fmt == "tsv":
        key, value = line.rstrip(b"\n").split(b"\t", 1)  # JSON escapes tabs in strings
        return orjson.loads(key), orjson.loads(value)
    key, value = orjson.loads(line)
    return key, value


def staging_dir(output_dir: str | Path, pipeline_id: str) -> Path:
    output = Path(output_dir)
    return output.parent / f".{output.name}.{pipeline_id}.staging"


def part_name(part: int) -> str:
    return f"part-{part:05d}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_part(staging: Path, part: int, items: Iterable[tuple[Any, Any]],
               fmt: str = "jsonl") -> int:
    """Write a part file durably (temporary name, fsync, rename); returns its line count."""
    staging.mkdir(parents=True, exist_ok=True)
    final = staging / part_name(part)
    temporary = staging / f".{part_name(part)}.{os.getpid()}.tmp"
    lines = 0
    with open(temporary, "wb") as f:
        for k, v in items:
            f.write(encode_line(k, v, fmt))
            lines += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, final)
    _fsync_dir(staging)
    return lines


class ForeignOutput(Exception):
    """The output directory holds another pipeline's finished output."""


def finished_by(output_dir: str | Path) -> str | None:
    """The pipeline whose finished output the directory holds ("" when its `_SUCCESS`
    names none), or None when it has no `_SUCCESS`."""
    try:
        marker = (Path(output_dir) / SUCCESS).read_bytes()
    except FileNotFoundError:
        return None
    try:
        named = orjson.loads(marker) if marker.strip() else {}
    except orjson.JSONDecodeError:
        return ""
    return str(named.get("pipeline") or "") if isinstance(named, dict) else ""


def finalize(staging: Path, output_dir: str | Path, pipeline_id: str,
             after_rename: Callable[[], None] = lambda: None) -> None:
    """Idempotent: a replay after a crash half-way through finishes the job. ForeignOutput
    when another pipeline finished the output meanwhile: it is not this one's result."""
    output = Path(output_dir)
    writer = finished_by(output)
    if writer is not None:
        if writer != pipeline_id:
            raise ForeignOutput(f"output {output} was finished by "
                                f"{f'pipeline {writer!r}' if writer else 'another job'} "
                                "while this job ran: its results are not this job's")
        shutil.rmtree(staging, ignore_errors=True)  # ours, finished: a zombie's late staging
        return
    if staging.exists():
        for leftover in staging.glob(".part-*.tmp"):
            leftover.unlink()
        if output.exists() and not any(output.iterdir()):
            output.rmdir()  # an empty directory the user made in advance
        os.rename(staging, output)
        _fsync_dir(output.parent)
    after_rename()
    success = output / SUCCESS
    with open(success, "wb") as f:
        f.write(orjson.dumps({"pipeline": pipeline_id}) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(output)


def is_complete(output_dir: str | Path) -> bool:
    return (Path(output_dir) / SUCCESS).exists()


def iter_output(output_dir: str | Path, fmt: str = "jsonl") -> Iterator[tuple[Any, Any]]:
    """Every (key, value) of every part, in part order, a line at a time."""
    for part in sorted(Path(output_dir).glob("part-*")):
        with open(part, "rb") as f:
            for line in f:
                yield decode_line(line, fmt)


def read_output(output_dir: str | Path, fmt: str = "jsonl") -> list[tuple[Any, Any]]:
    """Every (key, value) of every part, in part order."""
    return list(iter_output(output_dir, fmt))
