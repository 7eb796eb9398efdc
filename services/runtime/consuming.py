"""What every role makes of what its consumer returns: a message's envelope, or None for
what every role skips (a consumer error, a message that cannot be decoded or is not
authentic); which consumer errors are fatal; the consumer's lag; partitions named for logs."""

from __future__ import annotations

from typing import Any, cast

from confluent_kafka import Consumer, KafkaError, Message

from mapreduce_kafka.services.runtime.process import Runtime
from mapreduce_kafka.shared import kafka, topics
from mapreduce_kafka.shared.codec import CodecError, Envelope
from mapreduce_kafka.shared.errors import ConsumerFailed


def check_consumer_error(log: Any, error: KafkaError) -> None:
    """Log a consumer error; raise ConsumerFailed if it is fatal (seen: a KIP-848 heartbeat
    answered INVALID_REQUEST right after an unsubscribe, which left a mapper consuming
    nothing for the rest of its life while it still heartbeated as healthy)."""
    if error.fatal() or error.code() == KafkaError._FATAL:
        raise ConsumerFailed(f"fatal consumer error: {error.str()}")
    if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
        log.debug("topic gone", error=error.str())  # a finished pipeline's topic
    elif error.code() != KafkaError._PARTITION_EOF:
        log.warning("consumer error", error=error.str())


def envelope_of(rt: Runtime, msg: Message) -> Envelope | None:
    """The envelope of a consumed message; None (and logged) for a consumer error, a message
    that cannot be decoded or whose tag does not verify (shared/auth.py), which every role
    skips. A fatal consumer error raises ConsumerFailed."""
    error = msg.error()
    if error is not None:
        check_consumer_error(rt.log, error)
        return None
    # a consumer's headers are (str, bytes) pairs; the client's type also covers a producer's
    headers = cast(list[tuple[str, bytes | None]], msg.headers())
    try:
        envelope = Envelope.from_headers(headers)
    except CodecError as exc:
        rt.log.error("undecodable message skipped", topic=msg.topic(),
                     partition=msg.partition(), offset=msg.offset(), error=str(exc),
                     pipeline=topics.pipeline_of(msg.topic() or ""))
        return None
    topic, partition, _ = kafka.position_of(msg)
    if not rt.auth.check(envelope.pipeline, topic, partition, envelope, msg.key(), msg.value(),
                         headers):
        rt.unauthenticated(msg, envelope)
        return None
    return envelope


def consumer_lag(consumer: Consumer | None) -> int:
    """Messages not yet read on this consumer's assigned partitions, from the high
    watermarks its fetches last saw (no request to the broker)."""
    if consumer is None:
        return 0
    parts = consumer.assignment()
    if not parts:
        return 0
    lag = 0
    for tp in consumer.position(parts):
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        if high >= 0 and tp.offset >= 0:
            lag += max(0, high - tp.offset)
    return lag


def describe(partitions: list[Any]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
