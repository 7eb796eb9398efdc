"""No single point of failure, on a replicated local cluster (three brokers, every topic at
replication factor 3 with min.insync.replicas=2, Redis with two replicas behind three
Sentinels): a job ends with the exact sequential result while the leader of its partitions,
the active controller or the Redis primary is killed mid-job and stays down until the job
has ended, and while every broker is restarted in turn.

"Mid-job" is made certain: the job's source stops halfway through its input until the
fault has landed (jobs.paused_mid_stream)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.services.status.cluster_health import cluster_health
from mapreduce_kafka.services.testing import replicated_faults as faults
from mapreduce_kafka.services.testing.clusters import replicated_cluster, started_with_pool
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.shared import redis_client, topics
from mapreduce_kafka.shared.store import Store
from tests.integration import jobs

pytestmark = [pytest.mark.integration, pytest.mark.replicated]
JOB_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def replicated(tmp_path_factory) -> Iterator[tuple[LocalCluster, object]]:
    home = tmp_path_factory.mktemp("replicated-home")
    cluster = replicated_cluster(home)
    with started_with_pool(cluster, timeout=180) as settings:
        yield cluster, settings


@pytest.fixture
def healthy(replicated) -> Iterator[tuple[LocalCluster, object]]:
    """The cluster whole and in sync before and after each test."""
    cluster, settings = replicated
    faults.restore(cluster)
    supervisor.scale(settings, supervisor.DEFAULT_COUNTS)
    yield cluster, settings
    faults.restore(cluster)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("replicated-input"), 4)


def test_every_topic_is_replicated_and_writes_wait_for_a_replica(healthy, tmp_path):
    cluster, settings = healthy
    job = jobs.submit(settings, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 0.2),
                      tmp_path / "out")
    jobs.wait(settings, job, timeout=JOB_TIMEOUT_S)
    admin = AdminClient(settings.admin_config())
    metadata = admin.list_topics(timeout=10)
    for name in (topics.SOURCE, topics.SHUFFLE, topics.OUTPUT, topics.PIPELINES):
        assert all(len(p.replicas) == 3 for p in metadata.topics[name].partitions.values())
    resource = ConfigResource("topic", topics.SHUFFLE)
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["min.insync.replicas"].value == "2"
    assert Store(settings.redis_url).target.wait_replicas == 1
    health = cluster_health(settings, Store(settings.redis_url))
    assert [b["state"] for b in health["kafka"]["brokers"]] == ["up"] * 3
    assert health["kafka"]["partitions"]["under_replicated"] == 0
    assert health["redis"]["replicas"] == 2


@pytest.mark.parametrize("kind", ["leader", "controller", "primary"])
def test_a_job_ends_exact_with_a_node_killed_mid_job_and_left_down(healthy, corpus, tmp_path,
                                                                   kind):
    cluster, settings = healthy
    primary_before = faults.primary_of(cluster, settings)
    with jobs.paused_mid_stream(settings, jobs.WORDCOUNT, corpus, tmp_path / "out") as job:
        what = faults.FAULTS[kind](cluster, settings, job.pipeline_id)
        print(what)
    status = jobs.wait(settings, job, timeout=JOB_TIMEOUT_S)
    assert status["state"] == "done", status
    jobs.assert_matches_sequential(job)
    down = [n.name for n in cluster.nodes if cluster.pid(n.name) is None]
    assert len(down) == 1, f"the killed node was restarted before the job ended: {down}"
    if kind == "primary":
        address = redis_client.primary_address(redis_client.parse(settings.redis_url))
        assert address is not None and address[1] != primary_before.port, "no failover"


def test_a_job_ends_exact_through_a_rolling_restart_of_every_broker(healthy, corpus, tmp_path):
    cluster, settings = healthy
    with jobs.paused_mid_stream(settings, jobs.WORDCOUNT, corpus, tmp_path / "out",
                                still_running=False) as job:
        faults.rolling_restart(cluster, settings, job.pipeline_id)
    status = jobs.wait(settings, job, timeout=JOB_TIMEOUT_S)
    assert status["state"] == "done", status
    jobs.assert_matches_sequential(job)
