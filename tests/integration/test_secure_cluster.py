"""The secured local cluster (`mapreduce up --secure`) on a real broker that enforces it:
SASL_SSL with SCRAM, the StandardAuthorizer with no access unless an ACL grants it, one
principal per role, Redis behind TLS with a password. A job runs end to end with each role
under its own principal; a role cannot do what its ACLs do not grant; a client without
credentials is refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from mapreduce_kafka.services.localcluster import secure
from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.services.testing.clusters import started_with_pool
from mapreduce_kafka.services.testing.ports import free_port
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import kafka, topics
from mapreduce_kafka.shared.errors import ConnectionFailed
from mapreduce_kafka.shared.settings import Settings
from tests import REPO
from tests.integration import jobs

pytestmark = pytest.mark.integration
SAMPLES = [REPO / "pipelines" / "samples" / "text"]


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[tuple[LocalCluster, Settings]]:
    home = tmp_path_factory.mktemp("secure-home")
    cluster = LocalCluster(home, kafka_port=free_port(), controller_port=free_port(),
                           redis_port=free_port(), session_timeout_ms=6000, secure=True)
    with started_with_pool(cluster) as settings:
        yield cluster, settings


def client(cluster: LocalCluster, principal: str, **extra: str) -> dict[str, str]:
    return {"bootstrap.servers": cluster.bootstrap,
            **secure.client_config(cluster.files, principal), **extra}


def test_a_job_runs_with_each_role_under_its_own_principal(secured, tmp_path):
    cluster, settings = secured
    assert settings.redis_url.startswith("rediss://")
    job = jobs.submit(settings, jobs.WORDCOUNT, SAMPLES, tmp_path / "out")
    jobs.wait(settings, job, timeout=120)
    jobs.assert_matches_sequential(job)
    logs = {p.name: p.read_text() for p in (settings.home / "logs").glob("*.log")}
    assert all('"worker started"' in text for text in logs.values()), list(logs)
    assert not any("TOPIC_AUTHORIZATION_FAILED" in text or "Authorization failed" in text
                   for text in logs.values())


def _write(config: dict[str, str], topic: str) -> str | None:
    """The error of one write, or None when it was accepted."""
    errors: list[str] = []
    producer = Producer({**config, "message.timeout.ms": 10_000})
    producer.produce(topic, b"x", key=b"k",
                     on_delivery=lambda err, msg: errors.append(err.str()) if err else None)
    producer.flush(20)
    return errors[0] if errors else None


def _read(config: dict[str, str], topic: str) -> str | None:
    """The error of reading a topic's first partition, or None when it could be read."""
    consumer = Consumer({**config, "group.id": f"mapreduce-probe-{uuid.uuid4().hex[:6]}",
                         "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    try:
        for _ in range(20):
            for msg in consumer.consume(10, timeout=1):
                error = msg.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    return error.str()
                return None  # a record, or the end of the partition: it could be read
        return None
    finally:
        consumer.close()


def test_a_mapper_cannot_write_pipelines(secured):
    cluster, _ = secured
    refused = _write(client(cluster, "mapper"), topics.PIPELINES)
    assert refused is not None and "authoriz" in refused.lower(), refused
    assert _write(client(cluster, "source"), topics.SOURCE) is None  # what the source may


def test_a_source_cannot_read_output(secured):
    cluster, _ = secured
    refused = _read(client(cluster, "source"), topics.OUTPUT)
    assert refused is not None and "authoriz" in refused.lower(), refused
    assert _read(client(cluster, "sink"), topics.OUTPUT) is None  # what the sink may


@pytest.mark.parametrize("config", [
    {},  # no TLS, no SASL: a plain client
    {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
     "sasl.username": "mapper", "sasl.password": "not-the-password"},
])
def test_a_client_without_credentials_is_refused(secured, config):
    cluster, _ = secured
    if config:
        config = {**config, "ssl.ca.location": str(cluster.files.ca)}
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, **config,
                         "socket.timeout.ms": 3000, "log_level": 0})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_redis_wants_tls_and_the_password(secured):
    import redis

    cluster, settings = secured
    plain = redis.Redis(host=cluster.host, port=cluster.redis_port, socket_timeout=3)
    with pytest.raises(redis.RedisError):
        plain.ping()
    no_password = redis.Redis(host=cluster.host, port=cluster.redis_port, ssl=True,
                              ssl_ca_certs=str(cluster.files.ca), socket_timeout=3)
    with pytest.raises(redis.AuthenticationError):
        no_password.ping()


def test_a_principal_that_cannot_describe_a_fixed_topic_gets_a_clear_error(secured):
    """Not a missing topic to create (that is refused too) but one line naming the topic."""
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    cluster, _ = secured
    admin = AdminClient(client(cluster, secure.ADMIN))
    describe_output = AclBindingFilter(ResourceType.TOPIC, topics.OUTPUT,
                                       ResourcePatternType.LITERAL, "User:source", "*",
                                       AclOperation.DESCRIBE, AclPermissionType.ALLOW)
    for future in admin.delete_acls([describe_output]).values():
        future.result()
    source_settings = cluster.settings("source")
    try:
        def refused() -> str | None:
            try:
                kafka.fixed_topic_counts(kafka.admin(source_settings, quiet=True),
                                         source_settings)
            except ConnectionFailed as exc:
                return str(exc)
            return None  # the broker has not applied the deletion yet

        message = wait_for(refused, 30, "the source to be refused OUTPUT")
        assert f"not authorized to describe {topics.OUTPUT} at" in message, message
    finally:
        for future in admin.create_acls(secure.acl_bindings("source")).values():
            future.result()
        cluster.wait_granted()
