"""Refusals to create topics that fail a pipeline at once, and those that are retried."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from mapreduce_kafka.shared.errors import ConnectionFailed
from mapreduce_kafka.shared.topic_refusals import permanent_refusal


def refusal(code: int, message: str) -> KafkaException:
    return KafkaException(KafkaError(code, message))


def test_a_name_kafka_refuses_fails_the_pipeline_with_kafkas_reason():
    reason = permanent_refusal(refusal(
        KafkaError.TOPIC_EXCEPTION,
        "Topic 'MAP---etl_1' collides with existing topics: MAP---etl.1"))
    assert reason == ("Kafka refused to create its topics (TOPIC_EXCEPTION): Topic "
                      "'MAP---etl_1' collides with existing topics: MAP---etl.1")
    for code in (KafkaError.POLICY_VIOLATION, KafkaError.INVALID_PARTITIONS,
                 KafkaError.TOPIC_AUTHORIZATION_FAILED,
                 KafkaError.CLUSTER_AUTHORIZATION_FAILED, KafkaError.INVALID_CONFIG):
        assert permanent_refusal(refusal(code, "refused")) is not None


def test_a_reason_is_one_line():
    reason = permanent_refusal(refusal(KafkaError.POLICY_VIOLATION, "too many\npartitions"))
    assert reason is not None and "\n" not in reason and reason.endswith("too many partitions")


def test_brokers_down_or_slow_are_retried():
    assert permanent_refusal(refusal(
        KafkaError.INVALID_REPLICATION_FACTOR,
        "Replication factor: 3 larger than available brokers: 1.")) is None
    assert permanent_refusal(refusal(KafkaError.INVALID_REPLICATION_FACTOR,
                                     "Replication factor must be larger than 0.")) is not None
    for code in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT,
                 KafkaError.NOT_CONTROLLER, KafkaError.THROTTLING_QUOTA_EXCEEDED,
                 KafkaError._ALL_BROKERS_DOWN):
        assert permanent_refusal(refusal(code, "retry")) is None
    assert permanent_refusal(ConnectionFailed("1 broker(s) up")) is None
    assert permanent_refusal(KafkaException("no KafkaError in it")) is None
