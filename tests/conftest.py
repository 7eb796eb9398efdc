"""Fixtures shared by the integration and fault tiers: one real Kafka broker and one real
Redis per test session (or an existing cluster named in MAPREDUCE_TEST_BOOTSTRAP_SERVERS and
MAPREDUCE_TEST_REDIS_URL), and a pool of worker processes."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mapreduce_kafka.services import supervisor
from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.shared.config import Settings

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_block(count: int) -> int:
    """A first port such that it and the `count` - 1 after it are free."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65_000:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports")


def replicated_cluster(home: Path) -> LocalCluster:
    """A replicated local cluster (three brokers, Redis with Sentinel) on free ports."""
    kafka_base, redis_base, sentinel_base = (free_port_block(6), free_port_block(3),
                                             free_port_block(3))
    return LocalCluster(home, kafka_port=kafka_base, controller_port=kafka_base + 1,
                        redis_port=redis_base, sentinel_port=sentinel_base,
                        session_timeout_ms=6000, brokers=3)


@contextlib.contextmanager
def started_with_pool(cluster: LocalCluster, timeout: float = 90.0) -> Iterator[Settings]:
    """A cluster of a suite's own, started, with the default worker pool on it; the workers
    and the cluster stopped after, whatever happened."""
    settings = cluster.start(timeout=timeout)
    try:
        supervisor.scale(settings, supervisor.DEFAULT_COUNTS)
        yield settings
    finally:
        supervisor.stop_all(cluster.home)
        cluster.stop()


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


def make_corpus(directory: Path, megabytes: float, files: int = 4) -> list[Path]:
    """Real text (the shipped samples), repeated to size; every repetition adds its own
    words, so the key set grows with the input."""
    directory.mkdir(parents=True, exist_ok=True)
    base = b"".join(p.read_bytes() for p in sorted((REPO / "pipelines/samples/text").iterdir()))
    lines = base.splitlines()
    target = int(megabytes * 1e6)
    paths = [directory / f"input-{i:02d}.txt" for i in range(files)]
    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(open(p, "wb")) for p in paths]
        written = rep = 0
        while written < target:
            chunk = b"\n".join(line + b" rep%d" % (rep % 997) for line in lines) + b"\n"
            handles[rep % files].write(chunk)
            written += len(chunk)
            rep += 1
    return paths


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):  # noqa: ANN001
    """Wait for a condition observed from outside (a job's progress): test-side polling."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
