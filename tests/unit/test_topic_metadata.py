"""Which topics a metadata answer knows well enough to count their partitions."""

from __future__ import annotations

from types import SimpleNamespace

from mapreduce_kafka.shared.kafka import unknown_topics


def topic(partitions: int, error: object = None) -> SimpleNamespace:
    return SimpleNamespace(error=error, partitions={p: object() for p in range(partitions)})


def test_a_topic_absent_in_error_or_without_partitions_is_unknown():
    metadata = {"SHUFFLE": topic(8), "OUTPUT": topic(0), "SOURCE": topic(4, error="LEADER")}
    assert unknown_topics(metadata, ["SHUFFLE", "OUTPUT", "SOURCE", "PIPELINES"]) == [
        "OUTPUT", "SOURCE", "PIPELINES"]


def test_topics_listed_with_partitions_are_known():
    assert unknown_topics({"SHUFFLE": topic(8), "OUTPUT": topic(4)}, ["SHUFFLE", "OUTPUT"]) == []
