"""The resubscription strategies: how mappers and reducers follow the set of live pipelines.

This is the one list of them. Each entry names its strategy, the shape of its consumers
(which runner in services/runtime/resubscriber.py performs it) and the librdkafka settings
its consumers need. Settings, the CLI and the benchmarks take the names from here; the
runner module maps each shape to a class.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class Shape(enum.Enum):
    """How a worker's consumers are arranged and what it does when the pipelines change."""

    RECONNECT = "reconnect"  # one consumer, closed and made anew (shared/resubscribe.py)
    IN_PLACE = "in-place"  # one consumer for life, subscribe() again with every topic
    REGEX = "regex"  # one consumer for life, subscribed to a pattern once
    GROUP_PER_PIPELINE = "group-per-pipeline"  # a consumer per pipeline, in its own group


@dataclass(frozen=True)
class ResubscribeStrategy:
    name: str  # MAPREDUCE_RESUBSCRIBE, `up --resubscribe`
    shape: Shape
    # merged by Settings.consumer_config: `protocol` and `assignor` are its own arguments,
    # the rest librdkafka properties
    consumer_overrides: Mapping[str, object]


# Regex subscriptions see new topics on the metadata refresh: its period bounds pickup.
REGEX_METADATA_REFRESH_MS = 1000
# What one pipeline's consumer may hold fetched and unread, group-per-pipeline: half the
# one-consumer strategies' 16 MiB, times at most DEFAULT_CAPACITY consumers
# (shared/pipeline_groups.py).
PREFETCH_KB = 8192

_ALL = (
    ResubscribeStrategy("reconnect", Shape.RECONNECT, {"assignor": "roundrobin"}),
    ResubscribeStrategy("in-place", Shape.IN_PLACE, {"assignor": "cooperative-sticky"}),
    ResubscribeStrategy("consumer-protocol", Shape.IN_PLACE, {"protocol": "consumer"}),
    ResubscribeStrategy("regex", Shape.REGEX, {
        "assignor": "cooperative-sticky",
        "topic.metadata.refresh.interval.ms": REGEX_METADATA_REFRESH_MS}),
    # KIP-848: the broker assigns a new group's partitions at its first heartbeat. Each
    # pipeline's consumer prefetches for that pipeline alone, so a smaller queue each.
    ResubscribeStrategy("group-per-pipeline", Shape.GROUP_PER_PIPELINE, {
        "protocol": "consumer", "queued.max.messages.kbytes": PREFETCH_KB}),
)
REGISTRY: Mapping[str, ResubscribeStrategy] = MappingProxyType({s.name: s for s in _ALL})
STRATEGIES: tuple[str, ...] = tuple(REGISTRY)


def strategy(name: str) -> ResubscribeStrategy:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown resubscribe strategy {name!r}") from None


# A consumer group per pipeline: the only strategy that met every rebalance goal
# (docs/measurements.md, "Rebalance"): a new pipeline changes no running pipeline's group.
# Its groups use KIP-848, so it needs a Kafka 4 broker whose group.consumer.session.timeout.ms
# is short (the local broker's is 10 s; Kafka's default, 45 s, makes failover slow).
DEFAULT_STRATEGY = strategy("group-per-pipeline").name


def consumer_overrides(name: str) -> dict[str, object]:
    """The settings a strategy's consumers need (merged by Settings.consumer_config)."""
    return dict(strategy(name).consumer_overrides)
