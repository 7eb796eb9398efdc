"""Workers come and go while jobs run; `up` is idempotent and replaces dead workers."""

from __future__ import annotations

import os
import signal

import pytest

from services import supervisor
from shared.store import Store
from tests.conftest import make_corpus, wait_for
from tests.integration import jobs

pytestmark = pytest.mark.integration


def test_mapper_added_and_one_stopped_mid_run(workers, tmp_path):
    store = Store(workers.redis_url)
    job = jobs.submit(workers, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 12),
                      tmp_path / "out", partitions=4)
    wait_for(lambda: store.ended_counts(job.pipeline_id)["mapped"] > 0, 60, "mapping to start")
    extra = supervisor.start(workers, "mapper", 50)
    mappers = [w for w in supervisor.running(workers.home) if w.role == "mapper"]
    victim = next(w for w in mappers if w.pid != extra.pid)
    supervisor.stop(workers.home, victim)  # SIGTERM: finish the batch, leave the group
    jobs.wait(workers, job)
    jobs.assert_matches_sequential(job)
    assert not any(w.pid == victim.pid for w in supervisor.running(workers.home))


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
