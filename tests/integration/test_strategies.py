"""Every resubscription strategy keeps the results exact: two pipelines at once and a third
announced mid-run, checked to be taken up while the first job is still mapping. The same
with a mapper SIGKILLed mid-run is marked `faults` (also run by `make test-faults`)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from services import supervisor
from shared.config import STRATEGIES, Settings
from tests.conftest import REPO, make_corpus, wait_for
from tests.integration import jobs

pytestmark = pytest.mark.integration

@pytest.fixture(params=STRATEGIES)
def strategy_pool(request, pool: Settings) -> Iterator[Settings]:
    settings = pool.with_(resubscribe=request.param)
    for worker in supervisor.running(pool.home):
        if worker.role in ("mapper", "reducer"):
            supervisor.stop(pool.home, worker)
    supervisor.scale(settings, supervisor.DEFAULT_COUNTS)
    yield settings
    for worker in supervisor.running(pool.home):
        if worker.role in ("mapper", "reducer"):
            supervisor.stop(pool.home, worker)
    supervisor.scale(pool, supervisor.DEFAULT_COUNTS)


def test_results_exact_under_strategy(strategy_pool: Settings, tmp_path) -> None:
    run_jobs(strategy_pool, tmp_path, kill_a_mapper=False)


@pytest.mark.faults
def test_results_exact_under_strategy_with_a_mapper_killed(strategy_pool: Settings,
                                                          tmp_path) -> None:
    run_jobs(strategy_pool, tmp_path, kill_a_mapper=True)


def run_jobs(settings: Settings, tmp_path, kill_a_mapper: bool) -> None:
    other = jobs.submit(settings, jobs.INVERTED_INDEX, [REPO / "pipelines/samples/docs.jsonl"],
                        tmp_path / "ii-out", fmt="jsonl", partitions=2)
    with jobs.paused_mid_stream(settings, jobs.WORDCOUNT, make_corpus(tmp_path / "big", 10),
                                tmp_path / "big-out") as big:
        late = jobs.submit(settings, jobs.WORDCOUNT, make_corpus(tmp_path / "late", 0.3),
                           tmp_path / "late-out")
        if kill_a_mapper:
            victim = next(w for w in supervisor.running(settings.home) if w.role == "mapper")
            os.kill(victim.pid, signal.SIGKILL)
            wait_for(lambda: all(w.pid != victim.pid
                                 for w in supervisor.running(settings.home)),
                     10, "the killed mapper to be gone")  # else scale() still counts it alive
            supervisor.scale(settings, supervisor.DEFAULT_COUNTS)  # replaced, same strategy
        jobs.wait(settings, late)  # taken up, run and finished while `big` is mid-stream
    for job in (late, other, big):
        jobs.wait(settings, job)
        jobs.assert_matches_sequential(job)
