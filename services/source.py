"""The source role, user side: validate a job, announce its pipeline, stream its input as
frames to SOURCE, end the stream on every partition, and (for `run`) wait for the system
to say the job is done."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import redis
import structlog

from services.runtime import lifecycle
from services.runtime.producer import OutputProducer
from shared import config, kafka, output, topics
from shared.codec import Envelope, Kind, Split, dump_spec
from shared.config import Settings
from shared.crashpoints import crash_point
from shared.errors import InputError, InvalidPipelineId, PipelineFailed
from shared.spec import PipelineSpec, load_module, spec_from_module
from shared.store import TERMINAL, Store

log = structlog.get_logger("source")

# While a source streams it refreshes a heartbeat with this lifetime; a dispatcher fails a
# pipeline whose stream is incomplete once the heartbeat has expired. Long enough to ride
# out a broker stall that blocks the producer, short enough to report a dead source soon.
SOURCE_TTL_S = int(os.environ.get("MAPREDUCE_SOURCE_TTL_S", "30"))
SOURCE_BEAT_S = 2.0

# How frames reach the mappers. kafka: their bytes travel through SOURCE and MAP---<id>.
# splits: only (file, offset, length) does, and mappers read the bytes from the file, which
# needs workers that see the input at the same path. auto: splits when the workers belong
# to the local cluster `mapreduce up` started on this machine, else kafka.
INPUT_MODES = ("auto", "splits", "kafka")


def uses_splits(input_mode: str, settings: Settings) -> bool:
    if input_mode not in INPUT_MODES:
        raise InputError(f"unknown input mode {input_mode!r}; choose one of {INPUT_MODES}")
    return input_mode == "splits" or (input_mode == "auto" and settings.local)


# One record must fit in one Kafka message (the broker's default limit is 1 MiB, and a
# frame carries headers and framing too).
MAX_RECORD_BYTES = 900 * 1024


@dataclass
class Job:
    pipeline_path: Path
    inputs: list[Path]
    output_dir: Path
    fmt: str = "text"
    partitions: int = 4
    pipeline_id: str = ""
    keep: bool = False
    max_errors: int | None = None
    guarantee: str = "exactly-once"
    input_mode: str = "auto"  # one of INPUT_MODES
    files: list[Path] = field(default_factory=list)
    module: ModuleType | None = None
    spec: PipelineSpec | None = None


def input_files(paths: list[Path]) -> list[Path]:
    """Files of the inputs: a directory means its files (not hidden, not _-prefixed), sorted
    by name."""
    if not paths:
        raise InputError("no --input given")
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir()
                                if p.is_file() and not p.name.startswith((".", "_"))))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"input path does not exist: {path}")
    if not files:
        raise InputError(f"no input files in {', '.join(map(str, paths))}")
    return files


def check_output(output_dir: Path) -> None:
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise InputError(f"output {output_dir} already exists and is not an empty directory: "
                         "choose another --output or remove it")
    try:
        output_dir.parent.mkdir(parents=True, exist_ok=True)  # the staging dir goes there
    except OSError as exc:
        raise InputError(f"cannot create the parent directory of output {output_dir}: "
                         f"{exc.strerror}") from exc


def new_pipeline_id(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "._" else "_" for c in path.stem)[:60]
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def prepare(job: Job, settings: Settings) -> Job:
    """Every check that needs no cluster: fail before anything is sent."""
    from shared.topics import validate_pipeline_id

    job.pipeline_id = validate_pipeline_id(job.pipeline_id or new_pipeline_id(job.pipeline_path))
    job.files = input_files(job.inputs)
    uses_splits(job.input_mode, settings)  # an unknown mode fails here, before anything is sent
    job.output_dir = job.output_dir.resolve()
    check_output(job.output_dir)
    job.module = load_module(job.pipeline_path)
    job.spec = spec_from_module(
        job.module, pipeline_id=job.pipeline_id, fmt=job.fmt, partitions=job.partitions,
        output_dir=str(job.output_dir), source_partitions=settings.source_partitions,
        where=job.pipeline_path.name, keep=job.keep, max_errors=job.max_errors,
        guarantee=job.guarantee)
    return job


def frames(files: list[Path], frame_bytes: int, fmt: str) -> Iterator[bytes]:
    """Whole lines, about `frame_bytes` at a time; a frame never spans two files. jsonl lines
    are validated here, so that a bad line fails the job before it is finalized."""
    for _path, _offset, frame in frame_spans(files, frame_bytes, fmt):
        yield frame


def frame_spans(files: list[Path], frame_bytes: int, fmt: str) -> Iterator[tuple[Path, int, bytes]]:
    """frames() with where each frame starts in its file. A frame is whole lines of at most
    `frame_bytes`, or one line alone when that line is longer: so never more than
    max(frame_bytes, MAX_RECORD_BYTES + 1) bytes, whatever the lengths of the lines before
    it. A last line without a newline gets one in the frame (not in the file)."""
    for path in files:
        line_no = 0
        offset = 0
        with open(path, "rb") as f:
            buffer = b""
            while True:
                chunk = f.read(frame_bytes)
                buffer += chunk
                while True:
                    cut = frame_cut(buffer, frame_bytes, at_end=not chunk)
                    if not cut:
                        break
                    frame, buffer = buffer[:cut], buffer[cut:]
                    line_no = _check(frame, fmt, path, line_no)
                    yield path, offset, frame
                    offset += len(frame)
                if len(buffer) > MAX_RECORD_BYTES and b"\n" not in buffer:
                    raise InputError(f"{path}: line {line_no + 1} is over {MAX_RECORD_BYTES} "
                                     "bytes, the largest record that fits in a Kafka message")
                if not chunk:
                    break
            if buffer:
                _check(buffer + b"\n", fmt, path, line_no)
                yield path, offset, buffer + b"\n"


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


def _check(frame: bytes, fmt: str, path: Path, line_no: int) -> int:
    if fmt == "text" and len(frame) <= MAX_RECORD_BYTES:  # no line can be too long
        return line_no + frame.count(b"\n")
    lines = frame[:-1].split(b"\n")
    if fmt == "jsonl":
        for offset, line in enumerate(lines, 1):
            if line.strip():
                try:
                    orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise InputError(f"{path}: line {line_no + offset} is not valid JSON "
                                     f"({exc})") from exc
    longest = max(map(len, lines))
    if longest > MAX_RECORD_BYTES:
        raise InputError(f"{path}: a line near line {line_no + 1} is {longest} bytes, over "
                         f"{MAX_RECORD_BYTES}, the largest record that fits in a Kafka message")
    return line_no + len(lines)


def submit(job: Job, settings: Settings,
           progress: Callable[[int, int], None] = lambda sent, total: None) -> dict[str, Any]:
    """Announce and stream. If anything fails mid-stream, the pipeline is marked failed (it
    can never be finalized with partial input) and the error is re-raised."""
    assert job.spec is not None and job.module is not None
    policy = settings.spec_policy()  # no key: a clear error before anything is sent
    # Not idempotent: librdkafka's idempotent producer delays its first delivery by about
    # 0.5 s (measured; it waits to acquire a producer id), which every job would pay. A
    # source frame duplicated by a retry carries its frame number, and the shuffler drops
    # the copy; a retry that reorders frames is harmless, and the end markers follow a flush.
    producer = OutputProducer(settings, idempotent=False)
    store = Store(settings.redis_url)
    store.check_reachable()
    kafka.check_reachable(settings)
    admin = kafka.admin(settings)
    kafka.ensure_topics(admin, kafka.fixed_topics(settings))
    source_partitions = kafka.partition_count(admin, topics.SOURCE)
    spec = job.spec
    if source_partitions != spec.source_partitions:
        from dataclasses import replace
        spec = job.spec = replace(spec, source_partitions=source_partitions)
    stats = {path: path.stat() for path in job.files}  # also what a split's reader checks
    total_bytes = sum(stat.st_size for stat in stats.values())
    splits = uses_splits(job.input_mode, settings)
    # Heartbeat first: the dispatcher's watchdog must never see a registered pipeline whose
    # source has not said it is alive.
    store.touch_source(spec.pipeline_id, SOURCE_TTL_S)
    if not store.create_pipeline(spec.pipeline_id, {
            "name": spec.name, "output": spec.output_dir, "partitions": spec.partitions,
            "format": spec.fmt, "guarantee": spec.guarantee, "input_bytes": total_bytes,
            "input_mode": "splits" if splits else "kafka",
            "inputs": len(job.files), "keep": 1 if spec.keep else 0,
            "source_partitions": source_partitions,
            "shuffle_partitions": kafka.partition_count(admin, topics.SHUFFLE)}):
        raise InvalidPipelineId(f"pipeline id {spec.pipeline_id!r} is already in use")
    pid = spec.pipeline_id
    payload = dump_spec(spec, [job.module])
    sent = seq = 0
    resolved = {path: str(path.resolve()) for path in job.files}
    try:
        with _beating(store, pid):
            producer.send(topics.PIPELINES, payload, Envelope(Kind.ANNOUNCED, pid),
                          key=pid.encode(), signature=policy.sign(pid, payload))
            producer.flush()  # the spec is in the log before any of its records
            crash_point("source.after_announce", pid)
            spans = frame_spans(job.files,
                                settings.split_bytes if splits else settings.frame_bytes,
                                spec.fmt)
            for seq, (path, offset, frame) in enumerate(spans, 1):
                if splits:
                    stat = stats[path]
                    split = Split(resolved[path], offset,
                                  min(len(frame), stat.st_size - offset),
                                  stat.st_size, stat.st_mtime_ns)
                    value, kind = split.encode(), Kind.SPLIT
                else:
                    value, kind = frame, Kind.RECORDS
                producer.send(topics.SOURCE, value, Envelope(kind, pid, seq=seq - 1),
                              partition=(seq - 1) % source_partitions)
                producer.poll()
                if sent * 2 < total_bytes <= (sent + len(frame)) * 2:
                    crash_point("source.mid_stream", pid)
                sent += len(frame)
                progress(sent, total_bytes)
            producer.flush()  # all data durable before the end markers
            crash_point("source.before_end_markers", pid)
            for partition in range(source_partitions):
                producer.send(topics.SOURCE, b"", Envelope(Kind.STREAM_ENDED, pid),
                              partition=partition)
            producer.flush()
            store.update_pipeline(pid, frames=seq)  # the stream is complete only now
        store.clear_source(pid)
    except BaseException as exc:
        reason = f"source stopped mid-stream: {type(exc).__name__}: {exc}"
        # a fresh producer: the failure may be this one's, and a failed delivery is sticky
        lifecycle.finish(store, OutputProducer(settings, idempotent=False), pid, "failed",
                         reason)
        raise
    return {"pipeline_id": pid, "frames": seq, "bytes": sent}


@contextmanager
def _beating(store: Store, pipeline_id: str) -> Iterator[None]:
    """Refresh the source's liveness key every SOURCE_BEAT_S from a thread, for as long as
    the stream is not complete: a source blocked in a flush or on a full producer queue is
    alive, and must not be failed as dead."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(SOURCE_BEAT_S):
            try:
                store.touch_source(pipeline_id, SOURCE_TTL_S)
            except redis.RedisError as exc:  # retried for a minute already: say so, go on
                log.warning("source heartbeat failed", pipeline=pipeline_id, error=str(exc))

    thread = threading.Thread(target=beat, name=f"source-heartbeat-{pipeline_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def wait(settings: Settings, pipeline_id: str, on_status: Callable[[dict[str, Any]], None],
         timeout: float | None = None, interval: float = 0.25) -> dict[str, Any]:
    """Poll the pipeline's status (the progress display's refresh) until it is terminal."""
    store = Store(settings.redis_url)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status: dict[str, Any] = dict(store.pipeline(pipeline_id))
        if not status:
            raise PipelineFailed(f"pipeline {pipeline_id}'s status is gone from Redis "
                                 f"({config.redacted(settings.redis_url)}): its coordination "
                                 "state was lost, "
                                 "so its result cannot be trusted; submit it again")
        kept_errors = int(status.get("errors") or 0)  # saved when the keys were dropped
        status.update(store.ended_counts(pipeline_id))
        status["errors"] = max(kept_errors, status["errors"])
        on_status(status)
        if status.get("state") in TERMINAL:
            if status["state"] == "failed":
                raise PipelineFailed(f"pipeline {pipeline_id} failed: {status.get('reason')}")
            if not output.is_complete(status["output"]):
                raise PipelineFailed(f"pipeline {pipeline_id} is done but {status['output']} "
                                     "has no _SUCCESS")
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise PipelineFailed(f"pipeline {pipeline_id} did not finish within {timeout}s "
                                 "(it goes on; see `mapreduce status`)")
        time.sleep(interval)
