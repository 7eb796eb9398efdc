"""The source role, user side: validate a job, announce its pipeline, stream its input as
frames to SOURCE, end the stream on every partition, and (for `run`) wait for the system
to say the job is done."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
import redis
import structlog
from confluent_kafka import KafkaException

from mapreduce_kafka.services.runtime import lifecycle
from mapreduce_kafka.services.runtime.producer import OutputProducer
from mapreduce_kafka.shared import kafka, output, sampling, side_files, spec_parts, topics
from mapreduce_kafka.shared.codec import Envelope, Kind, Split, TopicRange, dump_spec
from mapreduce_kafka.shared.crashpoints import crash_point
from mapreduce_kafka.shared.errors import InputError, InvalidPipelineId, JobTimedOut, PipelineFailed
from mapreduce_kafka.shared.inputs import (
    Input,
    TopicInput,
    compression,
    frame_spans,
    resolve_inputs,
)
from mapreduce_kafka.shared.pipeline_files import load_code
from mapreduce_kafka.shared.redis_client import redacted
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.spec import PipelineCode, PipelineSpec, spec_from_module
from mapreduce_kafka.shared.store import TERMINAL, Store, claims
from mapreduce_kafka.shared.topics import validate_topic_name

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


@dataclass
class Job:
    """A job to submit. `pipeline_path`: the pipeline's file, or its code (PipelineCode,
    built from plain functions by services.api). `output_dir`: a directory, or kafka:TOPIC."""

    pipeline_path: Path | PipelineCode
    inputs: Sequence[Path | str]
    output_dir: Path | str
    fmt: str = "text"
    partitions: int = 4
    pipeline_id: str = ""
    keep: bool = False
    max_errors: int | None = None
    guarantee: str = "exactly-once"
    input_mode: str = "auto"  # one of INPUT_MODES
    output_format: str = "jsonl"  # one of output.FORMATS (part files)
    task_timeout_s: float = 0.0  # 0: the cluster's default
    params: dict[str, str] = field(default_factory=dict)  # read by user code: param()
    side_files: list[Path] = field(default_factory=list)  # shipped: side_file(name)
    job_args: list[str] = field(default_factory=list)  # an mrjob job's own arguments
    sources: list[Input] = field(default_factory=list)
    code: PipelineCode | None = None
    spec: PipelineSpec | None = None
    ranges: list[TopicRange] = field(default_factory=list)  # topic inputs, at submission

    @property
    def files(self) -> list[Path]:
        return [i for i in self.sources if isinstance(i, Path)]

    @property
    def module(self) -> Any:
        return None if self.code is None else self.code.namespace


def check_output(output_dir: Path | str) -> Path | str:
    """The output, checked: a directory that does not exist or is empty (made absolute), or
    kafka:TOPIC with a valid topic name."""
    if output.is_topic(output_dir):
        topic = output.topic_of(output_dir)
        try:
            validate_topic_name(topic)
        except InvalidPipelineId as exc:
            raise InputError(f"--output {output_dir}: {exc}") from exc
        return str(output_dir)
    directory = Path(output_dir).resolve()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InputError(f"output {directory} already exists and is not an empty directory: "
                         "choose another --output or remove it")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)  # the staging dir goes there
    except OSError as exc:
        raise InputError(f"cannot create the parent directory of output {directory}: "
                         f"{exc.strerror}") from exc
    return directory


def new_pipeline_id(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "._" else "_" for c in Path(name).stem)[:60]
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def prepare(job: Job, settings: Settings) -> Job:
    """Every check that needs no cluster: fail before anything is sent."""
    from mapreduce_kafka.shared.topics import validate_pipeline_id

    job.code = (job.pipeline_path if isinstance(job.pipeline_path, PipelineCode)
                else load_code(job.pipeline_path, job.params, job.job_args))
    job.pipeline_id = validate_pipeline_id(job.pipeline_id or new_pipeline_id(job.code.name))
    job.sources = resolve_inputs(job.inputs)
    uses_splits(job.input_mode, settings)  # an unknown mode fails here, before anything is sent
    if job.output_format not in output.FORMATS:
        raise InputError(f"unknown output format {job.output_format!r}; choose one of "
                         f"{output.FORMATS}")
    job.output_dir = check_output(job.output_dir)
    output_format, shipped = job.code.settled(
        job.fmt, job.output_format, side_files.checked([Path(p) for p in job.side_files]))
    job.spec = replace(spec_from_module(
        job.code.namespace, pipeline_id=job.pipeline_id, fmt=job.fmt,
        partitions=job.partitions, output_dir=str(job.output_dir),
        source_partitions=settings.source_partitions, where=job.code.name, keep=job.keep,
        max_errors=job.max_errors, guarantee=job.guarantee, output_format=output_format,
        params=job.params),
        side_files=shipped or None,
        input_files=_as_submitted(job.files), task_timeout_s=job.task_timeout_s,
        split_bytes=settings.split_bytes)
    topic_inputs = len(job.sources) - len(job.files)
    job.spec = sampling.with_boundaries(job.spec, job.files, topic_inputs)  # total_order
    return job


def _as_submitted(files: list[Path]) -> dict[str, tuple[int, int]]:
    """The files a job reads, as the source sees them: what a mapper may read (signed)."""
    named = {}
    for path in files:
        stat = path.stat()
        named[str(path.resolve())] = (stat.st_size, stat.st_mtime_ns)
    return named


# A spec larger than a Kafka message travels in parts (shared/spec_parts.py); past this,
# every worker holding it in memory, unpickled, would be the wrong way to ship data.
MAX_SPEC_BYTES = 256 << 20

# Records of an input topic per frame number: a range of up to this many offsets is read
# by one mapper (more: fewer frames; fewer: a crash replays less).
RANGE_RECORDS = 20_000


def topic_ranges(settings: Settings, topic: str) -> list[TopicRange]:
    """The topic's records as they are now, in ranges of RANGE_RECORDS offsets."""
    try:
        watermarks = kafka.high_watermarks(settings, topic)
    except KafkaException as exc:
        raise InputError(f"input kafka:{topic}: {exc.args[0].str()}") from exc
    return [TopicRange(topic, partition, start, min(start + RANGE_RECORDS, high))
            for partition, (low, high) in watermarks.items()
            for start in range(low, high, RANGE_RECORDS)]


def _messages(job: Job, settings: Settings,
              splits: bool) -> Iterator[tuple[Kind, bytes, int, int, bytes]]:
    """What the source sends, in order: (kind, value, bytes of input it stands for, bytes
    of the input's files read so far, where a frame sent whole starts: [path, offset]).
    Every line is checked here (jsonl, length) before it is sent, so that a bad line fails
    the job before anything is finalized."""
    spec = job.spec
    assert spec is not None
    read = 0
    for item in job.sources:
        if isinstance(item, TopicInput):
            for split in topic_ranges(settings, item.topic):
                job.ranges.append(split)
                yield Kind.TOPIC_RANGE, split.encode(), 0, read, b""
            continue
        resolved = str(item.resolve())
        size, mtime_ns = spec.input_files[resolved] if spec.input_files else (0, 0)
        stat = item.stat()
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
            raise InputError(f"input file {item} changed since the job was prepared")
        compressed = compression(item) is not None
        if splits and compressed:  # one split; its lines checked here all the same
            for _ in frame_spans([item], settings.frame_bytes, spec.fmt):
                pass
            read += stat.st_size
            yield (Kind.SPLIT, Split(resolved, 0, stat.st_size, stat.st_size,
                                     stat.st_mtime_ns).encode(), stat.st_size, read, b"")
            continue
        frame_bytes = settings.split_bytes if splits else settings.frame_bytes
        for _path, offset, frame in frame_spans([item], frame_bytes, spec.fmt):
            if splits:
                length = min(len(frame), stat.st_size - offset)
                read += length
                yield (Kind.SPLIT, Split(resolved, offset, length, stat.st_size,
                                         stat.st_mtime_ns).encode(), length, read, b"")
            else:
                read = stat.st_size if compressed else read + len(frame)
                yield Kind.RECORDS, frame, len(frame), read, orjson.dumps([resolved, offset])


def submit(job: Job, settings: Settings,
           progress: Callable[[int, int], None] = lambda sent, total: None) -> dict[str, Any]:
    """Announce and stream. If anything fails mid-stream, the pipeline is marked failed (it
    can never be finalized with partial input) and the error is re-raised."""
    assert job.spec is not None and job.code is not None
    policy = settings.spec_policy()  # no key: a clear error before anything is sent
    # Not idempotent: librdkafka's idempotent producer delays its first delivery by about
    # 0.5 s (measured; it waits to acquire a producer id), which every job would pay. A
    # source frame duplicated by a retry carries its frame number, and the shuffler drops
    # the copy; a retry that reorders frames is harmless, and the end markers follow a flush.
    producer = OutputProducer(settings, idempotent=False)
    store = Store(settings.redis_url)
    store.check_reachable()
    admin = kafka.admin(settings)
    counts = kafka.fixed_topic_counts(admin, settings)  # one metadata request, usually
    source_partitions = counts[topics.SOURCE]
    spec = job.spec
    if source_partitions != spec.source_partitions:
        spec = job.spec = replace(spec, source_partitions=source_partitions)
    total_bytes = sum(path.stat().st_size for path in job.files)
    splits = uses_splits(job.input_mode, settings)
    payload = dump_spec(spec, job.code.modules)
    if len(payload) > MAX_SPEC_BYTES:
        raise InputError(f"the pipeline's spec is {len(payload) >> 20} MiB (its code and "
                         f"globals, the list of its {len(job.files)} input files, its side "
                         f"files), over the {MAX_SPEC_BYTES >> 20} MiB a spec may have: read "
                         "large data as an input, or from a store the workers can reach")
    announcement, parts = spec_parts.split(payload)
    # Heartbeat first: the dispatcher's watchdog must never see a registered pipeline whose
    # source has not said it is alive.
    store.touch_source(spec.pipeline_id, SOURCE_TTL_S)
    try:
        created = store.create_pipeline(spec.pipeline_id, {
            "spec_bytes": len(payload), "spec_parts": len(parts),
            "name": spec.name, "output": spec.output_dir, "partitions": spec.partitions,
            "format": spec.fmt, "output_format": spec.output_format,
            "guarantee": spec.guarantee, "input_bytes": total_bytes,
            "input_mode": "splits" if splits else "kafka",
            "inputs": len(job.sources), "keep": 1 if spec.keep else 0,
            "source_partitions": source_partitions,
            "shuffle_partitions": counts[topics.SHUFFLE],
            "map_only": ",".join("1" if spec.at_step(step).map_only else "0"
                                 for step in range(spec.step_count)),
            "steps": spec.step_count},
            claims=claims.pipeline_claims(spec.pipeline_id, spec.output_dir))
    except claims.ClaimHeld as held:
        store.clear_source(spec.pipeline_id)
        raise refused(spec, held) from None
    if not created:
        raise InvalidPipelineId(f"pipeline id {spec.pipeline_id!r} is already in use")
    pid = spec.pipeline_id
    sent = seq = 0
    try:
        with _beating(store, pid) as ended:
            if output.is_topic(spec.output_dir):
                kafka.ensure_topics(admin, {output.topic_of(spec.output_dir):
                                            (settings.output_partitions, kafka.COMPACTED)},
                                    replication_factor=settings.replication_factor)
            for index, part in enumerate(parts):  # a large spec: its parts first
                producer.send(topics.PIPELINES, part, Envelope(Kind.SPEC_PART, pid, seq=index),
                              key=spec_parts.part_key(pid, index).encode())
            # the signature covers the whole spec, even when the announcement is a manifest
            producer.send(topics.PIPELINES, announcement, Envelope(Kind.ANNOUNCED, pid),
                          key=pid.encode(), signature=policy.sign(pid, payload))
            producer.flush()  # the spec is in the log before any of its records
            crash_point("source.after_announce", pid)
            for seq, (kind, value, size, read, origin) in enumerate(
                    _messages(job, settings, splits), 1):
                producer.send(topics.SOURCE, value, Envelope(kind, pid, seq=seq - 1,
                                                             origin=origin),
                              partition=(seq - 1) % source_partitions)
                producer.poll()
                if sent * 2 < total_bytes <= read * 2:
                    crash_point("source.mid_stream", pid)
                sent += size
                progress(read, total_bytes)
                _stop_if_ended(store, pid, ended)
            producer.flush()  # all data durable before the end markers
            crash_point("source.before_end_markers", pid)
            for partition in range(source_partitions):
                producer.send(topics.SOURCE, b"", Envelope(Kind.STREAM_ENDED, pid),
                              partition=partition)
            producer.flush()
            crash_point("source.after_end_markers", pid)
            # the stream is complete only now
            if not store.update_pipeline(pid, frames=seq, sent=time.time()):
                ended.set()
                _stop_if_ended(store, pid, ended)
        store.clear_source(pid)
    except BaseException as exc:
        reason = f"source stopped mid-stream: {type(exc).__name__}: {exc}"
        # a fresh producer: the failure may be this one's, and a failed delivery is sticky
        lifecycle.finish(store, None, pid, "failed", reason)
        raise
    return {"pipeline_id": pid, "frames": seq, "bytes": sent}


def refused(spec: PipelineSpec, held: claims.ClaimHeld) -> InputError | InvalidPipelineId:
    """The one-line error for a submission refused because a live pipeline holds a name."""
    if held.kind == claims.ID:
        return InvalidPipelineId(
            f"pipeline id {spec.pipeline_id!r} collides with the live pipeline "
            f"{held.holder!r}: Kafka treats '.' and '_' alike in topic names; choose "
            "another --id")
    return InputError(f"output {spec.output_dir} is being written by the live pipeline "
                      f"{held.holder!r}: choose another --output or wait until it ends")


@contextmanager
def _beating(store: Store, pipeline_id: str) -> Iterator[threading.Event]:
    """Refresh the source's liveness key every SOURCE_BEAT_S from a thread, for as long as
    the stream is not complete: a source blocked in a flush or on a full producer queue is
    alive, and must not be failed as dead. The event it yields is set once the pipeline
    has ended meanwhile (cancelled, failed): the stream then stops."""
    done, ended = threading.Event(), threading.Event()

    def beat() -> None:
        while not done.wait(SOURCE_BEAT_S):
            try:
                store.touch_source(pipeline_id, SOURCE_TTL_S)
                if store.pipeline(pipeline_id).get("state") in TERMINAL:
                    ended.set()
            except redis.RedisError as exc:  # retried for a minute already: say so, go on
                log.warning("source heartbeat failed", pipeline=pipeline_id, error=str(exc))

    thread = threading.Thread(target=beat, name=f"source-heartbeat-{pipeline_id}", daemon=True)
    thread.start()
    try:
        yield ended
    finally:
        done.set()
        thread.join()


def _stop_if_ended(store: Store, pipeline_id: str, ended: threading.Event) -> None:
    if ended.is_set():
        status = store.pipeline(pipeline_id)
        raise PipelineFailed(f"pipeline {pipeline_id} {status.get('state')} while its input "
                             f"was being sent: {status.get('reason')}")


def wait(settings: Settings, pipeline_id: str, on_status: Callable[[dict[str, Any]], None],
         timeout: float | None = None, interval: float = 0.25) -> dict[str, Any]:
    """Poll the pipeline's status (the progress display's refresh) until it is terminal."""
    store = Store(settings.redis_url)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status: dict[str, Any] = dict(store.pipeline(pipeline_id))
        if not status:
            raise PipelineFailed(f"pipeline {pipeline_id}'s status is gone from Redis "
                                 f"({redacted(settings.redis_url)}): its coordination "
                                 "state was lost, "
                                 "so its result cannot be trusted; submit it again")
        kept_errors = int(status.get("errors") or 0)  # saved when the keys were dropped
        status.update(store.ended_counts(pipeline_id))
        status["errors"] = max(kept_errors, status["errors"])
        on_status(status)
        if status.get("state") in TERMINAL:
            if status["state"] == "failed":
                raise PipelineFailed(f"pipeline {pipeline_id} failed: {status.get('reason')}")
            if not output.is_topic(status["output"]) and not output.is_complete(status["output"]):
                raise PipelineFailed(f"pipeline {pipeline_id} is done but {status['output']} "
                                     "has no _SUCCESS")
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise JobTimedOut(f"pipeline {pipeline_id} did not finish within {timeout}s "
                              "(it goes on; see `mapreduce status`)")
        time.sleep(interval)
