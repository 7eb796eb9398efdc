"""Local clusters of a suite's or a benchmark's own: on free ports, started, and stopped
with their workers whatever happens."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.services.testing.ports import free_port, free_port_block
from mapreduce_kafka.shared.settings import Settings


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


@contextlib.contextmanager
def local_cluster(prefix: str, home: Path | None = None, replicated: bool = False
                  ) -> Iterator[tuple[Path, Settings, LocalCluster]]:
    """One broker and one Redis; or, `replicated`, three brokers and Redis with Sentinel;
    in a temporary home named by `prefix` unless `home` is given. No workers are started,
    but any the caller starts are stopped with the cluster."""
    home = home or Path(tempfile.mkdtemp(prefix=prefix))
    cluster = (replicated_cluster(home) if replicated else
               LocalCluster(home, kafka_port=free_port(), controller_port=free_port(),
                            redis_port=free_port()))
    settings = cluster.start(timeout=180)
    try:
        yield home, settings, cluster
    finally:
        supervisor.stop_all(home)
        cluster.stop()
