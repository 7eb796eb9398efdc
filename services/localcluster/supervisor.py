"""Local worker processes: start, count, stop. One pid file per worker under
$MAPREDUCE_HOME/workers; a worker that died is simply missing and `up` starts it again."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from mapreduce_kafka.services.localcluster.processes import read_pid, terminate, write_pid
from mapreduce_kafka.services.roles import ROLE_NAMES, ROLES, WORKER_MODULE
from mapreduce_kafka.shared.cluster_file import read_local_cluster
from mapreduce_kafka.shared.logging import ENV_LOG_FILE
from mapreduce_kafka.shared.settings import Settings

log = structlog.get_logger("supervisor")

DEFAULT_COUNTS = {role.name: role.default_count for role in ROLES}  # the default local pool
STOP_GRACE_S = 20.0  # a worker finishes its batch and leaves its group within this


@dataclass(frozen=True)
class WorkerProcess:
    role: str
    index: int
    pid: int


def _dir(home: Path) -> Path:
    return home / "workers"


def running(home: Path) -> list[WorkerProcess]:
    found = []
    for pidfile in sorted(_dir(home).glob("*.pid")):
        role, index = pidfile.stem.rsplit("-", 1)
        pid = read_pid(pidfile)
        if pid is None:
            pidfile.unlink(missing_ok=True)  # it died: forget it, `up` will replace it
        else:
            found.append(WorkerProcess(role, int(index), pid))
    return found


def start(settings: Settings, role: str, index: int,
          launcher: Sequence[str] = ()) -> WorkerProcess:
    """launcher: a command prefix the worker runs under (the multi-host lab puts workers in
    a network namespace with it)."""
    directory = _dir(settings.home)
    directory.mkdir(parents=True, exist_ok=True)
    (settings.home / "logs").mkdir(exist_ok=True)
    logfile = settings.home / "logs" / f"{role}-{index}.log"
    env = {**os.environ, **settings.env(), **role_principal(settings, role),
           ENV_LOG_FILE: str(logfile)}  # the worker's events, rotated by size
    # what is not an event (a crash before logging is set up, the interpreter's own
    # messages) goes to a file beside it
    with open(logfile.with_suffix(".out"), "ab") as out:
        proc = subprocess.Popen([*launcher, sys.executable, "-m", WORKER_MODULE, role], env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    write_pid(directory / f"{role}-{index}.pid", proc.pid)
    log.info("worker started", role=role, index=index, pid=proc.pid, log=str(logfile))
    return WorkerProcess(role, index, proc.pid)


def role_principal(settings: Settings, role: str) -> dict[str, str]:
    """A secured local cluster's principal for the role (localcluster/secure.py): the
    worker authenticates as itself, with only its role's ACLs."""
    if not settings.local:
        return {}
    recorded = read_local_cluster(settings.home) or {}
    password = recorded.get("principals", {}).get(role)
    if not password:
        return {}
    return {"MAPREDUCE_KAFKA_SASL_USERNAME": role, "MAPREDUCE_KAFKA_SASL_PASSWORD": password}


def scale(settings: Settings, counts: dict[str, int],
          launcher: Sequence[str] = ()) -> list[WorkerProcess]:
    """Bring each named role to exactly its count: start what is missing (including workers
    that died), stop the extras."""
    alive = running(settings.home)
    for role, wanted in counts.items():
        if role not in ROLE_NAMES:
            raise ValueError(f"unknown role {role!r}")
        mine = sorted((w for w in alive if w.role == role), key=lambda w: w.index)
        for extra in mine[wanted:]:
            stop(settings.home, extra)
        used = {w.index for w in mine[:wanted]}
        free = (i for i in range(10_000) if i not in used)
        for _ in range(wanted - len(mine)):
            start(settings, role, next(free), launcher)
    return running(settings.home)


def stop(home: Path, worker: WorkerProcess, grace: float = STOP_GRACE_S) -> None:
    terminate(worker.pid, grace)
    (_dir(home) / f"{worker.role}-{worker.index}.pid").unlink(missing_ok=True)


def stop_all(home: Path) -> int:
    workers = running(home)
    for worker in workers:  # signal all first, so they leave their groups in parallel
        try:
            os.kill(worker.pid, 15)
        except ProcessLookupError:
            continue
    for worker in workers:
        stop(home, worker)
    return len(workers)
