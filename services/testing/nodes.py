"""A local cluster's nodes as the fault tests see them: waiting until a killed one has
exited, which broker leads the KRaft quorum, and waiting until every partition is back in
sync after a broker returns."""

from __future__ import annotations

import json
import time

from confluent_kafka import KafkaException

from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.services.localcluster.processes import alive
from mapreduce_kafka.services.localcluster.replicated import Node
from mapreduce_kafka.services.status.cluster_health import partition_health
from mapreduce_kafka.shared import kafka, retry
from mapreduce_kafka.shared.errors import ConnectionFailed


def wait_exited(pid: int, timeout: float) -> bool:
    """Wait until a process we signalled has exited; False if it is still there."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)  # waiting for another process to exit: no event to wait on
    return True


def active_controller(cluster: LocalCluster) -> Node | None:
    """The broker that leads the KRaft quorum now: the leader named in the quorum state
    with the newest epoch among the nodes' metadata logs (each node writes its view there
    at every election)."""
    views = []
    for node in cluster.kafka_nodes:
        try:
            state = json.loads((cluster.kafka_data(node) / "__cluster_metadata-0"
                                / "quorum-state").read_text())
        except (OSError, ValueError):
            continue
        views.append((int(state.get("leaderEpoch", -1)), int(state.get("leaderId", -1))))
    if not views:
        return None
    leader = max(views)[1]
    return next((n for n in cluster.kafka_nodes if n.node_id == leader), None)


def wait_in_sync(cluster: LocalCluster, timeout: float = 120.0) -> None:
    """Wait until every broker is up and no partition lacks a leader or an in-sync replica
    (a broker just restarted catches up first)."""
    admin = kafka.admin(cluster.settings(), quiet=True)

    def in_sync() -> None:
        metadata = admin.list_topics(timeout=5)
        health = partition_health(metadata)
        if len(metadata.brokers) < cluster.brokers or health["under_replicated"] or \
                health["offline"]:
            raise ConnectionFailed(f"{len(metadata.brokers)} of {cluster.brokers} brokers "
                                   f"up, {health['under_replicated']} partitions "
                                   f"under-replicated, {health['offline']} offline")

    retry.until_deadline("brokers in sync", in_sync, seconds=timeout,
                         on=(ConnectionFailed, KafkaException))
