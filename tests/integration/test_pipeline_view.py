"""The pipelines view on the real broker: a change applied while looking up another
pipeline's spec is still reported by the next poll (found in CI: a refused spec read that
way was never failed, and its submitter waited forever)."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import pytest
from confluent_kafka import Producer
from structlog.testing import capture_logs

from mapreduce_kafka.services.runtime.pipeline_view import PipelineView, _running_in
from mapreduce_kafka.services.runtime.producer import OutputProducer
from mapreduce_kafka.shared import kafka, topics
from mapreduce_kafka.shared.codec import Envelope, Kind, dump_spec
from mapreduce_kafka.shared.spec import PipelineCode, spec_from_module
from mapreduce_kafka.shared.store import Store, keys

pytestmark = pytest.mark.integration


def announce(settings, producer: OutputProducer, pipeline_id: str, payload: bytes) -> None:
    producer.send(topics.PIPELINES, payload, Envelope(Kind.ANNOUNCED, pipeline_id),
                  key=pipeline_id.encode(),
                  signature=settings.spec_policy().sign(pipeline_id, payload))


def test_changes_read_during_a_spec_lookup_reach_the_next_poll(pool):
    view = PipelineView(pool)
    try:
        view.catch_up()
        first, second = (f"view-test-{uuid.uuid4().hex[:8]}" for _ in range(2))
        producer = OutputProducer(pool)
        announce(pool, producer, first, b"not a pickle, refused or not it is a change")
        announce(pool, producer, second, dump_spec({"a": "spec"}))
        producer.flush()
        # Looking up `second` (unknown so far) reads the topic, `first` included. Neither is
        # a pipeline spec: each is kept with the reason (workers fail them, and go on).
        assert view.spec(second) is None
        assert view.entries[second].error == "not a pipeline spec: a dict"
        assert "cannot be unpickled" in view.entries[first].error
        assert {first, second} <= view.poll()
        assert view.poll() == set()  # reported once
    finally:
        view.close()


def test_the_tombstone_of_an_id_whose_announcement_was_refused_is_still_reported(pool):
    """A dispatcher restarted after a pipeline ended refuses its announcement (the id has
    ended, says Redis); the tombstone that follows must still reach it, or the pipeline's
    topics are never deleted."""
    ended = f"view-test-{uuid.uuid4().hex[:8]}"
    view = PipelineView(pool, has_ended=lambda pipeline_id: pipeline_id == ended)
    try:
        view.catch_up()
        producer = OutputProducer(pool)
        announce(pool, producer, ended, dump_spec({"a": "spec"}))
        producer.flush()
        # (the pool's dispatcher, which fails this spec, may tombstone it first)
        changed = view.catch_up()
        assert ended not in view.entries and "has ended" in view.refused[ended]
        producer.send(topics.PIPELINES, None, key=ended.encode())
        producer.flush()
        changed |= view.catch_up()
        assert ended in changed
        producer.send(topics.PIPELINES, None, key=ended.encode())  # another: no change
        producer.flush()
        assert view.catch_up() == set()
    finally:
        view.close()


def test_a_tombstone_is_reported_after_a_lookup_found_only_a_skipped_announcement(
        cluster, fixed_topics):
    """A dispatcher restarted after a pipeline ended, before its cleanup, skips the
    announcement in the history it reads at start (Redis says the pipeline ended). A
    record of the pipeline makes it look the spec up, find none, and deem the pipeline
    finished. It then cleans the pipeline up itself: the tombstone it writes must still be
    a change, or the pipeline's topics are left until the next restart (found by the
    crash-point suite, at `dispatcher.after_source_mark`). (Redis says "done": workers of
    the session pass the id by, so no tombstone of theirs races this one.)"""
    ended = f"view-test-{uuid.uuid4().hex[:8]}"
    Store(cluster.redis_url).redis.hset(keys.pipeline(ended), "state", "done")
    producer = OutputProducer(cluster)
    announce(cluster, producer, ended, dump_spec({"a": "spec"}))
    producer.flush()
    view = PipelineView(cluster, has_ended=lambda pipeline_id: pipeline_id == ended)
    try:
        assert view.spec(ended) is None  # the history's announcement skipped: finished
        assert ended in view.finished and ended not in view.entries
        assert ended not in view.poll()
        producer.send(topics.PIPELINES, None, key=ended.encode())
        producer.flush()
        assert ended in view.catch_up()
        producer.send(topics.PIPELINES, None, key=ended.encode())  # again: no change
        producer.flush()
        assert ended not in view.catch_up()
    finally:
        view.close()


@pytest.fixture
def fixed_topics(cluster):
    kafka.ensure_topics(kafka.admin(cluster), kafka.fixed_topics(cluster))


def _old_spec(pipeline_id: str, age_s: float) -> bytes:
    code = PipelineCode.from_functions(mapper=lambda line: [(line, 1)],
                                       reducer=lambda key, values: sum(values))
    spec = spec_from_module(code.namespace, pipeline_id=pipeline_id, fmt="text", partitions=1,
                            output_dir="/nonexistent", source_partitions=1, where="test")
    return dump_spec(replace(spec, created=time.time() - age_s))


def test_the_spec_age_is_checked_at_admission_only(cluster, fixed_topics):
    """A job may outlive the spec age limit: the READY record of a pipeline that is running
    loads in a fresh view (a worker restarted after a day); an announcement that old, or the
    READY record of an id that is not running, is a replay and refused. (Redis says "done"
    for the three ids, unlike this view's `is_running`: workers of the session pass them by
    without failing them, so no tombstone races this view.)"""
    running, both, announced, replayed = (f"view-age-{uuid.uuid4().hex[:8]}"
                                          for _ in range(4))
    store = Store(cluster.redis_url)
    producer = OutputProducer(cluster)
    payloads = {pid: _old_spec(pid, 2 * cluster.spec_max_age_s)
                for pid in (running, both, announced, replayed)}
    # `both`: its announcement not yet compacted away, then its READY record
    for pid, kind in ((running, Kind.READY), (both, Kind.ANNOUNCED), (both, Kind.READY),
                      (announced, Kind.ANNOUNCED), (replayed, Kind.READY)):
        store.redis.hset(keys.pipeline(pid), "state", "done")
        payload = payloads[pid]
        producer.send(topics.PIPELINES, payload, Envelope(kind, pid), key=pid.encode(),
                      signature=cluster.spec_policy().sign(pid, payload))
    producer.flush()
    view = PipelineView(cluster, is_running=lambda pid: pid in (running, both))
    try:
        view.catch_up()
        for pid in (running, both):
            spec = view.spec(pid)
            assert spec is not None and spec.pipeline_id == pid
            assert pid in view.ready_ids() and pid not in view.refused
        assert view.spec(announced) is None and "spec age limit" in view.refused[announced]
        assert view.spec(replayed) is None and "spec age limit" in view.refused[replayed]
    finally:
        view.close()


def test_running_is_redis_word(cluster):
    """The view's default question to Redis: admitted and not ended."""
    store = Store(cluster.redis_url)
    pid = f"view-running-{uuid.uuid4().hex[:8]}"
    is_running = _running_in(cluster.redis_url)
    assert not is_running(pid)
    assert store.create_pipeline(pid, {"name": "t"})
    assert not is_running(pid)  # submitted, not admitted
    store.update_pipeline(pid, state="running")
    assert is_running(pid)
    store.finish_pipeline(pid, "failed", "test over")
    assert not is_running(pid)


def test_a_record_whose_key_is_not_utf8_is_dropped(cluster, fixed_topics):
    """PIPELINES is compacted, so such a record stays: every worker that starts meets it,
    and must go on past it."""
    raw = Producer(cluster.producer_config())
    raw.produce(topics.PIPELINES, value=b"junk", key=b"\xff\xfe-not-utf8")
    raw.flush(10)
    after = f"view-after-junk-{uuid.uuid4().hex[:8]}"
    producer = OutputProducer(cluster)
    announce(cluster, producer, after, dump_spec({"a": "spec"}))
    producer.flush()
    view = PipelineView(cluster)
    try:
        with capture_logs() as logs:
            assert after in view.catch_up()
        assert any(entry["event"] == "pipelines record whose key is not UTF-8 dropped"
                   for entry in logs)
    finally:
        view.close()
