"""Entry point of a worker process: `python -m mapreduce_kafka.services.worker ROLE` (or
`mapreduce worker ROLE`).

Configures logging once, builds the runtime, runs the role's loop until SIGTERM, and logs a
one-line summary at shutdown. On any unexpected error (broker or Redis gone, a failed
delivery, a resubscription that gave up) the worker re-executes itself after a backoff:
same pid, fresh clients, all state rebuilt from committed offsets and Redis. Continuing
in-process after a failed flush could commit input whose output was lost; a restart cannot.
"""

from __future__ import annotations

import os
import sys
import time

import redis
import structlog

from mapreduce_kafka.services.roles import ROLE_NAMES, WORKER_MODULE, build
from mapreduce_kafka.services.runtime import failures, lifecycle, tasks
from mapreduce_kafka.services.runtime.process import ENV_RESTARTS, Runtime
from mapreduce_kafka.shared import crashpoints, retry
from mapreduce_kafka.shared.errors import ConfigError, ConnectionFailed
from mapreduce_kafka.shared.logging import configure
from mapreduce_kafka.shared.redis_client import redacted
from mapreduce_kafka.shared.setting_sources import resolve

MAX_RESTART_BACKOFF_S = 10.0  # a broker outage is polled this often once backoff saturates


def restart_in_place(role: str, restarts: int, log: structlog.typing.FilteringBoundLogger,
                     stop_requested: bool, backoff: bool = True) -> int:
    if stop_requested:
        return 1
    delay = min(MAX_RESTART_BACKOFF_S, retry.step_backoff_seconds(restarts + 2)) if backoff else 0
    log.warning("restarting worker", restarts=restarts + 1, backoff_s=round(delay, 2))
    time.sleep(delay)
    os.environ[ENV_RESTARTS] = str(restarts + 1)
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", WORKER_MODULE, role])
    return 1  # not reached


def fail_refused(rt: Runtime, pipelines: frozenset[str], error: str) -> None:
    """Pipelines whose output the broker refused for good: a restart would replay it and be
    refused again, forever. Fail them (with a fresh producer: the old one's failure is
    sticky), so that the replay skips them."""
    for pipeline_id in sorted(pipelines):
        lifecycle.finish(rt.store, None, pipeline_id, "failed",
                         f"the broker refused its output: {error}")


def charge_failed_task(rt: Runtime, exc: BaseException) -> None:
    """The worker goes down in a pipeline's task: charge that pipeline, unless it is an
    outage (services/runtime/tasks.py). Best effort: with Redis gone, nothing is charged."""
    task = rt.tasks.current
    if task is None or not failures.charged(exc):
        return
    text = str(exc).splitlines()[0] if str(exc) else ""
    try:
        tasks.charge(rt.store, task, f"{rt.role} failed: {type(exc).__name__}: {text}",
                     rt.settings.max_task_failures)
    except redis.RedisError as charge_error:
        rt.log.error("could not charge the pipeline", pipeline=task.pipeline_id,
                     error=str(charge_error))


def watch_tasks(rt: Runtime, role: str, restarts: int,
                log: structlog.typing.FilteringBoundLogger) -> tasks.Watchdog:
    """A task stuck past its limit (user code that never returns) holds the worker's one
    serving thread, and with it every pipeline the worker serves: charge its pipeline and
    restart the process, from the watchdog's thread."""
    def overrun(task: tasks.Task) -> None:
        log.error("task ran over its time limit: restarting", pipeline=task.pipeline_id,
                  at=task.where, limit_s=task.limit_s)
        try:
            tasks.charge(rt.store, task, f"{role}: a task ran over its time limit of "
                                         f"{task.limit_s:g} s", rt.settings.max_task_failures)
        except redis.RedisError as exc:
            log.error("could not charge the pipeline", pipeline=task.pipeline_id, error=str(exc))
        restart_in_place(role, restarts, log, rt.stopping, backoff=False)
        os._exit(1)  # stopping: the serving thread is stuck, so end here

    watchdog = tasks.Watchdog(rt.tasks, overrun)
    watchdog.start()
    return watchdog


def run_worker(role: str) -> int:
    configure(service="mapreduce")
    log = structlog.get_logger("worker")
    if role not in ROLE_NAMES:
        log.error("unknown role", role=role, roles=ROLE_NAMES)
        return 2
    try:
        settings = resolve()
        if settings is not None:
            settings.spec_policy()  # no signing key: say so once, do not restart forever
    except ConfigError as exc:
        log.error("cannot start worker", reason=str(exc))
        return 2
    if settings is None:
        log.error("no cluster configured: set MAPREDUCE_BOOTSTRAP_SERVERS and "
                  "MAPREDUCE_REDIS_URL, or start one with `mapreduce up`")
        return 2
    restarts = int(os.environ.get(ENV_RESTARTS, "0"))
    started = time.monotonic()
    rt = None
    try:
        rt = Runtime(role, settings)
        rt.install_signal_handlers()
        rt.heartbeat(force=True)
        watch_tasks(rt, role, restarts, log)
        log.info("worker started", bootstrap=settings.bootstrap_servers,
                 redis=redacted(settings.redis_url), restarts=restarts)
        if crashpoints.armable():
            log.warning("crash points can be armed in this worker (a test setting)",
                        file=os.environ[crashpoints.ENV_FILE])
        worker = build(role, rt)
        worker.run()
        rt.close()
    except BaseException as exc:  # any failure: start again from what is committed
        if isinstance(exc, KeyboardInterrupt | SystemExit) and rt is None:
            raise  # not started: nothing to restart or charge
        if rt is None and isinstance(exc, ConnectionFailed):
            # not up yet (a cluster starting beside its workers): one line, then again
            log.warning("waiting for the cluster", reason=str(exc))
        else:
            log.exception("worker failed")
        if rt is not None:
            charge_failed_task(rt, exc)
        refused: frozenset[str] = getattr(exc, "pipelines", frozenset())
        if refused and rt is not None:
            fail_refused(rt, refused, str(exc))
        return restart_in_place(role, restarts, log, rt is not None and rt.stopping)
    log.info("worker stopped", uptime_s=round(time.monotonic() - started, 1),
             restarts=restarts,
             processed=getattr(worker, "processed", getattr(worker, "forwarded", None)))
    return 0


if __name__ == "__main__":
    sys.exit(run_worker(sys.argv[1] if len(sys.argv) > 1 else ""))
