"""The replicated local cluster (`mapreduce up --brokers 3`): what differs from one broker.

Kafka: N combined broker+controller nodes, all of them voters of a static KRaft quorum, every
topic at replication factor min(3, N) with min.insync.replicas one less, unclean leader
election off. Node i listens on kafka_port + 2(i-1) and its controller on
controller_port + 2(i-1), so the defaults 19092/19093 go on as 19094/19095, 19096/19097.

Redis: a primary and REDIS_REPLICAS replicas on redis_port, redis_port+1, ..., watched by
SENTINELS Sentinels on sentinel_port, sentinel_port+1, ... (quorum 2), which promote a replica
when the primary is down for SENTINEL_DOWN_AFTER_MS. Clients find the primary through the
Sentinels (shared/redis_client.py) and a coordination write counts only once a replica holds
it (WAIT): what the primary acknowledged survives its loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SERVICE = "mapreduce"  # the name the Sentinels know the primary by
REDIS_REPLICAS = 2  # two, so that WAIT 1 still succeeds while one replica is down
SENTINELS = 3
SENTINEL_QUORUM = 2
SENTINEL_DOWN_AFTER_MS = 2_000
# KRaft: a broker that misses heartbeats this long is fenced and its partitions get new
# leaders. Kafka's default is 9 s; on loopback 4 s is safe and halves a failover.
BROKER_SESSION_TIMEOUT_MS = 4_000
BROKER_HEARTBEAT_MS = 1_000


@dataclass(frozen=True)
class Node:
    name: str  # also its pid, log and config file names under the cluster directory
    kind: str  # "kafka", "redis" or "sentinel"
    port: int
    controller_port: int = 0  # kafka nodes
    node_id: int = 0  # kafka nodes


def kafka_nodes(brokers: int, kafka_port: int, controller_port: int) -> list[Node]:
    if brokers == 1:
        return [Node("kafka", "kafka", kafka_port, controller_port, 1)]
    return [Node(f"kafka-{i}", "kafka", kafka_port + 2 * (i - 1),
                 controller_port + 2 * (i - 1), i) for i in range(1, brokers + 1)]


def redis_nodes(replicated: bool, redis_port: int, sentinel_port: int) -> list[Node]:
    if not replicated:
        return [Node("redis", "redis", redis_port)]
    data = [Node(f"redis-{i}", "redis", redis_port + i - 1) for i in range(1, REDIS_REPLICAS + 2)]
    sentinels = [Node(f"sentinel-{i}", "sentinel", sentinel_port + i - 1)
                 for i in range(1, SENTINELS + 1)]
    return data + sentinels


def voters(host: str, nodes: list[Node]) -> str:
    return ",".join(f"{n.node_id}@{host}:{n.controller_port}" for n in nodes)


def kafka_properties(host: str, node: Node, nodes: list[Node]) -> str:
    """The lines that differ from one broker: identity, quorum, replication."""
    factor = min(3, len(nodes))
    return "\n".join([
        f"node.id={node.node_id}",
        f"controller.quorum.voters={voters(host, nodes)}",
        f"default.replication.factor={factor}",
        f"min.insync.replicas={factor - 1}",
        f"offsets.topic.replication.factor={factor}",
        f"transaction.state.log.replication.factor={factor}",
        f"transaction.state.log.min.isr={factor - 1}",
        f"share.coordinator.state.topic.replication.factor={factor}",
        f"share.coordinator.state.topic.min.isr={factor - 1}",
        "unclean.leader.election.enable=false",
        f"broker.session.timeout.ms={BROKER_SESSION_TIMEOUT_MS}",
        f"broker.heartbeat.interval.ms={BROKER_HEARTBEAT_MS}",
    ]) + "\n"


def redis_replica_lines(host: str, primary_port: int, is_primary: bool) -> str:
    """A data node's extra lines. Every node refuses writes while no replica is in touch
    (it applies only while the node is the primary): a primary cut off from the rest
    stops taking writes that a failover elsewhere would lose."""
    lines = ["min-replicas-to-write 1", "min-replicas-max-lag 10"]
    if not is_primary:
        lines.append(f"replicaof {host} {primary_port}")
    return "\n".join(lines) + "\n"


def sentinel_conf(host: str, node: Node, primary_port: int, data: Path) -> str:
    # Sentinel rewrites this file as it learns (the current primary, the other Sentinels),
    # so a restarted Sentinel rejoins with what it knew.
    return "\n".join([
        f"bind {host}",
        f"port {node.port}",
        f"dir {data}",
        "daemonize no",
        "protected-mode no",
        f"sentinel monitor {SERVICE} {host} {primary_port} {SENTINEL_QUORUM}",
        f"sentinel down-after-milliseconds {SERVICE} {SENTINEL_DOWN_AFTER_MS}",
        f"sentinel failover-timeout {SERVICE} 10000",
        f"sentinel parallel-syncs {SERVICE} 1",
    ]) + "\n"


def sentinel_url(host: str, nodes: list[Node]) -> str:
    sentinels = ",".join(f"{host}:{n.port}" for n in nodes if n.kind == "sentinel")
    return f"redis+sentinel://{sentinels}/{SERVICE}/0"
