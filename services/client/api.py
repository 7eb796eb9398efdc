"""The Python API, for scripts and notebooks; the `mapreduce` command is a thin layer over it.

    from mapreduce_kafka.services.client.api import Pipeline, connect

    wordcount = Pipeline.from_file("pipelines/wordcount.py")
    # or from plain functions, a notebook's included (they travel pickled by value):
    # wordcount = Pipeline(mapper=my_mapper, reducer=my_reducer, combiner=my_combiner)

    wordcount.run_inline(["pipelines/samples/text"], "out/wc-inline")  # no Kafka, no Redis

    cluster = connect()  # the cluster the settings name, or the local one (started if need be)
    job = cluster.submit(wordcount, ["pipelines/samples/text"], "out/wc")
    status = job.wait(on_status=print)  # PipelineFailed if it failed, JobTimedOut on timeout
    for word, count in job.results():
        ...
    job.cancel()  # or stop one that runs

Settings come from the arguments of `connect`, then the environment, then the config file
(shared/setting_sources.py); a job's options are those of `mapreduce submit`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import structlog
from confluent_kafka import Consumer

from mapreduce_kafka.services.client import inline, source
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.services.runtime import lifecycle
from mapreduce_kafka.shared import kafka, output, topics
from mapreduce_kafka.shared.errors import ClusterError, ConnectionFailed, MapReduceError
from mapreduce_kafka.shared.pipeline_files import load_code
from mapreduce_kafka.shared.setting_sources import resolve
from mapreduce_kafka.shared.settings import Settings, default_home
from mapreduce_kafka.shared.spec import PipelineCode, Step
from mapreduce_kafka.shared.store import FINALIZING, SILENT_AFTER_S, TERMINAL, Store
from mapreduce_kafka.shared.streaming_steps import command_code
from mapreduce_kafka.shared.task_context import Counters

log = structlog.get_logger("api")
Status = dict[str, Any]


class Pipeline:
    """A pipeline: a module's functions, or plain ones (see shared/spec.py for what each
    function receives and returns)."""

    def __init__(self, mapper: Callable[..., Any] | None = None,
                 reducer: Callable[..., Any] | None = None, *,
                 combiner: Callable[..., Any] | None = None,
                 map_batch: Callable[..., Any] | None = None,
                 map_chunk: Callable[..., Any] | None = None,
                 key_selector: Callable[..., Any] | None = None,
                 value_selector: Callable[..., Any] | None = None,
                 steps: list[Step] | None = None,
                 name: str = "pipeline", code: PipelineCode | None = None,
                 **more: Any) -> None:
        """`more`: the rest of a step's functions and options by name (partitioner,
        sort_values, mapper_init, mapper_final, combiner_init, combiner_final,
        reducer_init, reducer_final)."""
        self.code = code or PipelineCode.from_functions(
            name, mapper=mapper, reducer=reducer, combiner=combiner, map_batch=map_batch,
            map_chunk=map_chunk, key_selector=key_selector, value_selector=value_selector,
            steps=steps, **more)

    @classmethod
    def from_file(cls, path: str | Path, args: Iterable[str] = (),
                  params: dict[str, str] | None = None) -> Pipeline:
        """The pipeline a file defines: its functions or steps, or an mrjob MRJob class,
        built with `args` (its own command-line arguments)."""
        return cls(code=load_code(path, params, list(args)))

    @classmethod
    def from_commands(cls, mapper: str, combiner: str | None = None,
                      reducer: str | None = None) -> Pipeline:
        """Hadoop Streaming's job: commands over tab-separated lines (shared/streaming.py)."""
        return cls(code=command_code(mapper, combiner, reducer))

    @property
    def name(self) -> str:
        return self.code.name

    def run_inline(self, inputs: Iterable[str | Path], output_dir: str | Path | None = None,
                   *, fmt: str = "text", partitions: int = 4, output_format: str = "jsonl",
                   settings: Settings | None = None, params: dict[str, str] | None = None,
                   files: Iterable[str | Path] = ()) -> inline.InlineResult:
        """Run it in this process (services/client/inline.py): results, dead letters,
        counters, and the output directory when one is given."""
        return inline.run_inline(self.code, inputs, output_dir, fmt=fmt,
                                 partitions=partitions, output_format=output_format,
                                 settings=settings, params=params, files=files)


def connect(bootstrap_servers: str | None = None, redis_url: str | None = None, *,
            home: str | Path | None = None, config_file: str | Path | None = None,
            start_local: bool = True, secure: bool = False, brokers: int | None = None,
            **settings: Any) -> Cluster:
    """The cluster the settings name; without one, the local cluster (started, with its
    worker pool, when `start_local`; secured, with `secure`: localcluster/secure.py; with
    `brokers` > 1, replicated: localcluster/replicated.py). Other keyword arguments override
    settings by name (say, resubscribe="reconnect")."""
    resolved = resolve(bootstrap_servers, redis_url,
                       Path(home).expanduser() if home else None,
                       flags=settings,
                       config=Path(config_file) if config_file else None)
    if resolved is not None and not resolved.local:
        Store(resolved.redis_url).check_reachable()
        kafka.check_reachable(resolved, timeout=5)
        return Cluster(resolved)
    if not start_local:
        if resolved is None:
            raise ConnectionFailed("no cluster configured and no local cluster running: "
                                   "`mapreduce up`, or pass --bootstrap-servers/--redis-url")
        return Cluster(resolved)
    local_home = resolved.home if resolved else (
        Path(home).expanduser() if home else default_home())
    local = LocalCluster(local_home, secure=secure)
    if brokers is not None and brokers != local.brokers:
        if local.running() or (local.root / "brokers").exists():
            raise ClusterError(f"the local cluster in {local_home} has {local.brokers} "
                               f"broker(s): its shape is fixed once made; `mapreduce down` "
                               f"and remove {local.root}, or use another --home")
        local = LocalCluster(local_home, secure=secure, brokers=brokers)
    started = local.start()
    if resolved is not None:  # the local cluster's addresses, every other setting as given
        started = resolved.with_(bootstrap_servers=started.bootstrap_servers,
                                 redis_url=started.redis_url, local=True)
    cluster = Cluster(started)
    cluster.ensure_workers()
    return cluster


class Cluster:
    """A running cluster: submit jobs, find them, see its workers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.redis_url)

    def ensure_workers(self, counts: dict[str, int] | None = None) -> None:
        """The local worker pool: start what is missing (every role without a live worker
        gets its default count). Only for the local cluster: workers of a remote cluster run
        on its hosts (`mapreduce worker ROLE`), never on the submitting one."""
        if not self.settings.local:
            raise MapReduceError("workers are started on the cluster's own hosts "
                                 "(`mapreduce worker ROLE` there), not from here")
        if counts is None:
            have = {w.role for w in supervisor.running(self.settings.home)}
            counts = {r: n for r, n in supervisor.DEFAULT_COUNTS.items() if r not in have}
        if counts:
            supervisor.scale(self.settings, counts)

    def live_roles(self) -> set[str]:
        """Roles with a worker that reported within SILENT_AFTER_S."""
        now = self.store.now()
        return {w.get("role", "") for w in self.store.workers()
                if now - float(w.get("last_seen") or 0) < SILENT_AFTER_S}

    def submit(self, pipeline: Pipeline | str | Path, inputs: Iterable[str | Path],
               output_dir: str | Path, *, fmt: str = "text", partitions: int = 4,
               pipeline_id: str = "", keep: bool = False, max_errors: int | None = None,
               guarantee: str = "exactly-once", input_mode: str = "auto",
               output_format: str = "jsonl", task_timeout_s: float = 0.0,
               params: dict[str, str] | None = None, files: Iterable[str | Path] = (),
               job_args: Iterable[str] = (),
               on_progress: Callable[[int, int], None] = lambda sent, total: None) -> Job:
        """Announce a job and stream its input; returns once the input is sent. `params`:
        the job's parameters, read by its code with `param(name)`; `files`, files shipped
        with it, read by name with `side_file(name)`; `job_args`, an mrjob job's own
        arguments, for a pipeline given as a file."""
        code = pipeline.code if isinstance(pipeline, Pipeline) else Path(pipeline)
        request = source.Job(code, [str(i) for i in inputs], output_dir, fmt, partitions,
                             pipeline_id, keep, max_errors, guarantee, input_mode,
                             output_format, task_timeout_s, params=dict(params or {}),
                             side_files=[Path(f) for f in files], job_args=list(job_args))
        source.prepare(request, self.settings)
        source.submit(request, self.settings, on_progress)
        return Job(self, request.pipeline_id, request)

    def job(self, pipeline_id: str) -> Job:
        """A job submitted before, by its id."""
        if not self.store.pipeline(pipeline_id):
            raise MapReduceError(f"no pipeline {pipeline_id!r} on this cluster (or its "
                                 "status has expired)")
        return Job(self, pipeline_id)

    def pipelines(self, everything: bool = False, recent_s: float = 24 * 3600) -> list[Status]:
        """Running pipelines and those that ended within recent_s (or every one kept)."""
        from mapreduce_kafka.services.status.status_view import pipeline_progress

        now = self.store.now()
        found = []
        for pid in self.store.pipeline_ids():
            info = self.store.pipeline(pid)
            if not info:
                continue
            ended = info.get("state") in TERMINAL
            if ended and not everything and now - float(info.get("finished") or 0) > recent_s:
                continue
            found.append({"id": pid, **info, **pipeline_progress(self.store, pid, info)})
        return sorted(found, key=lambda p: float(p.get("submitted") or 0))


@dataclass
class Job:
    """One job on a cluster (`request`: how it was submitted, when this process did)."""

    cluster: Cluster
    pipeline_id: str
    request: source.Job | None = None

    def status(self) -> Status:
        from mapreduce_kafka.services.status.status_view import pipeline_progress

        info = self.cluster.store.pipeline(self.pipeline_id)
        return {"id": self.pipeline_id, **info,
                **pipeline_progress(self.cluster.store, self.pipeline_id, info)}

    def wait(self, on_status: Callable[[Status], None] = lambda status: None,
             timeout: float | None = None) -> Status:
        """Until the job ends: its final status. PipelineFailed if it failed, JobTimedOut
        past `timeout` (the job goes on)."""
        return source.wait(self.cluster.settings, self.pipeline_id, on_status, timeout)

    def cancel(self, reason: str = "cancelled") -> str:
        """Fail the job: every worker drops it, its topics, keys and staging files go. A
        job whose output is complete and being finalized cannot be cancelled any more."""
        store = self.cluster.store
        state = store.pipeline(self.pipeline_id).get("state")
        if state in TERMINAL:
            raise MapReduceError(f"pipeline {self.pipeline_id} has already ended ({state})")
        held = lifecycle.finish(store, None, self.pipeline_id, "failed", reason)
        if held == FINALIZING:
            raise MapReduceError(f"pipeline {self.pipeline_id} is finalizing a complete "
                                 "output: too late to cancel")
        return held

    def output(self) -> tuple[str, str]:
        info = self.cluster.store.pipeline(self.pipeline_id)
        return info.get("output", ""), info.get("output_format", "jsonl")

    def results(self) -> Iterator[tuple[Any, Any]]:
        """The job's (key, value) results, streamed from its output directory or topic."""
        where, fmt = self.output()
        if output.is_topic(where):
            yield from topic_results(self.cluster.settings, output.topic_of(where),
                                     self.pipeline_id)
        else:
            yield from output.iter_output(where, fmt)

    def counters(self) -> Counters:
        """What the job's code counted (increment_counter): {group: {name: count}}, so far
        while it runs, final once it is done."""
        return self.cluster.store.counters(self.pipeline_id)

    def dead_letters(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The records and keys of this job that its code failed on, oldest first."""
        return dead_letters(self.cluster.settings, self.pipeline_id, limit)


def topic_results(settings: Settings, topic: str,
                  pipeline_id: str) -> Iterator[tuple[Any, Any]]:
    """A job's records in an output topic (those its header names), without the completion
    record, read up to the topic's end as it is now."""
    for msg in _read_topic(settings, topic):
        result = output.topic_result(pipeline_id, msg.key(), msg.value())
        if result is not None:
            yield result


def dead_letters(settings: Settings, pipeline_id: str,
                 limit: int | None = None) -> list[dict[str, Any]]:
    letters = []
    for msg in _read_topic(settings, topics.DEADLETTER):
        if msg.key() == pipeline_id.encode():
            letters.append(orjson.loads(msg.value() or b"{}"))
            if limit is not None and len(letters) >= limit:
                break
    return letters


def _read_topic(settings: Settings, topic: str) -> Iterator[Any]:
    """Every record of a topic, from its start to its end as it is now."""
    watermarks = kafka.high_watermarks(settings, topic)
    consumer = Consumer({**settings.consumer_config("mapreduce-reader"),
                         "enable.partition.eof": True})
    try:
        for partition, (low, high) in watermarks.items():
            if high <= low:
                continue
            for batch in kafka.read_range(consumer, topic, partition, low, high):
                yield from batch
    finally:
        consumer.close()

