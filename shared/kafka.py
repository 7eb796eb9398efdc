"""Kafka helpers: idempotent topic creation that waits until topics are usable, deletion,
reachability checks. Nothing here connects at import time."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from mapreduce_kafka.shared import topics
from mapreduce_kafka.shared.codec import CodecError
from mapreduce_kafka.shared.errors import ConnectionFailed
from mapreduce_kafka.shared.metrics import METRICS
from mapreduce_kafka.shared.settings import Settings

log = structlog.get_logger("kafka")


def consume_ready(consumer: Consumer, max_messages: int, timeout: float) -> list[Message]:
    """Up to `max_messages` already fetched; when there are none, wait up to `timeout` for
    the first and take whatever came with it. consume() itself returns only when it has
    `max_messages` or the timeout has passed, which made every worker wait out the timeout
    whenever fewer messages than a batch were left (0.2-0.3 s per pipeline change, per
    batch of end markers)."""
    messages = consumer.consume(num_messages=max_messages, timeout=0)
    if not messages and timeout > 0:
        messages = consumer.consume(num_messages=1, timeout=timeout)
        if messages and max_messages > 1:
            messages += consumer.consume(num_messages=max_messages - 1, timeout=0)
    if messages:
        METRICS.count(messages_in=len(messages),
                      bytes_in=sum(len(m.value() or b"") for m in messages))
    return messages


def value_of(msg: Message) -> bytes:
    """A consumed record's value. Every frame the framework writes has one; a record without
    one (a tombstone someone else wrote) is a CodecError, which fails its pipeline."""
    value = msg.value()
    if value is None:
        raise CodecError(f"a message without a value at "
                         f"{msg.topic()}[{msg.partition()}]@{msg.offset()}")
    return value


def position_of(msg: Message) -> tuple[str, int, int]:
    """A consumed record's topic, partition and offset: the client leaves them unset only
    on error events, which every caller has handled before."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError(f"an event without a position: {msg.error()}")
    return topic, partition, offset


def where(msg: Message) -> str:
    """A record's position for people: topic[partition]@offset."""
    return f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"


def partition_of(msg: Message) -> int:
    return position_of(msg)[1]


COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0",
             "segment.ms": "3600000"}


def admin(settings: Settings, quiet: bool = False) -> AdminClient:
    """quiet: no librdkafka log lines (a broker that is down, while a cluster starts or in
    a health view, is expected, not worth logging)."""
    return AdminClient({**settings.admin_config(), "log_level": 0} if quiet
                       else settings.admin_config())


def check_reachable(settings: Settings, timeout: float = 8.0, quiet: bool = False) -> None:
    client = admin(settings, quiet)
    try:
        client.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ConnectionFailed(
            f"cannot reach Kafka at {settings.bootstrap_servers} ({exc.args[0].str()}); "
            "start a local cluster with `mapreduce up`, or pass --bootstrap-servers / "
            "set MAPREDUCE_BOOTSTRAP_SERVERS"
        ) from exc


def replication(replication_factor: int, brokers: int) -> tuple[int, dict[str, str]]:
    """The replication factor of a new topic and the config that goes with it: the one
    asked for, or (0) min(3, the brokers that are up); with more than one replica, a write
    is acknowledged once all but one hold it (min.insync.replicas), so one broker can fail
    without stopping writes or losing an acknowledged one."""
    factor = replication_factor or max(1, min(3, brokers))
    if factor == 1:
        return 1, {}
    return factor, {"min.insync.replicas": str(factor - 1)}


def ensure_topics(client: AdminClient, wanted: dict[str, tuple[int, dict[str, str]]],
                  timeout: float = 30.0, replication_factor: int = 0) -> dict[str, Any]:
    """Create topics that do not exist ("already exists" is success), then wait until every
    partition has a leader: a fresh topic can answer UNKNOWN_TOPIC_OR_PART for a moment.
    Returns the metadata that showed them usable."""
    metadata = client.list_topics(timeout=timeout)
    existing = metadata.topics
    factor, replicated = replication(replication_factor, len(metadata.brokers))
    new = [NewTopic(name, num_partitions=n, replication_factor=factor,
                    config={**replicated, **cfg})
           for name, (n, cfg) in wanted.items() if name not in existing]
    if new:
        if factor > len(metadata.brokers):
            # Kafka would refuse the topic; a worker starting with its cluster waits instead
            raise ConnectionFailed(
                f"{len(metadata.brokers)} broker(s) up, the replication factor {factor} "
                f"needs {factor}: waiting for the others to create "
                f"{', '.join(t.topic for t in new)}")
        for name, future in client.create_topics(new, operation_timeout=timeout).items():
            try:
                future.result()
                log.info("topic created", topic=name)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    return wait_until_usable(client, wanted, timeout)


def wait_until_usable(client: AdminClient, wanted: dict[str, tuple[int, dict[str, str]]],
                      timeout: float) -> dict[str, Any]:
    """The topics' metadata once every partition has a leader. Use this metadata, not a
    new request: with several brokers the next request may reach one that has not yet
    learned of a new topic."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        metadata = client.list_topics(timeout=timeout).topics
        missing = [name for name, (n, _) in wanted.items()
                   if name not in metadata or metadata[name].error is not None
                   or len(metadata[name].partitions) < n
                   or any(p.leader < 0 for p in metadata[name].partitions.values())]
        if not missing:
            return metadata
        if time.monotonic() > deadline:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT,
                                            f"topics without leaders: {missing}"))
        time.sleep(delay)  # polling metadata: the broker has no "topic ready" notification
        delay = min(delay * 2, 0.5)


def delete_topics(client: AdminClient, names: Iterable[str], timeout: float = 30.0) -> None:
    names = list(names)
    if not names:
        return
    for name, future in client.delete_topics(names, operation_timeout=timeout).items():
        try:
            future.result()
            log.info("topic deleted", topic=name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise


# Retention is set on every topic the framework creates, never left to the broker's default
# (24 h on a local cluster, often 7 days elsewhere), which could delete records a running job
# still replays from (docs/operations.md, "Retention"). A pipeline's own topics are kept
# whole: they are deleted with the pipeline. The shared ones hold every job's records, so
# they cannot grow for good: a week, longer than any job is expected to run.
UNLIMITED = {"retention.ms": "-1", "retention.bytes": "-1"}
SHARED_RETENTION_MS = 7 * 24 * 3600 * 1000
SHARED = {"retention.ms": str(SHARED_RETENTION_MS), "retention.bytes": "-1"}


def fixed_topics(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    return {
        topics.PIPELINES: (1, COMPACTED),  # compacted: the latest record of each id stays
        topics.SOURCE: (settings.source_partitions, SHARED),
        topics.SHUFFLE: (settings.shuffle_partitions, SHARED),
        topics.OUTPUT: (settings.output_partitions, SHARED),
        topics.DEADLETTER: (1, {"retention.ms": str(7 * 24 * 3600 * 1000)}),
    }


def pipeline_topics(pipeline_id: str, partitions: int) -> dict[str, tuple[int, dict[str, str]]]:
    return {topics.map_topic(pipeline_id): (partitions, UNLIMITED),
            topics.reduce_topic(pipeline_id): (partitions, UNLIMITED)}


def fixed_topic_counts(client: AdminClient, settings: Settings,
                       timeout: float = 8.0) -> dict[str, int]:
    """Partitions of each fixed topic, creating those that are missing; ConnectionFailed when
    the cluster does not answer. One metadata request when every topic exists."""
    try:
        metadata = client.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise ConnectionFailed(
            f"cannot reach Kafka at {settings.bootstrap_servers} ({exc.args[0].str()}); "
            "start a local cluster with `mapreduce up`, or pass --bootstrap-servers / "
            "set MAPREDUCE_BOOTSTRAP_SERVERS") from exc
    wanted = fixed_topics(settings)
    missing = unknown_topics(metadata, wanted)
    if missing:
        try:
            metadata = ensure_topics(client, wanted,
                                     replication_factor=settings.replication_factor)
        except KafkaException as exc:
            # A topic this principal may not describe is left out of the metadata: it looks
            # missing, and creating it is refused too. Say which, in one line.
            if exc.args[0].code() != KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise
            raise ConnectionFailed(
                f"not authorized to describe {', '.join(missing)} at "
                f"{settings.bootstrap_servers}: this principal needs DESCRIBE on the fixed "
                "topics (docs/security.md)") from exc
    return {name: len(metadata[name].partitions) for name in wanted}


def unknown_topics(metadata: dict[str, Any], names: Iterable[str]) -> list[str]:
    """The names that `metadata` (a metadata answer's topics) does not know with partitions:
    absent, in error, or listed without partitions, as the answer of a broker that has not
    yet learned of a new topic can be. Counting such a topic's partitions gives 0."""
    return [name for name in names if name not in metadata
            or metadata[name].error is not None or not metadata[name].partitions]


def high_watermarks(settings: Settings, topic: str,
                    timeout: float = 10.0) -> dict[int, tuple[int, int]]:
    """(low, high) offsets of every partition of a topic, as they are now."""
    client = admin(settings)
    md = client.list_topics(topic, timeout=timeout).topics.get(topic)
    if md is None or md.error is not None:
        raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART,
                                        f"topic {topic} does not exist"))
    consumer = Consumer(settings.consumer_config("mapreduce-watermarks"))
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout,
                                                  cached=False)
                for p in sorted(md.partitions)}
    finally:
        consumer.close()


# Errors reading an input topic that no retry cures: it was deleted, or we may not read it.
_INPUT_GONE = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
               KafkaError._UNKNOWN_PARTITION, KafkaError.TOPIC_AUTHORIZATION_FAILED}


def input_gone(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and error.code() in _INPUT_GONE


def topic_missing(client: AdminClient, topic: str, timeout: float = 10.0) -> bool:
    """Whether the cluster, asked now, has no such topic (a consumer assigned to a deleted
    topic just waits, with no error: read_range then times out)."""
    metadata = client.list_topics(topic, timeout=timeout).topics.get(topic)
    return metadata is None or metadata.error is not None and \
        metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def read_range(consumer: Consumer, topic: str, partition: int, start: int, end: int,
               batch: int = 500, timeout: float = 30.0) -> Iterator[list[Message]]:
    """The records at offsets [start, end) of one partition, in batches, through an
    assign-only consumer (no group). Offsets compacted or deleted away are skipped; a range
    whose records cannot be fetched within `timeout` raises KafkaException."""
    if start >= end:
        return
    consumer.assign([TopicPartition(topic, partition, start)])
    deadline = time.monotonic() + timeout
    try:
        while True:
            messages = consumer.consume(num_messages=batch, timeout=1.0)
            wanted = []
            for msg in messages:
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(error)
                    continue
                if msg.offset() < end:  # type: ignore[operator]
                    wanted.append(msg)
            if wanted:
                deadline = time.monotonic() + timeout
                yield wanted
            position = consumer.position([TopicPartition(topic, partition)])[0].offset
            if position >= end:
                return
            if time.monotonic() > deadline:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT,
                                                f"{topic}[{partition}] records {start}..{end} "
                                                f"not readable within {timeout}s"))
    finally:
        consumer.unassign()
