"""`mapreduce`: the command line, a thin layer over the Python API (services/client/api.py).

Jobs: run, submit, wait, cancel, status, deadletters. The local cluster: up, down. The
dashboard and Prometheus metrics: ui. A worker in the foreground: worker. Every error is
one line on stderr: exit 2 (1 for a job that failed, 3 for a --timeout)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import redis
from confluent_kafka import KafkaException
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mapreduce_kafka.services.client import api, reference, source
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.services.roles import ROLE_NAMES, ROLES
from mapreduce_kafka.services.status.cluster_health import cluster_health
from mapreduce_kafka.services.status.status_view import (
    cluster_table,
    pipeline_detail,
    pipelines_table,
    workers_table,
)
from mapreduce_kafka.services.status.worker_status import worker_rows
from mapreduce_kafka.shared import kafka, output, signing
from mapreduce_kafka.shared.barrier import status_totals
from mapreduce_kafka.shared.errors import MapReduceError
from mapreduce_kafka.shared.logging import configure
from mapreduce_kafka.shared.redis_client import redacted
from mapreduce_kafka.shared.resubscribe_strategies import DEFAULT_STRATEGY, STRATEGIES
from mapreduce_kafka.shared.setting_sources import resolve
from mapreduce_kafka.shared.settings import (
    DEFAULT_SHUFFLE_MEMORY_MB,
    ENV_SHUFFLE_MEMORY,
    Settings,
    default_home,
)
from mapreduce_kafka.shared.spec import GUARANTEES, PipelineCode
from mapreduce_kafka.shared.streaming_steps import command_code

console = Console(stderr=True)
ROLE_OF_FLAG = {role.cli_flag: role for role in ROLES}  # `up`'s count options
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
WATCH_PERIOD_S = 2.0  # how often `status --watch` redraws: a display's refresh period


class Context:
    """The global options, turned into settings and a cluster when a command needs one."""

    def __init__(self, flags: dict[str, Any], config_file: Path | None) -> None:
        self.flags = {k: v for k, v in flags.items() if v is not None}
        self.config_file = config_file

    def settings(self) -> Settings | None:
        return resolve(flags=self.flags, config=self.config_file)

    def home(self) -> Path:
        settings = self.settings()
        return settings.home if settings else Path(self.flags.get("home") or
                                                   default_home()).expanduser()

    def cluster(self, **overrides: Any) -> api.Cluster:
        """The configured cluster; or the local one, started with its worker pool when it
        is not running (never workers for a remote cluster: those run on its hosts)."""
        settings = self.settings()
        if (settings is None or settings.local) and not LocalCluster(self.home()).running():
            console.print(f"[dim]starting local Kafka and Redis in {self.home()} ...[/dim]")
        cluster = api.connect(config_file=self.config_file, **self.flags, **overrides)
        if not cluster.settings.local and not cluster.live_roles():
            console.print("[yellow]warning:[/yellow] no worker has reported to this cluster "
                          "in the last seconds; the job waits until workers run "
                          "(`mapreduce worker ROLE` on the worker hosts)", soft_wrap=True)
        return cluster

    def existing(self) -> api.Cluster:
        """The cluster as it is: nothing started."""
        return api.connect(config_file=self.config_file, start_local=False, **self.flags)


def _role_options(fn: Any) -> Any:
    for role in reversed(ROLES):
        fn = click.option(f"--{role.cli_flag}", type=click.IntRange(0, 64), default=None,
                          help=f"number of {role.name} workers "
                               f"(default {role.default_count})")(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--bootstrap-servers", default=None,
              help="Kafka bootstrap servers of an existing cluster "
                   "[env MAPREDUCE_BOOTSTRAP_SERVERS]. Default: the local cluster.")
@click.option("--redis-url", default=None,
              help="Redis URL of an existing server, e.g. redis://host:6379/0 "
                   "[env MAPREDUCE_REDIS_URL]. Default: the local cluster.")
@click.option("--home", type=click.Path(path_type=Path), default=None,
              help="state directory: local cluster data, logs, pids "
                   "[env MAPREDUCE_HOME, default ~/.mapreduce]")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="settings file (TOML) [env MAPREDUCE_CONFIG, default "
                                 "~/.config/mapreduce/config.toml if it exists]")
@click.option("--signing-key-file", default=None,
              type=click.Path(path_type=Path, dir_okay=False),
              help="key that signs pipeline specs (submitting) and verifies them (workers) "
                   f"[env {signing.ENV_KEY_FILE}; default: {signing.ENV_KEY}, or the local "
                   f"cluster's HOME/{signing.KEY_FILE_NAME}]")
@click.option("--insecure-specs", is_flag=True, default=None,
              help="development only: workers this command starts run unsigned specs, and "
                   "a source without a key sends them unsigned")
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="log level of the CLI's own messages")
@click.pass_context
def cli(ctx: click.Context, bootstrap_servers: str | None, redis_url: str | None,
        home: Path | None, config_file: Path | None, signing_key_file: Path | None,
        insecure_specs: bool | None, log_level: str) -> None:
    """MapReduce on Apache Kafka (data) and Redis (coordination).

    A pipeline is a Python module with mapper(record) yielding (key, value) pairs,
    reducer(key, values) returning the reduced value, and optionally combiner(key, values);
    a map_batch(records) or map_chunk(data) beside the mapper makes it faster
    (README, "Writing a pipeline").

    \b
    Quick start:
      mapreduce up                       # local Kafka + Redis + workers
      mapreduce run pipelines/wordcount.py --input pipelines/samples/text --output out/wc --verify
      mapreduce run pipelines/wordcount.py --inline -i pipelines/samples/text -o out/wc-inline
      mapreduce status
      mapreduce down
    """
    configure(log_level, json=False)
    ctx.obj = Context({"bootstrap_servers": bootstrap_servers, "redis_url": redis_url,
                       "home": home.expanduser() if home else None,
                       "signing_key_file": signing_key_file,
                       "insecure_specs": insecure_specs or None}, config_file)


@cli.command()
@_role_options
@click.option("--resubscribe", type=click.Choice(STRATEGIES), default=None,
              help="how mappers and reducers follow new pipelines (for workers this command "
                   f"starts) [env MAPREDUCE_RESUBSCRIBE, default {DEFAULT_STRATEGY}]")
@click.option("--shuffle-memory", type=click.IntRange(1), default=None, metavar="MB",
              help="memory a shuffler holds before spilling sorted runs to disk "
                   f"[env {ENV_SHUFFLE_MEMORY}, default {DEFAULT_SHUFFLE_MEMORY_MB}]")
@click.option("--secure", is_flag=True,
              help="a local cluster with SASL_SSL, ACLs per role and Redis behind TLS with a "
                   "password (made once per --home; see docs/security.md)")
@click.option("--brokers", type=click.IntRange(1, 9), default=None,
              help="Kafka brokers of a new local cluster; more than one: every topic "
                   "replicated (factor min(3, brokers), min.insync.replicas one less) and Redis "
                   "with two replicas behind three Sentinels (fixed per --home) [default 1]")
@click.pass_obj
def up(obj: Context, resubscribe: str | None, shuffle_memory: int | None, secure: bool,
       brokers: int | None, **counts: int | None) -> None:
    """Start the local cluster and bring its worker pool to the requested counts, restarting
    workers that died. Idempotent. With a remote cluster configured, nothing is started
    here: its workers run on its hosts (`mapreduce worker ROLE`)."""
    wanted = {ROLE_OF_FLAG[k].name: v if v is not None else ROLE_OF_FLAG[k].default_count
              for k, v in counts.items()}
    overrides: dict[str, Any] = {k: v for k, v in (("resubscribe", resubscribe),
                                                   ("shuffle_memory_mb", shuffle_memory))
                                 if v is not None}
    if secure:
        overrides["secure"] = True
    if brokers is not None:
        overrides["brokers"] = brokers
    cluster = obj.cluster(**overrides)
    settings = cluster.settings
    if not settings.local:
        raise MapReduceError("a remote cluster is configured (--bootstrap-servers/--redis-url, "
                             "the environment or the config file): `up` manages the local "
                             "cluster only; start workers on the cluster's hosts with "
                             "`mapreduce worker ROLE`")
    cluster.ensure_workers(wanted)
    workers = supervisor.running(settings.home)
    console.print(f"cluster: Kafka {settings.bootstrap_servers}, "
                  f"Redis {redacted(settings.redis_url)}")
    console.print("workers: " + ", ".join(
        f"{role} x{sum(w.role == role for w in workers)}" for role in ROLE_NAMES))


def _parse_params(_ctx: Any, _param: Any, given: tuple[str, ...]) -> dict[str, str]:
    """--param NAME=VALUE, repeated: {NAME: VALUE}; a name given twice is an error."""
    params: dict[str, str] = {}
    for item in given:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise click.BadParameter(f"{item!r}: write NAME=VALUE", param_hint="--param")
        if name in params:
            raise click.BadParameter(f"{name} is given twice", param_hint="--param")
        params[name] = value
    return params


def _job_options(fn: Any) -> Any:
    options = [
        click.argument("pipeline", type=click.Path(path_type=Path), required=False),
        click.argument("more_inputs", nargs=-1, type=str, metavar="[INPUT]..."),
        click.option("--input", "-i", "inputs", multiple=True, type=str,
                     help="a file, a directory (its files, recursively), a glob pattern, or "
                          "kafka:TOPIC; .gz .bz2 .xz .zst are decompressed. Several paths "
                          "may follow one --input, or repeat it"),
        click.option("--output", "-o", required=True, type=str,
                     help="output directory (part-NNNNN files and _SUCCESS; must not exist), "
                          "or kafka:TOPIC"),
        click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text",
                     show_default=True, help="text: a record is a line; jsonl: a JSON value"),
        click.option("--output-format", type=click.Choice(list(output.USER_FORMATS)),
                     default="jsonl", show_default=True,
                     help="part files: jsonl, one [key, value] array a line; tsv, "
                          "key<TAB>value with both JSON-encoded"),
        click.option("--partitions", type=click.IntRange(1, 1024), default=4,
                     show_default=True, help="partitions of the pipeline's MAP/REDUCE topics "
                                             "(= parallelism, = number of output parts)"),
        click.option("--id", "pipeline_id", default="",
                     help="pipeline id (letters, digits, . _ -); default: generated"),
        click.option("--keep", is_flag=True,
                     help="keep the pipeline's topics and Redis keys after it finishes"),
        click.option("--max-errors", type=click.IntRange(0), default=None,
                     help="fail the job once more than N records (or keys) made the user's "
                          "code raise; default: no limit (they go to the DEADLETTER topic)"),
        click.option("--input-mode", type=click.Choice(list(source.INPUT_MODES)),
                     default="auto", show_default=True,
                     help="splits: send (file, offset, length) and let mappers read the "
                          "bytes (workers must see the input at the same path); kafka: send "
                          "the bytes through Kafka; auto: splits with the local cluster. "
                          "Splits are about 1 MiB [env MAPREDUCE_SPLIT_BYTES], frames sent "
                          "through Kafka about 256 KiB"),
        click.option("--task-timeout", "task_timeout_s", type=click.FloatRange(min=0),
                     default=0.0,
                     help="seconds one task (a frame, a split, a key group) may run before "
                          "it is charged to the job and its worker restarts; 0: the "
                          "cluster's default [env MAPREDUCE_TASK_TIMEOUT_S, 600]"),
        click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                     callback=_parse_params,
                     help="a parameter for the pipeline's code, read there with "
                          "param(NAME) (a string); repeat for several"),
        click.option("--file", "side_files", multiple=True, metavar="PATH",
                     type=click.Path(path_type=Path),
                     help="a file to ship with the job, read by the pipeline's code on "
                          "every worker with side_file(NAME) (its base name); repeat for "
                          "several"),
        click.option("--guarantee", type=click.Choice(list(GUARANTEES)),
                     default="exactly-once", show_default=True,
                     help="exactly-once: a frame replayed after a fault is dropped by its tag; "
                          "at-least-once: it is counted again"),
        click.option("--job-arg", "job_args", multiple=True, metavar="ARG",
                     help="an argument of an mrjob job's own (its configure_args); "
                          "everything after -- on the command line is one each"),
        click.option("--mapper-cmd", default=None, metavar="CMD",
                     help="no pipeline file: run this command as the mapper (Hadoop "
                          "Streaming: input lines on stdin, key<TAB>value lines on stdout)"),
        click.option("--combiner-cmd", default=None, metavar="CMD",
                     help="with --mapper-cmd: a command combining each map task's output, "
                          "sorted by key"),
        click.option("--reducer-cmd", default=None, metavar="CMD",
                     help="with --mapper-cmd: a command reading each reduce partition's "
                          "lines sorted by key; without it the job is map-only"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _request(pipeline: Path | None, inputs: tuple[str, ...], more_inputs: tuple[str, ...],
             options: dict[str, Any]) -> source.Job:
    code: Path | PipelineCode
    if options["mapper_cmd"] is not None:  # Hadoop Streaming: every argument is an input
        code = command_code(options["mapper_cmd"], options["combiner_cmd"],
                            options["reducer_cmd"])
        more_inputs = (str(pipeline), *more_inputs) if pipeline is not None else more_inputs
    elif options["combiner_cmd"] is not None or options["reducer_cmd"] is not None:
        raise click.UsageError("--combiner-cmd and --reducer-cmd go with --mapper-cmd")
    elif pipeline is None:
        raise click.UsageError("give a pipeline file (or --mapper-cmd CMD)")
    else:
        code = pipeline
    every = [*inputs, *more_inputs]
    if not every:
        raise click.UsageError("give the input: --input PATH [PATH...]")
    request = source.Job(code, every, options["output"], options["fmt"],
                         options["partitions"], options["pipeline_id"], options["keep"],
                         options["max_errors"], options["guarantee"], options["input_mode"],
                         options["output_format"], options["task_timeout_s"],
                         params=options["params"], side_files=list(options["side_files"]),
                         job_args=list(options["job_args"]))
    source.prepare(request, Settings("", ""))  # every local check, before connecting
    return request


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _submit(cluster: api.Cluster, request: source.Job) -> dict[str, Any]:
    source.prepare(request, cluster.settings)
    with _progress() as progress:
        task = progress.add_task("sending input", total=None)
        return source.submit(request, cluster.settings, lambda sent, total: progress.update(
            task, completed=sent, total=total or None))


def _follow(job: api.Job, frames: int | None, timeout: float | None) -> dict[str, Any]:
    """Wait for a job with a progress display: frames mapped, partitions ended per stage."""
    stage_names = ("map", "shuffle", "reduce", "sink")
    with _progress() as progress:
        mapped = progress.add_task("frames mapped", total=frames)
        tasks = {name: progress.add_task(f"{name} ended", total=None) for name in stage_names}

        def show(status: dict[str, Any]) -> None:
            total_frames = int(status["frames"]) if "frames" in status else frames
            progress.update(mapped, completed=int(status.get("mapped", 0)), total=total_frames)
            totals = {stage.value: total for stage, total in status_totals(status).items()}
            done = status.get("state") == "done"
            for name in stage_names:
                total = totals.get(name) or None
                progress.update(tasks[name], total=total,
                                completed=total if done and total else int(status.get(name, 0)))
            if done and total_frames:
                progress.update(mapped, completed=total_frames)

        return job.wait(show, timeout)


def _print_counters(counters: dict[str, dict[str, int]]) -> None:
    """What the job's code counted, a line per counter (as mrjob and Hadoop end a job)."""
    if counters:
        click.echo("counters:")
        for group, names in counters.items():
            for name, count in names.items():
                click.echo(f"  {group}: {name}: {count}")


def _summary(job: api.Job, elapsed: float, sent: dict[str, Any] | None,
             status: dict[str, Any]) -> None:
    final = job.status()
    size = f", {sent['bytes'] / 1e6:.1f} MB in ({sent['bytes'] / 1e6 / elapsed:.2f} MB/s)" \
        if sent else ""
    click.echo(f"pipeline {job.pipeline_id}: done in {elapsed:.2f}s{size}, "
               f"{final.get('keys', 0)} keys out -> {final.get('output')}")
    _print_counters(final.get("counters") or {})
    errors = int(final.get("errors") or status.get("errors") or 0)
    if errors:
        click.echo(f"warning: {errors} records or keys made the pipeline's code raise and were "
                   f"left out; see `mapreduce deadletters {job.pipeline_id}`")


@cli.command()
@_job_options
@click.option("--verify", is_flag=True,
              help="also run the pipeline sequentially in-process and compare; exit 1 on "
                   "any difference")
@click.option("--inline", is_flag=True,
              help="run in this process with no Kafka or Redis (for developing and testing a "
                   "pipeline): the same output as the cluster's")
@click.option("--timeout", type=float, default=None,
              help="give up waiting after N seconds (exit 3; the job goes on)")
@click.option("--top", type=int, default=0, help="print the N keys with the largest values")
@click.pass_obj
def run(obj: Context, pipeline: Path | None, inputs: tuple[str, ...], more_inputs: tuple[str, ...],
        verify: bool, inline: bool, timeout: float | None, top: int, **options: Any) -> None:
    """Submit a pipeline, show its progress, wait until its output is final, summarize.
    With --inline, run it here instead."""
    request = _request(pipeline, inputs, more_inputs, options)
    started = time.monotonic()
    if inline:
        result = api.Pipeline(code=request.code).run_inline(
            [*inputs, *more_inputs], request.output_dir, fmt=options["fmt"],
            partitions=options["partitions"], output_format=options["output_format"],
            settings=obj.settings(), params=options["params"], files=options["side_files"])
        click.echo(f"inline: done in {time.monotonic() - started:.2f}s, {result.keys} records "
                   f"out -> {result.output}")
        if result.dead_letters:
            click.echo(f"warning: {len(result.dead_letters)} records or keys were left out; "
                       f"first: {result.dead_letters[0]['identity']}: "
                       f"{result.dead_letters[0]['error']}")
        _print_counters(result.counters)
        items: list[tuple[Any, Any]] = list(result.pairs)
    else:
        cluster = obj.cluster()
        sent = _submit(cluster, request)
        job = api.Job(cluster, request.pipeline_id, request)
        status = _follow(job, sent["frames"], timeout)
        _summary(job, time.monotonic() - started, sent, status)
        items = list(job.results()) if (top or verify) else []
    if top:
        ranked = sorted(items, key=lambda kv: (-kv[1], str(kv[0])) if isinstance(
            kv[1], int | float) else (0, str(kv[0])))
        for key, value in ranked[:top]:
            click.echo(f"  {value!s:>10}  {key}")
    if verify:
        assert request.spec is not None
        expected = reference.run_sequential(request.spec, request.files, request.ranges,
                                            obj.settings())
        comparison = reference.compare(expected, items)
        click.echo(f"verify: {comparison.summary()}")
        if not comparison.equal:
            sys.exit(1)


@cli.command()
@_job_options
@click.pass_obj
def submit(obj: Context, pipeline: Path | None, inputs: tuple[str, ...],
           more_inputs: tuple[str, ...], **options: Any) -> None:
    """Submit a pipeline and return once its input is sent; prints the pipeline id (follow
    it with `mapreduce wait ID`)."""
    request = _request(pipeline, inputs, more_inputs, options)
    _submit(obj.cluster(), request)
    click.echo(request.pipeline_id)


@cli.command()
@click.argument("pipeline_id")
@click.option("--timeout", type=float, default=None,
              help="give up waiting after N seconds (exit 3; the job goes on)")
@click.pass_obj
def wait(obj: Context, pipeline_id: str, timeout: float | None) -> None:
    """Follow a submitted job until it ends: its progress, then a summary. Exits as `run`:
    0 done, 1 failed, 3 on --timeout."""
    job = obj.existing().job(pipeline_id)
    started = time.monotonic()
    status = _follow(job, None, timeout)
    _summary(job, time.monotonic() - started, None, status)


@cli.command()
@click.argument("pipeline_id")
@click.pass_obj
def cancel(obj: Context, pipeline_id: str) -> None:
    """Stop a job: it fails with the reason "cancelled", every worker drops it, and its
    topics, coordination keys and staging files are removed."""
    obj.existing().job(pipeline_id).cancel()
    click.echo(f"pipeline {pipeline_id}: cancelled")


@cli.command()
@click.argument("pipeline_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--all", "everything", is_flag=True,
              help="every pipeline whose status is kept (7 days), not only running and recent")
@click.option("--watch", is_flag=True, help="refresh every 2 s until interrupted")
@click.pass_obj
def status(obj: Context, pipeline_id: str | None, as_json: bool, everything: bool,
           watch: bool) -> None:
    """Without an id: running pipelines and those that ended in the last 24 hours, with what
    each waits on, then every worker on every host (role, pid, partitions, lag, last
    heartbeat, silent or not), then the cluster: brokers up or down, partitions
    under-replicated or offline, Redis's primary and its replicas. With an id: that
    pipeline's stages, frames, keys and first dead letters."""
    cluster = obj.existing()
    # one admin client for every refresh of --watch (each is a librdkafka handle)
    admin = None if pipeline_id else kafka.admin(cluster.settings, quiet=True)

    def snapshot() -> dict[str, Any]:
        if pipeline_id:
            job = cluster.job(pipeline_id)
            info = job.status()
            return {"pipeline": info,
                    "dead_letters": job.dead_letters(limit=5) if int(info["errors"]) else []}
        return {"pipelines": cluster.pipelines(everything),
                "workers": worker_rows(cluster.store.workers(), cluster.store.now()),
                "cluster": cluster_health(cluster.settings, cluster.store, admin)}

    def render(data: dict[str, Any]) -> Any:
        if pipeline_id:
            return pipeline_detail(data["pipeline"], data["dead_letters"])
        return Group(pipelines_table(data["pipelines"]), workers_table(data["workers"]),
                     cluster_table(data["cluster"]))

    if as_json:
        click.echo(json.dumps(snapshot(), indent=2, default=str))
        return
    out = Console()
    if not watch:
        out.print(render(snapshot()))
        return
    if not out.is_terminal:  # a pipe or a file: one snapshot after another
        while True:
            out.print(render(snapshot()))
            out.file.flush()
            time.sleep(WATCH_PERIOD_S)
    with Live(render(snapshot()), console=out, refresh_per_second=1) as live:
        while True:
            time.sleep(WATCH_PERIOD_S)
            live.update(render(snapshot()))


@cli.command()
@click.argument("pipeline_id")
@click.option("--limit", type=click.IntRange(1), default=None, help="at most N letters")
@click.pass_obj
def deadletters(obj: Context, pipeline_id: str, limit: int | None) -> None:
    """Print a pipeline's dead letters, one JSON object a line: the role, where the record or
    key came from, the error and its traceback, the data."""
    for letter in api.dead_letters(obj.existing().settings, pipeline_id, limit):
        click.echo(json.dumps(letter))


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def keygen(directory: Path) -> None:
    """Write an Ed25519 spec key pair and a message key to DIRECTORY: spec.key for the
    submitters, spec.pub for the workers, message.key for both (see docs/security.md)."""
    private, public, message = signing.write_ed25519_keys(directory)
    click.echo(f"submitters: {signing.ENV_KEY_FILE}={private}\n"
               f"workers:    {signing.ENV_KEY_FILE}={public}\n"
               f"both:       {signing.ENV_MESSAGE_KEY_FILE}={message}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to serve on (the dashboard has no login: keep it on loopback, "
                   "or put it behind a proxy that authenticates)")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.pass_obj
def ui(obj: Context, host: str, port: int) -> None:
    """Serve the dashboard (pipelines, their stages and timeline, dead letters, workers, the
    cluster's brokers and Redis, updated every second) and Prometheus metrics at /metrics.
    Reads what `status` reads; starts nothing."""
    from mapreduce_kafka.services.ui.server import serve

    cluster = obj.existing()
    console.print(f"dashboard: http://{host}:{port}/   metrics: http://{host}:{port}/metrics")
    serve(cluster, host, port)


@cli.command()
@click.pass_obj
def down(obj: Context) -> None:
    """Stop the local workers and the local cluster (its data stays in --home)."""
    home = obj.home()
    stopped = supervisor.stop_all(home)
    LocalCluster(home).stop()
    console.print(f"stopped {stopped} workers and the local cluster")


@cli.command()
@click.argument("role", type=click.Choice(list(ROLE_NAMES)))
@click.pass_obj
def worker(obj: Context, role: str) -> None:
    """Run one worker in the foreground (for containers and other hosts), with the global
    options' settings."""
    import os

    from mapreduce_kafka.services.worker import run_worker

    settings = obj.settings()
    if settings is not None:
        os.environ.update(settings.env())  # the worker, and its restarts, read them
    sys.exit(run_worker(role))


def _fail(prefix: str, message: str, code: int) -> None:
    # soft_wrap: an error is one line a test or a script can grep, whatever the width
    console.print(f"[red]{prefix}:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def job_arguments(argv: list[str]) -> list[str]:
    """The command line with what follows `--` after `run` or `submit` given as --job-arg
    (an mrjob job's own arguments: `mapreduce run mr_grep.py -i X -o Y -- -e lambda`)."""
    if "--" not in argv:
        return argv
    end = argv.index("--")
    if not {"run", "submit"} & set(argv[:end]):
        return argv
    return [*argv[:end], *(f"--job-arg={arg}" for arg in argv[end + 1:])]


def main() -> None:
    try:
        cli(args=job_arguments(sys.argv[1:]), standalone_mode=False)
    except click.exceptions.Abort:
        console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MapReduceError as exc:
        _fail("error", str(exc), exc.exit_code)
    except KafkaException as exc:
        _fail("Kafka error", exc.args[0].str(), 2)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        _fail("Redis error", f"{exc} (after retrying for a minute)", 2)
    except redis.RedisError as exc:
        _fail("Redis error", str(exc), 2)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _fail("error", f"{exc.strerror or exc}{where}", 2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()

