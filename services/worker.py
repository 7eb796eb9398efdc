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

import structlog

from mapreduce_kafka.services.roles import ROLE_NAMES, WORKER_MODULE, build
from mapreduce_kafka.services.runtime import lifecycle
from mapreduce_kafka.services.runtime.process import ENV_RESTARTS, Runtime
from mapreduce_kafka.shared import crashpoints, retry
from mapreduce_kafka.shared.errors import ConfigError, ConnectionFailed
from mapreduce_kafka.shared.logging import configure
from mapreduce_kafka.shared.redis_client import redacted
from mapreduce_kafka.shared.setting_sources import resolve

MAX_RESTART_BACKOFF_S = 10.0  # a broker outage is polled this often once backoff saturates


def restart_in_place(role: str, restarts: int, log: structlog.typing.FilteringBoundLogger,
                     stop_requested: bool) -> int:
    if stop_requested:
        return 1
    delay = min(MAX_RESTART_BACKOFF_S, retry.step_backoff_seconds(restarts + 2))
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
        log.info("worker started", bootstrap=settings.bootstrap_servers,
                 redis=redacted(settings.redis_url), restarts=restarts)
        if crashpoints.armable():
            log.warning("crash points can be armed in this worker (a test setting)",
                        file=os.environ[crashpoints.ENV_FILE])
        worker = build(role, rt)
        worker.run()
        rt.close()
    except Exception as exc:  # any failure: start again from what is committed
        if rt is None and isinstance(exc, ConnectionFailed):
            # not up yet (a cluster starting beside its workers): one line, then again
            log.warning("waiting for the cluster", reason=str(exc))
        else:
            log.exception("worker failed")
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
