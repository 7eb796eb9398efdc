"""The replicated overlay in containers (compose/docker-compose.replicated.yml over
docker-compose.yml): three KRaft nodes, Redis behind three Sentinels, and the broker that
leads most of a job's partitions killed while the job maps."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.compose.project import ComposeProject

NODE_SERVICES = {1: "kafka", 2: "kafka-2", 3: "kafka-3"}
ADMIN = """
import json, sys
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": "kafka:9092,kafka-2:9092,kafka-3:9092"})
"""
LEADERS = ADMIN + """
topic = admin.list_topics(sys.argv[1], timeout=10).topics[sys.argv[1]]
print(json.dumps([p.leader for p in topic.partitions.values()]))
"""
REPLICAS = ADMIN + """
topics = admin.list_topics(timeout=10).topics
print(json.dumps({name: min(len(p.replicas) for p in topic.partitions.values())
                  for name, topic in topics.items() if not name.startswith("__")}))
"""

pytestmark = [pytest.mark.compose, pytest.mark.timeout(2400)]


def in_the_network(project: ComposeProject, script: str, *args: str) -> object:
    result = project.podman("exec", project.container("dispatcher"), "python3", "-c",
                            script, *args)
    return json.loads(result.stdout)


def test_the_framework_topics_have_three_replicas(replicated: ComposeProject):
    """The workers start with the brokers: the topics they create must still get three
    replicas (with one, a broker's death takes partitions offline)."""
    replicas = in_the_network(replicated, REPLICAS)
    assert isinstance(replicas, dict) and {"PIPELINES", "SHUFFLE", "OUTPUT"} <= set(replicas)
    assert set(replicas.values()) == {3}, replicas


def busiest_leader(project: ComposeProject, topic: str) -> int:
    """The node that leads most of the topic's partitions (asked from inside the network)."""
    leaders = Counter(in_the_network(project, LEADERS, topic))  # type: ignore[arg-type]
    return leaders.most_common(1)[0][0]


def test_a_broker_killed_mid_job_leaves_the_count_exact(replicated: ComposeProject):
    def kill_the_busiest_leader() -> None:
        node = busiest_leader(replicated, "MAP---slow-broker-killed")
        replicated.podman("kill", replicated.container(NODE_SERVICES[node]))

    replicated.killed_mid_map("slow-broker-killed", 1.5, kill_the_busiest_leader)
