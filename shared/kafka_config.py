"""The one place Settings become librdkafka dicts.

Merged in a fixed order: role defaults < user extras (the config file's [kafka] table <
MAPREDUCE_KAFKA_<NAME>=value, e.g. MAPREDUCE_KAFKA_SECURITY_PROTOCOL) < connection
(bootstrap.servers) < forced values the design relies on (manual commits, earliest reset)
< the caller's overrides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mapreduce_kafka.shared.logging import librdkafka_logger

if TYPE_CHECKING:
    from mapreduce_kafka.shared.settings import Settings


def _merge(settings: Settings, defaults: dict[str, Any],
           forced: dict[str, Any]) -> dict[str, Any]:
    # librdkafka's own log lines as structured events (shared/logging.py)
    return {**defaults, **settings.kafka_extra, "bootstrap.servers": settings.bootstrap_servers,
            "logger": librdkafka_logger(), **forced}


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    defaults = {
        "linger.ms": 20,  # wait up to 20 ms to fill a batch: throughput over latency
        "compression.type": "lz4",  # cheap CPU, shrinks text frames 2-3x
        "batch.size": 1_000_000,
        "message.max.bytes": 1_000_000,
        "socket.timeout.ms": 10_000,
        # bounds a worker's memory (librdkafka's default is 1 GiB); a full queue only
        # makes send() wait for deliveries
        "queue.buffering.max.kbytes": 65_536,
        # first retry after 10 ms, not 100 (backing off exponentially to 1 s): a new
        # pipeline's partitions refuse a first write for a moment (NOT_LEADER), and
        # every new pipeline waited out that 100 ms (measured: opening 8 partitions
        # took 0.11 s, 0.03 s with this)
        "retry.backoff.ms": 10,
    }
    forced = {"enable.idempotence": True}  # broker retries must not duplicate or reorder
    return {**_merge(settings, defaults, forced), **overrides}


def consumer_config(settings: Settings, group: str, *, protocol: str = "classic",
                    assignor: str = "roundrobin", **overrides: Any) -> dict[str, Any]:
    """protocol "consumer" is KIP-848: the broker assigns partitions and owns the
    session, so the classic session, heartbeat and assignor settings are config errors
    there and are left out."""
    defaults: dict[str, Any] = {
        "max.poll.interval.ms": 300_000,
        "fetch.max.bytes": 52_428_800,
        # prefetched messages count in a worker's memory (librdkafka's default is 64 MiB)
        "queued.max.messages.kbytes": 16_384,
        # a partition whose fetch failed is fetched again after this (librdkafka's 500 ms
        # default was a new pipeline's first fetch, when its partitions were a moment old)
        "fetch.error.backoff.ms": 50,
        "retry.backoff.ms": 10,
        "topic.metadata.refresh.interval.ms": 5_000,
    }
    if protocol == "classic":
        defaults.update({
            "session.timeout.ms": settings.session_timeout_ms,
            # A member learns that the group is rebalancing (a worker joined or a pipeline
            # came) on its next heartbeat, so this bounds how long a new member waits.
            "heartbeat.interval.ms": min(500, settings.session_timeout_ms // 3),
            "partition.assignment.strategy": assignor,
        })
    else:
        defaults["group.protocol"] = protocol
    forced = {
        "group.id": group,
        "enable.auto.commit": False,  # commit only what is durable downstream
        "auto.offset.reset": "earliest",  # a group new to a topic must not skip records
        "isolation.level": "read_committed",
    }
    return {**_merge(settings, defaults, forced), **overrides}


def admin_config(settings: Settings) -> dict[str, Any]:
    return _merge(settings, {"socket.timeout.ms": 10_000}, {})
