"""What `status` shows of the cluster itself: each broker up or down, partitions with fewer
in-sync replicas than replicas (under-replicated) or without a leader (offline), and which
Redis node is the primary with how many replicas follow it."""

from __future__ import annotations

from typing import Any

import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata

from mapreduce_kafka.shared import kafka, redis_client
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.store import Store


def broker_rows(bootstrap: str, metadata: ClusterMetadata) -> list[dict[str, Any]]:
    """Every broker the metadata lists (up), then every bootstrap address no live broker
    answers on (down: a dead broker is missing from the metadata, so the bootstrap list is
    the only record that it should be there)."""
    live = {f"{b.host}:{b.port}": b.id for b in metadata.brokers.values()}
    rows = [{"id": broker_id, "address": address, "state": "up"}
            for address, broker_id in sorted(live.items(), key=lambda kv: kv[1])]
    for address in (a.strip() for a in bootstrap.split(",")):
        if address and address not in live:
            rows.append({"id": None, "address": address, "state": "down"})
    return rows


def partition_health(metadata: ClusterMetadata) -> dict[str, int]:
    partitions = [p for t in metadata.topics.values() for p in t.partitions.values()]
    return {"partitions": len(partitions),
            "under_replicated": sum(len(p.isrs) < len(p.replicas) for p in partitions),
            "offline": sum(p.leader < 0 for p in partitions)}


def kafka_health(settings: Settings, client: AdminClient | None = None,
                 timeout: float = 5.0) -> dict[str, Any]:
    """client: an admin client kept by a caller that asks again and again (the dashboard,
    every second); without one, a quiet one is made for this call."""
    try:
        metadata = (client or kafka.admin(settings, quiet=True)).list_topics(timeout=timeout)
    except KafkaException as exc:
        return {"error": exc.args[0].str(), "brokers": [], "partitions": {}}
    return {"brokers": broker_rows(settings.bootstrap_servers, metadata),
            "partitions": partition_health(metadata)}


def redis_health(store: Store) -> dict[str, Any]:
    target = store.target
    try:
        primary = redis_client.primary_address(target)
        info = store.redis.info("replication")
    except redis.RedisError as exc:
        return {"error": str(exc)}
    return {"primary": f"{primary[0]}:{primary[1]}" if primary else "(one server)",
            "sentinels": len(target.sentinels),
            "replicas": int(info.get("connected_slaves", 0)),
            "wait_replicas": target.wait_replicas}


def cluster_health(settings: Settings, store: Store,
                   client: AdminClient | None = None) -> dict[str, Any]:
    return {"kafka": kafka_health(settings, client), "redis": redis_health(store)}
