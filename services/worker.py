"""Entry point of a worker process: `python -m services.worker ROLE` (or `mapreduce worker`).
Configures logging once, builds the runtime, runs the role's loop until SIGTERM, and logs a
one-line summary at shutdown."""

from __future__ import annotations

import sys
import time

import structlog

from shared import config
from shared.errors import MapReduceError
from shared.logging import configure

ROLES = ("dispatcher", "mapper", "shuffler", "reducer", "sink")


def build(role: str, rt: object) -> object:
    from services.dispatcher import Dispatcher
    from services.mapper import Mapper
    from services.reducer import Reducer
    from services.shuffler import Shuffler
    from services.sink import Sink

    classes = {"dispatcher": Dispatcher, "mapper": Mapper, "shuffler": Shuffler,
               "reducer": Reducer, "sink": Sink}
    return classes[role](rt)  # type: ignore[arg-type]


def run_worker(role: str) -> int:
    from services.runtime import Runtime

    configure(service="mapreduce")
    log = structlog.get_logger("worker")
    if role not in ROLES:
        log.error("unknown role", role=role, roles=ROLES)
        return 2
    settings = config.resolve()
    if settings is None:
        log.error("no cluster configured: set MAPREDUCE_BOOTSTRAP_SERVERS and "
                  "MAPREDUCE_REDIS_URL, or start one with `mapreduce up`")
        return 2
    started = time.monotonic()
    try:
        rt = Runtime(role, settings)
    except MapReduceError as exc:
        log.error("cannot start", error=str(exc))
        return 2
    rt.install_signal_handlers()
    rt.heartbeat(force=True)
    log.info("worker started", bootstrap=settings.bootstrap_servers, redis=settings.redis_url)
    worker = build(role, rt)
    worker.run()  # type: ignore[attr-defined]
    rt.close()
    log.info("worker stopped", uptime_s=round(time.monotonic() - started, 1),
             processed=getattr(worker, "processed", getattr(worker, "forwarded", None)))
    return 0


if __name__ == "__main__":
    sys.exit(run_worker(sys.argv[1] if len(sys.argv) > 1 else ""))
