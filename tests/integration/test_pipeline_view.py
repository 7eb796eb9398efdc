"""The pipelines view on the real broker: a change applied while looking up another
pipeline's spec is still reported by the next poll (found in CI: a refused spec read that
way was never failed, and its submitter waited forever)."""

from __future__ import annotations

import uuid

import pytest

from mapreduce_kafka.services.runtime.pipeline_view import PipelineView
from mapreduce_kafka.services.runtime.producer import OutputProducer
from mapreduce_kafka.shared import topics
from mapreduce_kafka.shared.codec import Envelope, Kind, dump_spec

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
