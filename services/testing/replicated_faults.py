"""Faults of the replicated local cluster (`LocalCluster(brokers=3)`), for the bounded suite
(tests/replicated) and the fault harness (benchmarks/faults.py --cluster replicated):

- leader:     SIGKILL the broker that leads most partitions of a pipeline's MAP topic;
- controller: SIGKILL the broker that leads the KRaft quorum (the active controller);
- primary:    SIGKILL the Redis primary;
- rolling:    restart every broker in turn (SIGTERM, start, wait until it is back in
              sync), as an upgrade would.

The killed node stays down until the caller restores the cluster (`restore`): a job must
end exact while it is gone, not once it is back.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable

from confluent_kafka.admin import AdminClient

from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.services.localcluster.replicated import Node
from mapreduce_kafka.services.testing import nodes
from mapreduce_kafka.shared import redis_client, topics
from mapreduce_kafka.shared.settings import Settings

KINDS = ("leader", "controller", "primary", "rolling")
BROKER_KINDS = ("leader", "controller", "rolling")  # at most one of these at a time


def kill(cluster: LocalCluster, node: Node) -> int:
    pid = cluster.pid(node.name)
    if pid is None:
        raise RuntimeError(f"{node.name} is not running")
    os.kill(pid, signal.SIGKILL)
    if not nodes.wait_exited(pid, 30):
        raise RuntimeError(f"{node.name} pid {pid} still alive 30 s after SIGKILL")
    return pid


def leader_of(cluster: LocalCluster, settings: Settings, pipeline_id: str) -> Node:
    """The broker leading most partitions of the pipeline's MAP topic."""
    topic = topics.map_topic(pipeline_id)
    metadata = AdminClient(settings.admin_config()).list_topics(topic, timeout=10)
    leaders = Counter(p.leader for p in metadata.topics[topic].partitions.values())
    leader = leaders.most_common(1)[0][0]
    return next(n for n in cluster.kafka_nodes if n.node_id == leader)


def primary_of(cluster: LocalCluster, settings: Settings) -> Node:
    address = redis_client.primary_address(redis_client.parse(settings.redis_url))
    assert address is not None, "not a Sentinel URL"
    return next(n for n in cluster.redis_nodes if n.kind == "redis" and n.port == address[1])


def kill_leader(cluster: LocalCluster, settings: Settings, pipeline_id: str) -> str:
    node = leader_of(cluster, settings, pipeline_id)
    kill(cluster, node)
    return f"SIGKILL {node.name}, leader of {topics.map_topic(pipeline_id)}"


def kill_controller(cluster: LocalCluster, settings: Settings, pipeline_id: str) -> str:
    node = nodes.active_controller(cluster)
    if node is None:
        raise RuntimeError("no quorum state found: which broker leads is unknown")
    kill(cluster, node)
    return f"SIGKILL {node.name}, the active controller"


def kill_primary(cluster: LocalCluster, settings: Settings, pipeline_id: str) -> str:
    node = primary_of(cluster, settings)
    kill(cluster, node)
    return f"SIGKILL {node.name}, the Redis primary"


def rolling_restart(cluster: LocalCluster, settings: Settings, pipeline_id: str,
                    between: Callable[[int], None] = lambda restarted: None) -> str:
    """Each broker in turn: a clean stop (its leaderships move first), a start, and a wait
    until every partition is in sync again before the next one goes. `between` runs after
    each broker is back (a test releases its paused job there)."""
    for done, node in enumerate(cluster.kafka_nodes, 1):
        pid = cluster.pid(node.name)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not nodes.wait_exited(pid, 60):
                raise RuntimeError(f"{node.name} did not stop within 60 s of SIGTERM")
        cluster.start()
        nodes.wait_in_sync(cluster, timeout=120)
        between(done)
    return f"rolling restart of {len(cluster.kafka_nodes)} brokers"


FAULTS: dict[str, Callable[[LocalCluster, Settings, str], str]] = {
    "leader": kill_leader, "controller": kill_controller, "primary": kill_primary,
    "rolling": rolling_restart}


def restore(cluster: LocalCluster) -> None:
    """Every node back, every partition in sync: what the next job expects."""
    cluster.start()
    nodes.wait_in_sync(cluster, timeout=180)
