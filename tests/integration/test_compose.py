"""The compose files are valid for Docker's own driver too (Debian's docker-compose reads
them as Docker Compose does); tests/compose/ builds and runs them with podman."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mapreduce_kafka.shared import redis_client
from tests import REPO

COMPOSE = REPO / "compose" / "docker-compose.yml"
REPLICATED = REPO / "compose" / "docker-compose.replicated.yml"
NEEDS_COMPOSE = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                   reason="Debian's docker-compose is not installed "
                                          "(make install adds it)")


def config_of(*files: Path) -> dict:
    argv = ["docker-compose"]
    for path in files:
        argv += ["-f", str(path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAPREDUCE_")}
    result = subprocess.run([*argv, "--profile", "multi-topic", "config"],
                            capture_output=True, text=True, cwd=COMPOSE.parent, env=env)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@NEEDS_COMPOSE
def test_compose_multi_topic_profile_is_valid():
    services = config_of(COMPOSE)["services"]
    assert {"kafka", "redis", "dispatcher", "mapper", "shuffler", "reducer", "sink"} <= set(
        services)
    assert services["mapper"]["command"] == ["worker", "mapper"]
    assert services["mapper"]["environment"]["MAPREDUCE_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    # every worker verifies specs with the key from the secret
    for role in ("dispatcher", "mapper", "shuffler", "reducer", "sink", "source"):
        assert services[role]["environment"]["MAPREDUCE_SIGNING_KEY_FILE"] == \
            "/run/secrets/signing_key"
        assert [s if isinstance(s, str) else s["source"]
                for s in services[role]["secrets"]] == ["signing_key"]


@NEEDS_COMPOSE
def test_the_replicated_layout_has_no_single_broker_or_redis():
    """Three KRaft voters with the settings the replicated fault suite proved, Redis with
    two replicas behind three Sentinels, and every worker pointed at all of them."""
    services = config_of(COMPOSE, REPLICATED)["services"]
    nodes = [services[name]["environment"] for name in ("kafka", "kafka-2", "kafka-3")]
    assert sorted(str(env["KAFKA_NODE_ID"]) for env in nodes) == ["1", "2", "3"]
    assert len({env["CLUSTER_ID"] for env in nodes}) == 1
    for env in nodes:
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == \
            "1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert str(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == "3"
        assert str(env["KAFKA_MIN_INSYNC_REPLICAS"]) == "2"
        assert str(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "3"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
    for name in ("redis-replica-1", "redis-replica-2"):
        assert services[name]["command"][-3:] == ["--replicaof", "redis", "6379"]
    for name in ("redis", "redis-replica-1", "redis-replica-2"):
        assert " --min-replicas-to-write 1 " in " ".join(services[name]["command"])
    for name in ("sentinel-1", "sentinel-2", "sentinel-3"):
        assert "sentinel monitor mapreduce redis 6379 2" in " ".join(services[name]["command"])
    for role in ("dispatcher", "mapper", "shuffler", "reducer", "sink", "source"):
        env = services[role]["environment"]
        assert env["MAPREDUCE_BOOTSTRAP_SERVERS"] == "kafka:9092,kafka-2:9092,kafka-3:9092"
        assert str(env["MAPREDUCE_REPLICATION_FACTOR"]) == "3"
        target = redis_client.parse(env["MAPREDUCE_REDIS_URL"])
        assert target.sentinels == [("sentinel-1", 26379), ("sentinel-2", 26379),
                                    ("sentinel-3", 26379)]
        assert (target.service, target.wait_replicas) == ("mapreduce", 1)
        assert env["MAPREDUCE_SIGNING_KEY_FILE"] == "/run/secrets/signing_key"
        assert {"kafka", "kafka-2", "kafka-3", "sentinel-1"} <= set(services[role]["depends_on"])


@NEEDS_COMPOSE
def test_every_image_is_built_here_on_one_base():
    """No service pulls an image: each is built from compose/images/ on the base that
    MAPREDUCE_BASE_IMAGE names (a registry's Debian, or one made with debootstrap)."""
    services = config_of(COMPOSE, REPLICATED)["services"]
    for name, service in services.items():
        assert service["image"].startswith("localhost/mapreduce-kafka-"), name
        assert service["build"]["dockerfile"].startswith("compose/images/"), name
        assert service["build"]["args"]["BASE"] == "docker.io/library/debian:bookworm-slim"
        for dependency in service.get("depends_on", {}).values():
            # podman runs health checks through systemd: the workers wait themselves
            assert dependency["condition"] == "service_started", name
