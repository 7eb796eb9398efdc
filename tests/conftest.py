"""Fixtures shared by the integration and fault tiers: one real Kafka broker and one real
Redis per test session (or an existing cluster named in MAPREDUCE_TEST_BOOTSTRAP_SERVERS and
MAPREDUCE_TEST_REDIS_URL), and a pool of worker processes. The helpers tests and benchmarks
share are in mapreduce_kafka.services.testing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.services.testing.ports import free_port
from mapreduce_kafka.shared.settings import Settings


@pytest.fixture(scope="session")
def infrastructure(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Settings, LocalCluster | None]]:
    """The cluster's settings, and the LocalCluster when the tests started it themselves
    (fault tests restart its broker and Redis; they cannot do that to a foreign cluster)."""
    home = tmp_path_factory.mktemp("mapreduce-home")
    bootstrap = os.environ.get("MAPREDUCE_TEST_BOOTSTRAP_SERVERS")
    redis_url = os.environ.get("MAPREDUCE_TEST_REDIS_URL")
    if bootstrap and redis_url:
        yield Settings(bootstrap, redis_url, home=home), None
        supervisor.stop_all(home)
        return
    # 6 s, the brokers' minimum: a killed worker's partitions move sooner, and the fault
    # and crash-point suites, which kill hundreds of workers, spend less time waiting.
    local = LocalCluster(home, kafka_port=free_port(), controller_port=free_port(),
                         redis_port=free_port(), session_timeout_ms=6000)
    settings = local.start()
    try:
        yield settings, local
    finally:
        supervisor.stop_all(home)
        local.stop()


@pytest.fixture(scope="session")
def cluster(infrastructure: tuple[Settings, LocalCluster | None]) -> Settings:
    return infrastructure[0]


@pytest.fixture(scope="session")
def pool(cluster: Settings) -> Settings:
    """The default worker pool, started once."""
    supervisor.scale(cluster, supervisor.DEFAULT_COUNTS)
    return cluster


@pytest.fixture
def workers(pool: Settings) -> Iterator[Settings]:
    """The default pool, brought back to its default counts after the test (tests that add,
    stop or kill workers use this one)."""
    supervisor.scale(pool, supervisor.DEFAULT_COUNTS)
    yield pool
    supervisor.scale(pool, supervisor.DEFAULT_COUNTS)
