"""Every resubscription strategy keeps the results exact: two pipelines at once and a third
announced mid-run, checked to be taken up while the first job is still mapping. The same
with a mapper SIGKILLed mid-run is marked `faults` (also run by `make test-faults`)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator

import pytest

from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared.resubscribe_strategies import STRATEGIES
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.store import Store
from tests import REPO
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


def test_pipelines_past_a_workers_consumer_bound_wait_for_a_slot(pool: Settings,
                                                                  tmp_path) -> None:
    """group-per-pipeline with room for one consumer per worker: the second pipeline waits
    until the first ends, then runs; both exact."""
    bound = pool.with_(resubscribe="group-per-pipeline", pipeline_consumers=1)
    for worker in supervisor.running(pool.home):
        if worker.role in ("mapper", "reducer"):
            supervisor.stop(pool.home, worker)
    supervisor.scale(bound, supervisor.DEFAULT_COUNTS)
    try:
        with jobs.paused_mid_stream(bound, jobs.WORDCOUNT, make_corpus(tmp_path / "first", 3),
                                    tmp_path / "first-out") as first:
            second = jobs.submit(bound, jobs.WORDCOUNT, make_corpus(tmp_path / "second", 0.3),
                                 tmp_path / "second-out")
            topic = f"MAP---{second.pipeline_id}"
            wait_for(lambda: {i for i in (0, 1) if "waiting" in _consumer_states(pool, i, topic)}
                     == {0, 1}, 60, "both mappers to put the second pipeline in waiting")
            assert Store(bound.redis_url).ended_counts(second.pipeline_id)["mapped"] == 0
            assert not any("joining" in _consumer_states(pool, i, topic) for i in (0, 1))
        jobs.wait(bound, first)
        jobs.wait(bound, second)
        jobs.assert_matches_sequential(first)
        jobs.assert_matches_sequential(second)
        assert all("consuming" in _consumer_states(pool, i, topic) for i in (0, 1))
    finally:
        for worker in supervisor.running(pool.home):
            if worker.role in ("mapper", "reducer"):
                supervisor.stop(pool.home, worker)
        supervisor.scale(pool, supervisor.DEFAULT_COUNTS)


def _consumer_states(settings: Settings, index: int, topic: str) -> list[str]:
    """The states a mapper's consumer for `topic` went through, from its log."""
    states = []
    for line in (settings.home / "logs" / f"mapper-{index}.log").read_text().splitlines():
        if line.startswith("{") and '"pipeline consumer"' in line:
            event = json.loads(line)
            if event.get("topic") == topic:
                states.append(event["target"])
    return states
