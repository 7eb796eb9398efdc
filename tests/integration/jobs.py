"""Submitting jobs from tests through the library (the same calls the CLI makes) and
checking them against the sequential oracle."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mapreduce_kafka import examples
from mapreduce_kafka.services.client import reference, source
from mapreduce_kafka.services.client.inline import run_inline
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import output
from mapreduce_kafka.shared.errors import JobTimedOut
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.store import Store

WORDCOUNT = examples.WORDCOUNT
INVERTED_INDEX = examples.INVERTED_INDEX
# How long a paused source waits if its test's block never ends: the block's end releases
# it first. The source's heartbeat thread keeps it alive meanwhile. (At 25 s, three
# paused jobs waiting for their consumer groups under consumer-protocol outlasted the
# first job's pause, which then finished before the point was armed.)
PAUSE_LIMIT_S = 180


def submit(settings: Settings, pipeline: Path, inputs: list[Path], out: Path,
           fmt: str = "text", partitions: int = 4,
           guarantee: str = "exactly-once", input_mode: str = "auto",
           params: dict[str, str] | None = None,
           job_args: list[str] | None = None) -> source.Job:
    job = source.Job(pipeline, inputs, out, fmt, partitions, guarantee=guarantee,
                     input_mode=input_mode, params=dict(params or {}),
                     job_args=list(job_args or []))
    source.prepare(job, settings)
    source.submit(job, settings)
    return job


def part_lines(directory: Path) -> dict[str, list[bytes]]:
    """Each part file's lines, by name: two outputs are the same files when these are."""
    return {p.name: p.read_bytes().splitlines() for p in sorted(directory.glob("part-*"))}


def wait(settings: Settings, job: source.Job, timeout: float = 180) -> dict[str, Any]:
    try:
        return source.wait(settings, job.pipeline_id, lambda status: None, timeout=timeout)
    except JobTimedOut as exc:  # CI keeps only the test output: put the story in it
        raise AssertionError(f"{exc}\n{stuck_report(settings, job.pipeline_id)}") from None


def stuck_report(settings: Settings, pipeline_id: str, events: int = 40) -> str:
    """What a job that did not finish was waiting on: its status, its barrier, each worker's
    assignment, the last log events that name it, and the broker's warnings."""
    store = Store(settings.redis_url)
    lines = [f"status: {dict(store.pipeline(pipeline_id))}",
             f"ended: {store.ended_counts(pipeline_id)}"]
    for worker in store.workers():
        lines.append(f"worker {worker.get('id')}: partitions {worker.get('partitions')} "
                     f"lag {worker.get('lag')} restarts {worker.get('restarts')}")
    logs = settings.home / "logs"
    for path in sorted(logs.glob("*.log")) if logs.is_dir() else []:
        named = [line for line in path.read_text(errors="replace").splitlines()
                 if pipeline_id in line or '"error"' in line or '"warning"' in line]
        lines += [f"--- {path.name} (last {events} events naming it, or warnings)"]
        lines += [line[:400] for line in named[-events:]]
    broker_log = settings.home / "cluster" / "kafka.log"
    if broker_log.is_file():
        warnings = [line for line in broker_log.read_text(errors="replace").splitlines()
                    if " WARN " in line or " ERROR " in line]
        lines += ["--- broker warnings", *[line[:400] for line in warnings[-events:]]]
    return "\n".join(lines)


@contextmanager
def paused_mid_stream(settings: Settings, pipeline: Path, inputs: list[Path], out: Path,
                      still_running: bool = True, **options: Any) -> Iterator[source.Job]:
    """Submit a job whose source stops halfway through its input until the block ends. The
    job cannot finish mapping before then, so what the block does (announce another
    pipeline, kill a worker) happens mid-job however fast the framework is. (With a plain
    big input, a faster framework once finished the first job before the second was even
    announced, and the "mid-run" tests tested nothing.)"""
    job = source.Job(pipeline, inputs, out, **options)
    source.prepare(job, settings)
    halfway, resume = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def progress(sent: int, total: int) -> None:
        if sent * 2 >= total and not halfway.is_set():
            halfway.set()
            resume.wait(timeout=PAUSE_LIMIT_S)

    def stream() -> None:
        try:
            source.submit(job, settings, progress)
        except BaseException as exc:  # handed to the test below
            failures.append(exc)
            halfway.set()

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    assert halfway.wait(60), "the source never got halfway through its input"
    if failures:
        raise failures[0]
    store = Store(settings.redis_url)
    try:  # the source is released whatever happens in here
        wait_for(lambda: store.ended_counts(job.pipeline_id)["mapped"] > 0, 90,
                 "the paused job's first mapped frame")
        yield job
        status = store.pipeline(job.pipeline_id)
        assert not still_running or thread.is_alive() and status.get("state") == "running", (
            f"the paused job went on before it was resumed: source "
            f"{'paused' if thread.is_alive() else 'ended'}, state {status.get('state')}, "
            f"reason {status.get('reason')!r}, failures {failures}")
    finally:
        resume.set()
        thread.join(60)
    if failures:
        raise failures[0]


# What the oracles give for a job, by what it depends on: the suites that run the same
# pipelines over the same input files at many crash points compute it once.
_expected: dict[tuple[Any, ...], Any] = {}


def _same_job(job: source.Job, oracle: str) -> tuple[Any, ...]:
    """What an oracle's answer for the job depends on: its code, options and input files
    (each with its size and modification time)."""
    files = tuple((str(path), path.stat().st_size, path.stat().st_mtime_ns)
                  for path in job.files)
    return (oracle, str(job.pipeline_path), files, job.partitions, job.fmt,
            tuple(sorted(job.params.items())), tuple(job.job_args))


def assert_counters_exact(settings: Settings, job: source.Job) -> None:
    """The job's counters are the inline runner's on the same input: each task counted
    once, however often a worker died (the shapes count in mappers and reducers, never in
    combiners, whose counts depend on how the input is cut)."""
    assert job.code is not None
    key = _same_job(job, "inline counters")
    if key not in _expected:
        _expected[key] = run_inline(job.code, job.files, partitions=job.partitions,
                                    fmt=job.fmt, params=job.params).counters
    expected = _expected[key]
    counted = Store(settings.redis_url).counters(job.pipeline_id)
    assert counted == expected, f"{job.pipeline_id}: counters {counted}, expected {expected}"


def assert_matches_sequential(job: source.Job) -> reference.Comparison:
    assert job.spec is not None
    assert output.is_complete(job.output_dir)
    key = _same_job(job, "sequential")
    if key not in _expected:
        _expected[key] = reference.run_sequential(job.spec, job.files)
    comparison = reference.compare(_expected[key],
                                   output.read_output(job.output_dir, job.spec.output_format))
    assert comparison.equal, f"{job.pipeline_id} ({job.spec.name}): {comparison.summary()}"
    return comparison
