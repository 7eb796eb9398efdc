"""The local cluster's processes seen from outside: pid files that name one process, whether
it still runs, stopping it, and finding the Debian programs it runs. The supervisor uses the
same pid files for the workers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import structlog

from mapreduce_kafka.services.roles import WORKER_MODULE
from mapreduce_kafka.shared.errors import ClusterError

log = structlog.get_logger("cluster")


def debian_program(name: str) -> str:
    """The path of a program Debian's package of the same name installs (redis-server,
    redis-sentinel), or a one-line error saying how to get it."""
    path = shutil.which(name)
    if path is None:
        raise ClusterError(f"{name} not found: install Debian's {name} "
                           f"(apt-get install {name}) or run `make install`")
    return path


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not count)."""
    # Reap it if it is our own dead child; if it is not our child, its parent reaps it.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# What the processes a pid file can name run (a worker, the broker, Redis).
OUR_COMMANDS = (WORKER_MODULE, "kafka.Kafka", "redis-server", "redis-sentinel")


def write_pid(path: Path, pid: int) -> None:
    """A pid file that names one process: its pid and its start time. After a reboot (or
    once pids wrap) the same pid can belong to an unrelated process, which a bare pid would
    have us count as ours, and signal."""
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:  # gone already: a pid file that names no live process
        started = 0.0
    path.write_text(f"{pid} {started!r}\n")


def read_pid(path: Path) -> int | None:
    """The pid a pid file names, if that very process still runs; None otherwise."""
    try:
        words = path.read_text().split()
        pid = int(words[0])
        started = float(words[1]) if len(words) > 1 else None
    except (FileNotFoundError, ValueError, IndexError):
        return None
    if not alive(pid):
        return None
    try:
        process = psutil.Process(pid)
        if started is None:  # written before pid files had start times: judge by command
            command = " ".join(process.cmdline())
            return pid if any(name in command for name in OUR_COMMANDS) else None
        same = abs(process.create_time() - started) < 0.05
    except psutil.Error:
        return None
    return pid if same else None


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)  # waiting for another process to exit: no event to wait on
    log.warning("did not stop in time; killing", pid=pid, timeout=timeout)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
