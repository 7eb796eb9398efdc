"""Workers come and go while jobs run; `up` is idempotent and replaces dead workers."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import orjson
import pytest

from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from tests.integration import jobs

pytestmark = pytest.mark.integration


def test_mapper_added_and_one_stopped_mid_run(workers, tmp_path):
    with jobs.paused_mid_stream(workers, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 12),
                                tmp_path / "out", partitions=4) as job:
        extra = supervisor.start(workers, "mapper", 50)
        mappers = [w for w in supervisor.running(workers.home) if w.role == "mapper"]
        victim = next(w for w in mappers if w.pid != extra.pid)
        supervisor.stop(workers.home, victim)  # SIGTERM: finish the batch, leave the group
    jobs.wait(workers, job)
    jobs.assert_matches_sequential(job)
    assert not any(w.pid == victim.pid for w in supervisor.running(workers.home))


def test_at_least_once_is_exact_across_the_rebalances_of_a_job_start(workers, tmp_path):
    """An at-least-once job counts a replayed frame again, so a rebalance with nothing
    failed must replay nothing: a revoked partition's outputs are flushed and its offsets
    committed before it moves. Four mappers join the new pipeline's group one after the
    other, each join revoking partitions from the mappers already in; their deliveries are
    held back (linger.ms 500), so every revocation finds outputs not yet acknowledged.
    (Without the flush, the next owner re-mapped those splits and words were counted
    twice.)"""
    held_back = workers.with_(kafka_extra={**workers.kafka_extra, "linger.ms": "500"})
    supervisor.scale(workers, {"mapper": 0})
    supervisor.scale(held_back, {"mapper": 4})
    try:
        job = jobs.submit(workers, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 6),
                          tmp_path / "out", partitions=4, guarantee="at-least-once")
        jobs.wait(workers, job)
    finally:
        supervisor.scale(workers, {"mapper": 0})  # the fixture starts them again, not held back
    jobs.assert_matches_sequential(job)
    revoked = [line for path in (workers.home / "logs").glob("mapper-*.log")
               for line in path.read_text().splitlines()
               if '"partitions revoked"' in line and job.pipeline_id in line]
    assert revoked, "no mapper gave up a partition of the job: the test tested nothing"


def test_up_replaces_a_dead_worker(workers):
    before = [w for w in supervisor.running(workers.home) if w.role == "reducer"]
    os.kill(before[0].pid, signal.SIGKILL)
    wait_for(lambda: all(w.pid != before[0].pid for w in supervisor.running(workers.home)),
             10, "the killed worker to be gone")
    after = supervisor.scale(workers, supervisor.DEFAULT_COUNTS)
    reducers = [w for w in after if w.role == "reducer"]
    assert len(reducers) == supervisor.DEFAULT_COUNTS["reducer"]
    assert before[0].pid not in {w.pid for w in reducers}
    assert supervisor.scale(workers, supervisor.DEFAULT_COUNTS) == after  # idempotent


def test_shufflers_over_their_memory_budget_spill_merge_and_clean_up(workers, tmp_path):
    """With a 1 MB budget every shuffler spills several sorted runs to disk and merges them
    at emission; the result still equals the sequential run and no run file is left."""
    supervisor.scale(workers, {"shuffler": 0})
    tight = workers.with_(shuffle_memory_mb=1)
    supervisor.scale(tight, {"shuffler": 2})
    # Small input splits: more frames, so more combined groups to shuffle (with 1 MiB
    # splits this corpus's small vocabulary combines to less than the budget).
    job = jobs.submit(workers.with_(split_bytes=128 * 1024), jobs.WORDCOUNT,
                      make_corpus(tmp_path / "in", 8), tmp_path / "out")
    jobs.wait(workers, job)
    jobs.assert_matches_sequential(job)
    logs = "".join((workers.home / "logs" / f"shuffler-{i}.log").read_text() for i in (0, 1))
    assert logs.count('"spilled to disk"') >= 4
    emitted = [line for line in logs.splitlines()
               if job.pipeline_id in line and '"shuffle partition emitted"' in line]
    assert any('"spilled_runs": 0' not in line for line in emitted)
    assert not [p for p in (workers.home / "spill").rglob("*") if p.is_file()]
    supervisor.scale(workers, {"shuffler": 0})  # the fixture restarts them with the default


def test_a_sink_over_its_memory_budget_spills_and_writes_sorted_exact_parts(workers, tmp_path):
    """With a 1 MB budget the sink spills the results it holds to sorted runs and merges
    them into the part files: same result, parts still sorted, no run file left."""
    supervisor.scale(workers, {"sink": 0})
    supervisor.scale(workers.with_(sink_memory_mb=1), {"sink": 1})
    job = jobs.submit(workers, jobs.INVERTED_INDEX, [make_jsonl(tmp_path / "docs.jsonl")],
                      tmp_path / "out", fmt="jsonl", partitions=2)
    jobs.wait(workers, job)
    jobs.assert_matches_sequential(job)
    log = (workers.home / "logs" / "sink-0.log").read_text()
    assert sum(job.pipeline_id in line and '"spilled to disk"' in line
               for line in log.splitlines()) >= 2
    for part in (tmp_path / "out").glob("part-*"):
        keys = [orjson.loads(line)[0] for line in part.read_bytes().splitlines()]
        assert keys == sorted(keys)
    assert not [p for p in (workers.home / "spill").rglob("*") if p.is_file()]
    supervisor.scale(workers, {"sink": 0})  # the fixture restarts it with the default


def make_jsonl(path: Path, docs: int = 6000) -> Path:
    """Documents with many distinct words: an inverted index with big results."""
    with open(path, "wb") as f:
        for doc in range(docs):
            words = " ".join(f"w{(doc * 7 + i) % 20011}" for i in range(40))
            f.write(orjson.dumps({"doc": f"d{doc}", "text": words}) + b"\n")
    return path


def test_a_worker_started_before_its_cluster_waits_in_one_line_a_try(tmp_path):
    """In containers the workers start with Kafka and Redis, not after them: until they
    answer, each try is one warning naming what is missing, not a traceback."""
    import subprocess
    import sys

    from mapreduce_kafka.services.roles import WORKER_MODULE
    from mapreduce_kafka.services.testing.ports import free_port

    env = {**os.environ, "MAPREDUCE_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
           "MAPREDUCE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
           "MAPREDUCE_INSECURE_SPECS": "1", "MAPREDUCE_HOME": str(tmp_path)}
    worker = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, "mapper"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert worker.stdout is not None
        while sum("restarting worker" in line for line in lines) < 2:
            line = worker.stdout.readline()
            assert line, f"the worker exited: {''.join(lines)}"
            lines.append(line)
    finally:
        worker.kill()
        worker.wait()
    waiting = [orjson.loads(line) for line in lines if "waiting for the cluster" in line]
    assert len(waiting) == 2, "".join(lines)
    assert "cannot reach Redis" in waiting[0]["reason"]
    assert not any("Traceback" in line or "exception" in line for line in lines), lines
