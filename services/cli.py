"""`mapreduce`: the command line. The source role lives here (submit, run); `up`/`down`
manage a local cluster and worker pool; `status` shows pipelines and workers."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
from confluent_kafka import KafkaException
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services import reference, source, supervisor
from services.localcluster.cluster import LocalCluster
from services.worker_status import worker_rows
from shared import config, kafka, liveness, signing
from shared import output as job_output
from shared.barrier import Stage
from shared.errors import ConnectionFailed, MapReduceError
from shared.logging import configure
from shared.spec import GUARANTEES
from shared.store import SILENT_AFTER_S, Store

console = Console(stderr=True)
ROLE_FLAGS = {"dispatchers": "dispatcher", "mappers": "mapper", "shufflers": "shuffler",
              "reducers": "reducer", "sinks": "sink"}


class Context:
    def __init__(self, bootstrap: str | None, redis_url: str | None, home: Path,
                 signing_key_file: Path | None = None, insecure_specs: bool = False) -> None:
        self.bootstrap, self.redis_url, self.home = bootstrap, redis_url, home
        self.signing: dict[str, object] = {}
        if signing_key_file is not None:
            self.signing["signing_key_file"] = signing_key_file
        if insecure_specs:
            self.signing["insecure_specs"] = True

    def settings(self) -> config.Settings | None:
        settings = config.resolve(self.bootstrap, self.redis_url, self.home)
        return settings.with_(**self.signing) if settings is not None else None

    def cluster(self) -> LocalCluster:
        return LocalCluster(self.home)

    def ensure(self, counts: dict[str, int] | None = None,
               **overrides: object) -> config.Settings:
        """A reachable cluster and a worker pool: start what is missing. With no counts, any
        role without a live worker gets its default number."""
        settings = self.settings()
        if settings is None or settings.local:
            cluster = self.cluster()
            if not cluster.running():
                console.print("[dim]starting local Kafka and Redis in "
                              f"{cluster.root} ...[/dim]")
            settings = cluster.start().with_(**self.signing)
        else:  # an existing cluster: say so now rather than start workers that cannot work
            Store(settings.redis_url).check_reachable()
            kafka.check_reachable(settings, timeout=5)
        settings = settings.with_(**overrides)
        running = supervisor.running(settings.home)
        if counts is None:
            have = {w.role for w in running}
            counts = {r: n for r, n in supervisor.DEFAULT_COUNTS.items() if r not in have}
        if counts:
            supervisor.scale(settings, counts)
        return settings


def _role_options(fn: Any) -> Any:
    for flag, role in reversed(ROLE_FLAGS.items()):
        fn = click.option(f"--{flag}", type=click.IntRange(0, 64), default=None,
                          help=f"number of {role} workers "
                               f"(default {supervisor.DEFAULT_COUNTS[role]})")(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--bootstrap-servers", envvar=config.ENV_BOOTSTRAP, default=None,
              help="Kafka bootstrap servers of an existing cluster "
                   "[env MAPREDUCE_BOOTSTRAP_SERVERS]. Default: the local cluster.")
@click.option("--redis-url", envvar=config.ENV_REDIS, default=None,
              help="Redis URL of an existing server, e.g. redis://host:6379/0 "
                   "[env MAPREDUCE_REDIS_URL]. Default: the local cluster.")
@click.option("--home", envvar=config.ENV_HOME, type=click.Path(path_type=Path),
              default=None, help="state directory: local cluster data, logs, pids "
                                 "[env MAPREDUCE_HOME, default ~/.mapreduce]")
@click.option("--signing-key-file", envvar=signing.ENV_KEY_FILE, default=None,
              type=click.Path(path_type=Path, dir_okay=False),
              help="key that signs pipeline specs (submitting) and verifies them (workers) "
                   f"[env {signing.ENV_KEY_FILE}; default: {signing.ENV_KEY}, or the local "
                   f"cluster's HOME/{signing.KEY_FILE_NAME}]")
@click.option("--insecure-specs", is_flag=True, envvar=signing.ENV_INSECURE,
              help="development only: workers this command starts run unsigned specs, and "
                   "a source without a key sends them unsigned")
@click.option("--log-level", default="WARNING", show_default=True,
              help="log level of the CLI's own messages")
@click.pass_context
def cli(ctx: click.Context, bootstrap_servers: str | None, redis_url: str | None,
        home: Path | None, signing_key_file: Path | None, insecure_specs: bool,
        log_level: str) -> None:
    """MapReduce on Apache Kafka (data) and Redis (coordination).

    A pipeline is a Python module with mapper(record) yielding (key, value) pairs,
    reducer(key, values) returning the reduced value, and optionally combiner(key, values);
    a map_batch(records) or map_chunk(data) beside the mapper makes it faster
    (README, "Writing a pipeline").

    \b
    Quick start:
      mapreduce up                       # local Kafka + Redis + workers
      mapreduce run pipelines/wordcount.py --input pipelines/samples/text --output out/wc --verify
      mapreduce status
      mapreduce down
    """
    configure(log_level, json=False)
    ctx.obj = Context(bootstrap_servers, redis_url, (home or config.default_home()).expanduser(),
                      signing_key_file, insecure_specs)


@cli.command()
@_role_options
@click.option("--resubscribe", type=click.Choice(config.STRATEGIES), default=None,
              help="how mappers and reducers follow new pipelines (for workers this command "
                   f"starts) [env MAPREDUCE_RESUBSCRIBE, default {config.DEFAULT_STRATEGY}]")
@click.option("--shuffle-memory", type=click.IntRange(1), default=None, metavar="MB",
              help="memory a shuffler holds before spilling sorted runs to disk "
                   f"[env {config.ENV_SHUFFLE_MEMORY}, default {config.DEFAULT_SHUFFLE_MEMORY_MB}]")
@click.pass_obj
def up(obj: Context, resubscribe: str | None, shuffle_memory: int | None,
       **counts: int | None) -> None:
    """Start the local cluster (unless one is configured) and bring the worker pool to the
    requested counts, restarting workers that died. Idempotent."""
    wanted = {ROLE_FLAGS[k]: v if v is not None else supervisor.DEFAULT_COUNTS[ROLE_FLAGS[k]]
              for k, v in counts.items()}
    overrides: dict[str, object] = {}
    if resubscribe is not None:
        overrides["resubscribe"] = resubscribe
    if shuffle_memory is not None:
        overrides["shuffle_memory_mb"] = shuffle_memory
    settings = obj.ensure(wanted, **overrides)
    workers = supervisor.running(settings.home)
    console.print(f"cluster: Kafka {settings.bootstrap_servers}, "
                  f"Redis {config.redacted(settings.redis_url)}")
    console.print("workers: " + ", ".join(
        f"{role} x{sum(w.role == role for w in workers)}" for role in supervisor.DEFAULT_COUNTS))


def _job_options(fn: Any) -> Any:
    options = [
        click.argument("pipeline", type=click.Path(path_type=Path)),
        click.option("--input", "-i", "inputs", multiple=True, required=True,
                     type=click.Path(path_type=Path),
                     help="input file or directory (its files, sorted by name); repeatable"),
        click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
                     help="output directory: part-NNNNN files and _SUCCESS; must not exist"),
        click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text",
                     show_default=True, help="text: a record is a line; jsonl: a JSON value"),
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
        click.option("--guarantee", type=click.Choice(list(GUARANTEES)),
                     default="exactly-once", show_default=True,
                     help="exactly-once: a frame replayed after a fault is dropped by its tag; "
                          "at-least-once: it is counted again"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _prepare(obj: Context, pipeline: Path, inputs: tuple[Path, ...], output_dir: Path, fmt: str,
             partitions: int, pipeline_id: str, keep: bool, max_errors: int | None,
             input_mode: str, guarantee: str) -> tuple[source.Job, config.Settings]:
    job = source.Job(pipeline, list(inputs), output_dir, fmt, partitions, pipeline_id, keep,
                     max_errors, guarantee, input_mode)
    source.prepare(job, config.Settings("", ""))  # all local checks before any connection
    settings = obj.ensure()
    source.prepare(job, settings)
    return job, settings


def _submit_with_progress(job: source.Job, settings: config.Settings) -> dict[str, Any]:
    with _progress() as progress:
        task = progress.add_task("sending input", total=None)
        return source.submit(job, settings, lambda sent, total: progress.update(
            task, completed=sent, total=total))


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


@cli.command()
@_job_options
@click.option("--verify", is_flag=True,
              help="also run the pipeline sequentially in-process and compare; exit 1 on "
                   "any difference")
@click.option("--timeout", type=float, default=None, help="give up waiting after N seconds")
@click.option("--top", type=int, default=0, help="print the N keys with the largest values")
@click.pass_obj
def run(obj: Context, pipeline: Path, inputs: tuple[Path, ...], output: Path, fmt: str,
        partitions: int, pipeline_id: str, keep: bool, max_errors: int | None,
        input_mode: str, guarantee: str, verify: bool, timeout: float | None,
        top: int) -> None:
    """Submit a pipeline, show its progress, wait until its output is final, summarize."""
    job, settings = _prepare(obj, pipeline, inputs, output, fmt, partitions, pipeline_id, keep,
                             max_errors, input_mode, guarantee)
    started = time.monotonic()
    sent = _submit_with_progress(job, settings)
    stage_names = ("map", "shuffle", "reduce", "sink")
    with _progress() as progress:
        mapped = progress.add_task("frames mapped", total=sent["frames"])
        tasks = {name: progress.add_task(f"{name} ended", total=None) for name in stage_names}

        def show(status: dict[str, Any]) -> None:
            progress.update(mapped, completed=int(status.get("mapped", 0)))
            totals = {"map": int(status.get("partitions", 0)),
                      "shuffle": int(status.get("shuffle_partitions", 0)) or None,
                      "reduce": int(status.get("partitions", 0)),
                      "sink": int(status.get("partitions", 0))}
            for name in stage_names:
                progress.update(tasks[name], completed=int(status.get(name, 0)),
                                total=totals[name])
            if status.get("state") == "done":
                progress.update(mapped, completed=sent["frames"])
                for name in stage_names:
                    progress.update(tasks[name], completed=totals[name] or 1,
                                    total=totals[name] or 1)

        status = source.wait(settings, job.pipeline_id, show, timeout=timeout)
    elapsed = time.monotonic() - started
    items = job_output.read_output(job.output_dir)
    mb = sent["bytes"] / 1e6
    click.echo(f"pipeline {job.pipeline_id}: done in {elapsed:.2f}s, {mb:.1f} MB in "
               f"({mb / elapsed:.2f} MB/s), {len(items)} keys out -> {job.output_dir}")
    errors = int(status.get("errors") or 0)
    if errors:
        click.echo(f"warning: {errors} records or keys made the pipeline's code raise and were "
                   "left out; they are on the DEADLETTER topic with their tracebacks")
    if top:
        ranked = sorted(items, key=lambda kv: (-kv[1], str(kv[0])) if isinstance(
            kv[1], int | float) else (0, str(kv[0])))
        for key, value in ranked[:top]:
            click.echo(f"  {value!s:>10}  {key}")
    if verify:
        assert job.spec is not None
        expected = reference.run_sequential(job.spec, job.files)
        comparison = reference.compare(expected, items)
        click.echo(f"verify: {comparison.summary()}")
        if not comparison.equal:
            sys.exit(1)


@cli.command()
@_job_options
@click.pass_obj
def submit(obj: Context, pipeline: Path, inputs: tuple[Path, ...], output: Path, fmt: str,
           partitions: int, pipeline_id: str, keep: bool, max_errors: int | None,
           input_mode: str, guarantee: str) -> None:
    """Submit a pipeline and return at once; prints the pipeline id."""
    job, settings = _prepare(obj, pipeline, inputs, output, fmt, partitions, pipeline_id, keep,
                             max_errors, input_mode, guarantee)
    _submit_with_progress(job, settings)
    click.echo(job.pipeline_id)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Pipelines with their state and progress; every worker, on every host, with its role,
    pid, assigned partitions, lag (messages not yet read on them), last heartbeat, and
    whether it has gone silent."""
    settings = obj.settings()
    if settings is None:
        raise ConnectionFailed("no cluster configured and no local cluster running: "
                               "`mapreduce up`, or pass --bootstrap-servers/--redis-url")
    store = Store(settings.redis_url)
    store.check_reachable()
    pipelines: list[dict[str, Any]] = []
    for pid in store.pipeline_ids():
        info = store.pipeline(pid)
        if info:
            pipelines.append({"id": pid, **info, **pipeline_progress(store, pid, info)})
    workers = worker_rows(store.workers(), store.now())
    if as_json:
        import json
        click.echo(json.dumps({"pipelines": pipelines, "workers": workers}, indent=2))
        return
    table = Table(title="pipelines")
    for column in ("id", "state", "frames mapped", "map/shuffle/reduce/sink ended", "errors",
                   "output", "waiting on / reason"):
        table.add_column(column)
    for p in pipelines:
        table.add_row(p["id"], p.get("state", "?"), f"{p['mapped']}/{p.get('frames', '?')}",
                      f"{p['map']}/{p['shuffle']}/{p['reduce']}/{p['sink']}",
                      str(p["errors"]), p.get("output", ""),
                      p.get("reason") or p.get("waiting_on", ""))
    out = Console()
    out.print(table)
    wtable = Table(title=f"workers (silent: no heartbeat for {SILENT_AFTER_S} s)")
    for column in ("host", "role", "pid", "partitions", "lag", "last heartbeat", ""):
        wtable.add_column(column)
    for w in workers:
        wtable.add_row(w["host"], w["role"], w["pid"], _partitions_text(w["partitions"]),
                       "?" if w["lag"] is None else str(w["lag"]),
                       f"{w['last_seen_s']:.1f}s ago",
                       "[red]SILENT[/red]" if w["silent"] else "ok")
    out.print(wtable)


def pipeline_progress(store: Store, pipeline_id: str, info: dict[str, str]) -> dict[str, Any]:
    """Barrier counts, frames mapped and errors: live while the pipeline runs, the final
    figures (kept in its status) once it has ended; and, while it runs, what it waits on."""
    if info.get("state") in ("done", "failed") and "final.map" in info:
        counts: dict[str, Any] = {name: int(info.get(f"final.{name}") or 0)
                                  for name in ("source", "map", "shuffle", "reduce", "sink",
                                               "mapped")}
        counts["errors"] = int(info.get("errors") or 0)
        return counts
    counts = dict(store.ended_counts(pipeline_id))
    counts["errors"] = max(counts["errors"], int(info.get("errors") or 0))
    if info.get("state") not in ("done", "failed"):
        partitions = int(info.get("partitions") or 0)
        totals = {Stage.SOURCE: int(info.get("source_partitions") or 0), Stage.MAP: partitions,
                  Stage.SHUFFLE: int(info.get("shuffle_partitions") or 0),
                  Stage.REDUCE: partitions, Stage.SINK: partitions}
        ended = {stage: int(counts[stage.value]) for stage in totals}
        frames = int(info["frames"]) if "frames" in info else None
        counts["waiting_on"] = liveness.describe(ended, totals, int(counts["mapped"]), frames)
    return counts


def _partitions_text(partitions: list[str], shown: int = 6) -> str:
    if len(partitions) <= shown:
        return ",".join(partitions)
    return ",".join(partitions[:shown]) + f" (+{len(partitions) - shown})"


@cli.command()
@click.pass_obj
def down(obj: Context) -> None:
    """Stop the local workers and the local cluster (its data stays in --home)."""
    stopped = supervisor.stop_all(obj.home)
    obj.cluster().stop()
    console.print(f"stopped {stopped} workers and the local cluster")


@cli.command()
@click.argument("role", type=click.Choice(list(supervisor.DEFAULT_COUNTS)))
def worker(role: str) -> None:
    """Run one worker in the foreground (for containers and other hosts)."""
    from services.worker import run_worker

    sys.exit(run_worker(role))


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MapReduceError as exc:
        # soft_wrap: an error is one line a test or a script can grep, whatever the width
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KafkaException as exc:
        console.print(f"[red]Kafka error:[/red] {escape(exc.args[0].str())}",
                      highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
