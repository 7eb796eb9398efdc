"""The group-per-pipeline state machine, driven by events alone: no Kafka."""

import pytest

from mapreduce_kafka.shared.pipeline_groups import (
    Assigned,
    Close,
    Closed,
    Drain,
    Drained,
    InvalidEvent,
    Open,
    PipelineGroups,
    PipelinesChanged,
    State,
    Transitioned,
)


def actions(commands):
    return [c for c in commands if not isinstance(c, Transitioned)]


def moves(commands):
    return [(c.pipeline, c.target) for c in commands if isinstance(c, Transitioned)]


def test_a_new_pipeline_gets_a_consumer_and_the_others_are_untouched():
    groups = PipelineGroups()
    assert actions(groups.handle(PipelinesChanged(("a",)))) == [Open("a")]
    groups.handle(Assigned("a"))
    commands = groups.handle(PipelinesChanged(("a", "b")))
    assert actions(commands) == [Open("b")]
    assert moves(commands) == [("b", State.WAITING), ("b", State.JOINING)]
    assert groups.states == {"a": State.CONSUMING, "b": State.JOINING}


def test_a_finished_pipeline_is_drained_then_closed_and_forgotten():
    groups = PipelineGroups()
    groups.handle(PipelinesChanged(("a", "b")))
    groups.handle(Assigned("a"))
    assert actions(groups.handle(PipelinesChanged(("b",)))) == [Drain("a")]
    assert groups.states["a"] is State.DRAINING
    assert actions(groups.handle(Drained("a"))) == [Close("a")]
    assert moves(groups.handle(Closed("a"))) == [("a", State.CLOSED)]
    assert groups.states == {"b": State.JOINING}


def test_past_the_capacity_pipelines_wait_in_ready_order_for_a_free_slot():
    groups = PipelineGroups(capacity=2)
    assert actions(groups.handle(PipelinesChanged(("a", "b", "c", "d")))) == [
        Open("a"), Open("b")]
    assert groups.states["c"] is State.WAITING and groups.holding() == 2
    groups.handle(PipelinesChanged(("b", "c", "d")))  # a finished
    assert groups.holding() == 2  # a still holds its consumer while it drains
    groups.handle(Drained("a"))
    assert actions(groups.handle(Closed("a"))) == [Open("c")]  # the oldest waiting one
    assert groups.states == {"b": State.JOINING, "c": State.JOINING, "d": State.WAITING}


def test_a_waiting_pipeline_that_ends_never_had_a_consumer_to_close():
    groups = PipelineGroups(capacity=1)
    groups.handle(PipelinesChanged(("a", "b")))
    commands = groups.handle(PipelinesChanged(("a",)))
    assert actions(commands) == [] and moves(commands) == [("b", State.CLOSED)]
    assert groups.states == {"a": State.JOINING}


def test_later_assignments_change_nothing():
    groups = PipelineGroups()
    groups.handle(PipelinesChanged(("a",)))
    assert moves(groups.handle(Assigned("a"))) == [("a", State.CONSUMING)]
    assert groups.handle(Assigned("a")) == []  # another worker joined the group


def test_events_out_of_order_are_a_bug():
    groups = PipelineGroups()
    groups.handle(PipelinesChanged(("a",)))
    with pytest.raises(InvalidEvent):
        groups.handle(Closed("a"))
    with pytest.raises(InvalidEvent):
        groups.handle(Drained("nope"))


def test_the_same_set_again_costs_nothing():
    groups = PipelineGroups()
    groups.handle(PipelinesChanged(("a", "b")))
    assert groups.handle(PipelinesChanged(("a", "b"))) == []
