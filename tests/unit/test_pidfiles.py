"""A pid file names one process, not a number: after a reboot or a pid wrap the same pid
can belong to an unrelated process, which `up` would count as a worker and `down` would
signal."""

from __future__ import annotations

import os
import subprocess
import sys

from mapreduce_kafka.services.localcluster.processes import read_pid, write_pid


def test_a_pid_file_names_the_process_it_was_written_for(tmp_path):
    pidfile = tmp_path / "worker.pid"
    write_pid(pidfile, os.getpid())
    assert read_pid(pidfile) == os.getpid()


def test_a_live_pid_with_another_start_time_is_not_ours(tmp_path):
    pidfile = tmp_path / "worker.pid"
    write_pid(pidfile, os.getpid())
    pid, started = pidfile.read_text().split()
    pidfile.write_text(f"{pid} {float(started) - 3600}\n")  # same pid, another process
    assert read_pid(pidfile) is None


def test_a_bare_pid_counts_only_if_it_runs_one_of_ours(tmp_path):
    """The old format (a bare pid) is judged by the process's command line."""
    pidfile = tmp_path / "worker.pid"
    pidfile.write_text(f"{os.getpid()}\n")  # pytest: not a worker, the broker or Redis
    assert read_pid(pidfile) is None
    worker_like = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                                    "mapreduce_kafka.services.worker", "mapper"])
    try:
        pidfile.write_text(f"{worker_like.pid}\n")
        assert read_pid(pidfile) == worker_like.pid
    finally:
        worker_like.kill()
        worker_like.wait()


def test_a_dead_process_is_not_running(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    pidfile = tmp_path / "worker.pid"
    write_pid(pidfile, proc.pid)
    proc.wait()
    assert read_pid(pidfile) is None
