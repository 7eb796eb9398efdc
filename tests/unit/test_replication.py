"""Pure parts of the replicated cluster: Redis URLs with Sentinel and their WAIT parameter,
the replication factor a new topic gets, the broker and partition health `status` shows,
and the replicated local cluster's node layout and settings."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import (
    BrokerMetadata,
    ClusterMetadata,
    PartitionMetadata,
    TopicMetadata,
)

from mapreduce_kafka.services.localcluster import replicated
from mapreduce_kafka.services.status.cluster_health import broker_rows, partition_health
from mapreduce_kafka.shared import kafka, redis_client
from mapreduce_kafka.shared.errors import ConfigError
from mapreduce_kafka.shared.redis_client import redacted


def test_a_plain_url_waits_for_no_replica_unless_told():
    target = redis_client.parse("redis://:pw@h:6379/0")
    assert (target.url, target.wait_replicas, target.sentinels) == ("redis://:pw@h:6379/0", 0, [])
    told = redis_client.parse("rediss://h:6379/0?ssl_ca_certs=/ca.pem&wait_replicas=1")
    assert told.wait_replicas == 1
    assert told.url == "rediss://h:6379/0?ssl_ca_certs=%2Fca.pem"  # ours removed, rest kept


def test_a_sentinel_url_names_sentinels_service_db_and_waits_for_one_replica():
    target = redis_client.parse("redis+sentinel://:s3cret@a:26379,b:26380/mymaster/2")
    assert target.sentinels == [("a", 26379), ("b", 26380)]
    assert (target.service, target.db, target.password, target.wait_replicas) == (
        "mymaster", 2, "s3cret", 1)
    assert redis_client.parse("redis+sentinel://a:1/svc?wait_replicas=0").wait_replicas == 0
    assert redis_client.parse("redis+sentinel://a:1/svc").db == 0


@pytest.mark.parametrize("url, message", [
    ("redis+sentinel://a:1", "names its Sentinels and the service"),
    ("redis+sentinel://a/svc", "host:port"),
    ("redis+sentinel://a:1/svc/x", "only a db number"),
    ("redis://h:1/0?wait_replicas=two", "whole number"),
    ("redis://h:1/0?wait_replicas=-1", "must not be negative"),
])
def test_bad_redis_urls_are_clear_errors(url, message):
    with pytest.raises(ConfigError, match=message):
        redis_client.parse(url)


@pytest.mark.parametrize("url", [
    "redis+sentinel://:pw@s1:26379,s2:26379/mapreduce/2",
    "redis+sentinel://s1:26379/mapreduce?wait_replicas=1",
    "redis://h:6379/0?wait_replicas=2&health_check_interval=5",
])
def test_the_wait_can_be_set_on_any_url_and_nothing_else_changes(url):
    before = redis_client.parse(url)
    for replicas in (0, 2):
        after = redis_client.parse(redis_client.with_wait_replicas(url, replicas))
        assert after.wait_replicas == replicas
        assert (after.url, after.sentinels, after.service, after.db, after.password) == (
            before.url, before.sentinels, before.service, before.db, before.password)


def test_sentinel_urls_are_redacted_for_logs():
    assert (redacted("redis+sentinel://:pw@a:1,b:2/svc/0")
            == "redis+sentinel://:***@a:1,b:2/svc/0")


@pytest.mark.parametrize("asked, brokers, factor, min_isr", [
    (0, 1, 1, None), (0, 2, 2, "1"), (0, 3, 3, "2"), (0, 5, 3, "2"), (2, 5, 2, "1"),
    (1, 3, 1, None),
])
def test_the_replication_factor_of_a_new_topic(asked, brokers, factor, min_isr):
    got, config = kafka.replication(asked, brokers)
    assert got == factor
    assert config.get("min.insync.replicas") == min_isr


def _metadata(live: dict[int, int], partitions: list[tuple[int, list[int], list[int]]]
              ) -> ClusterMetadata:
    """Metadata as librdkafka hands it over: live brokers (id: port), one topic's
    partitions (leader, replicas, in-sync replicas)."""
    metadata = ClusterMetadata()
    for broker_id, port in live.items():
        broker = BrokerMetadata()
        broker.id, broker.host, broker.port = broker_id, "h", port
        metadata.brokers[broker_id] = broker
    topic = TopicMetadata()
    topic.topic = "MAP---p"
    for index, (leader, replicas, isrs) in enumerate(partitions):
        partition = PartitionMetadata()
        partition.id, partition.leader, partition.replicas, partition.isrs = (
            index, leader, replicas, isrs)
        topic.partitions[index] = partition
    metadata.topics[topic.topic] = topic
    return metadata


def test_a_broker_missing_from_the_metadata_is_down():
    metadata = _metadata({1: 9092, 3: 9096}, [])
    rows = broker_rows("h:9092,h:9094,h:9096", metadata)
    assert [(r["id"], r["address"], r["state"]) for r in rows] == [
        (1, "h:9092", "up"), (3, "h:9096", "up"), (None, "h:9094", "down")]


def test_partitions_short_of_replicas_or_leaders_are_counted():
    metadata = _metadata({1: 1, 2: 2, 3: 3}, [
        (1, [1, 2, 3], [1, 2, 3]), (2, [1, 2, 3], [2, 3]), (-1, [1, 2, 3], [])])
    assert partition_health(metadata) == {"partitions": 3, "under_replicated": 2,
                                          "offline": 1}


def test_three_brokers_are_three_voters_on_interleaved_ports():
    nodes = replicated.kafka_nodes(3, 19092, 19093)
    assert [(n.name, n.node_id, n.port, n.controller_port) for n in nodes] == [
        ("kafka-1", 1, 19092, 19093), ("kafka-2", 2, 19094, 19095),
        ("kafka-3", 3, 19096, 19097)]
    assert replicated.voters("h", nodes) == "1@h:19093,2@h:19095,3@h:19097"
    properties = replicated.kafka_properties("h", nodes[1], nodes)
    for line in ("node.id=2", "min.insync.replicas=2", "default.replication.factor=3",
                 "offsets.topic.replication.factor=3", "unclean.leader.election.enable=false"):
        assert line in properties.splitlines()
    assert [n.name for n in replicated.kafka_nodes(1, 19092, 19093)] == ["kafka"]


def test_replicated_redis_is_a_primary_two_replicas_and_three_sentinels():
    nodes = replicated.redis_nodes(True, 16379, 16479)
    assert [(n.name, n.kind, n.port) for n in nodes] == [
        ("redis-1", "redis", 16379), ("redis-2", "redis", 16380), ("redis-3", "redis", 16381),
        ("sentinel-1", "sentinel", 16479), ("sentinel-2", "sentinel", 16480),
        ("sentinel-3", "sentinel", 16481)]
    url = replicated.sentinel_url("h", nodes)
    assert url == "redis+sentinel://h:16479,h:16480,h:16481/mapreduce/0"
    assert redis_client.parse(url).wait_replicas == 1
    assert "replicaof h 16379" in replicated.redis_replica_lines("h", 16379, is_primary=False)
    assert "replicaof" not in replicated.redis_replica_lines("h", 16379, is_primary=True)


def test_a_cluster_keeps_the_shape_it_was_made_with(tmp_path):
    from mapreduce_kafka.services.client import api
    from mapreduce_kafka.services.localcluster.cluster import LocalCluster
    from mapreduce_kafka.shared.errors import ClusterError

    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "brokers").write_text("1")
    assert LocalCluster(tmp_path, brokers=3).brokers == 1  # what is on disk wins
    with pytest.raises(ClusterError, match="has 1 broker"):
        api.connect(home=tmp_path, brokers=3)
    with pytest.raises(ClusterError, match="cannot be combined"):
        LocalCluster(tmp_path / "other", secure=True, brokers=3)
