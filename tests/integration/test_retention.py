"""Retention of the topics the framework creates is its own, never the broker's default
(24 h on the local cluster it used to be): a pipeline's topics keep every record until the
pipeline is deleted, the shared ones a week (docs/operations.md, "Retention")."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import ConfigResource, ConfigSource

from mapreduce_kafka.shared import kafka, topics

pytestmark = pytest.mark.integration


def _topic_config(admin, topic: str) -> dict[str, tuple[str, int]]:  # noqa: ANN001
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: (entry.value, entry.source) for name, entry in entries.items()}


def test_framework_topics_carry_their_own_retention(cluster):
    admin = kafka.admin(cluster)
    kafka.ensure_topics(admin, kafka.fixed_topics(cluster))
    topic_set = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    week = str(7 * 24 * 3600 * 1000)
    for name in (topics.SOURCE, topics.SHUFFLE, topics.OUTPUT):
        config = _topic_config(admin, name)
        assert config["retention.ms"] == (week, topic_set), name
        assert config["retention.bytes"] == ("-1", topic_set), name
        assert config["cleanup.policy"][0] == "delete", name
    assert _topic_config(admin, topics.PIPELINES)["cleanup.policy"] == ("compact", topic_set)

    pid = f"retention-{uuid.uuid4().hex[:8]}"
    made = kafka.pipeline_topics(pid, 1)
    kafka.ensure_topics(admin, made)
    try:
        for name in made:
            config = _topic_config(admin, name)
            assert config["retention.ms"] == ("-1", topic_set), name
            assert config["retention.bytes"] == ("-1", topic_set), name
            assert config["cleanup.policy"][0] == "delete", name
    finally:
        kafka.delete_topics(admin, made)
