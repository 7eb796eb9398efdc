"""The resubscribe state machine, driven by events alone: no Kafka."""

import pytest

from mapreduce_kafka.shared.resubscribe import (
    NEXT,
    STEP_OF,
    GiveUp,
    InvalidEvent,
    Resubscription,
    RunStep,
    State,
    Step,
    StepFailed,
    StepSucceeded,
    TopicsChanged,
    Transitioned,
)

A, B, C = "MAP---a", "MAP---b", "MAP---c"


def steps(commands):
    return [c for c in commands if isinstance(c, RunStep)]


def transitions(commands):
    return [(c.source, c.target) for c in commands if isinstance(c, Transitioned)]


def succeed_until_consuming(machine, first_commands):
    """Feed StepSucceeded for every step asked for; return the steps in order."""
    performed, pending = [], steps(first_commands)
    while pending:
        step = pending.pop(0)
        performed.append(step)
        pending.extend(steps(machine.handle(StepSucceeded(step.step))))
    return performed


def test_full_cycle_goes_through_every_state_in_order():
    m = Resubscription()
    first = m.handle(TopicsChanged(frozenset({A})))
    assert transitions(first) == [(State.CONSUMING, State.DRAINING)]
    performed = succeed_until_consuming(m, first)
    assert [s.step for s in performed] == [Step.DRAIN, Step.CLOSE, Step.CONNECT, Step.SUBSCRIBE]
    assert performed[-1].topics == {A}
    assert m.state is State.CONSUMING and m.subscribed == {A}


def test_transition_table_is_the_documented_sequence():
    state, order = State.DRAINING, []
    while state is not State.CONSUMING:
        order.append(STEP_OF[state])
        state = NEXT[state]
    assert order == [Step.DRAIN, Step.CLOSE, Step.CONNECT, Step.SUBSCRIBE]


def test_unchanged_topics_cost_nothing():
    m = Resubscription()
    succeed_until_consuming(m, m.handle(TopicsChanged(frozenset({A}))))
    assert m.handle(TopicsChanged(frozenset({A}))) == []


def test_failed_step_is_retried_from_that_step_not_from_the_start():
    m = Resubscription(max_attempts=3)
    commands = m.handle(TopicsChanged(frozenset({A})))
    commands = m.handle(StepSucceeded(Step.DRAIN))
    commands = m.handle(StepSucceeded(Step.CLOSE))
    assert steps(commands)[0].step is Step.CONNECT
    retry = m.handle(StepFailed(Step.CONNECT, "broker down"))
    assert retry == [RunStep(Step.CONNECT, 2, frozenset({A}))]
    assert m.state is State.CONNECTING
    after = m.handle(StepSucceeded(Step.CONNECT))
    assert steps(after)[0] == RunStep(Step.SUBSCRIBE, 1, frozenset({A}))  # attempts reset


def test_gives_up_after_max_attempts():
    m = Resubscription(max_attempts=2)
    m.handle(TopicsChanged(frozenset({A})))
    assert steps(m.handle(StepFailed(Step.DRAIN, "x")))[0].attempt == 2
    final = m.handle(StepFailed(Step.DRAIN, "y"))
    assert GiveUp(Step.DRAIN, "y") in final
    assert m.state is State.FAILED
    assert m.handle(TopicsChanged(frozenset({B}))) == []


def test_changes_during_a_cycle_are_coalesced_into_it():
    m = Resubscription()
    first = m.handle(TopicsChanged(frozenset({A})))
    assert m.handle(TopicsChanged(frozenset({A, B}))) == []  # mid-cycle: no new cycle
    assert m.handle(TopicsChanged(frozenset({A, B, C}))) == []
    performed = succeed_until_consuming(m, first)
    assert len(performed) == 4  # one cycle for three announcements
    assert performed[-1].topics == {A, B, C}
    assert m.subscribed == {A, B, C}


def test_change_after_subscribe_started_runs_one_more_cycle():
    m = Resubscription()
    m.handle(TopicsChanged(frozenset({A})))
    m.handle(StepSucceeded(Step.DRAIN))
    m.handle(StepSucceeded(Step.CLOSE))
    subscribe = steps(m.handle(StepSucceeded(Step.CONNECT)))[0]
    assert subscribe.topics == {A}
    m.handle(TopicsChanged(frozenset({A, B})))  # arrives while SUBSCRIBE {A} is under way
    again = m.handle(StepSucceeded(Step.SUBSCRIBE))
    assert m.subscribed == {A}
    assert steps(again)[0].step is Step.DRAIN
    performed = succeed_until_consuming(m, again)
    assert performed[-1].topics == {A, B} and m.subscribed == {A, B}


def test_event_for_the_wrong_step_is_a_bug():
    m = Resubscription()
    m.handle(TopicsChanged(frozenset({A})))
    with pytest.raises(InvalidEvent):
        m.handle(StepSucceeded(Step.SUBSCRIBE))


def test_removing_every_topic_is_a_change_too():
    m = Resubscription()
    succeed_until_consuming(m, m.handle(TopicsChanged(frozenset({A}))))
    performed = succeed_until_consuming(m, m.handle(TopicsChanged(frozenset())))
    assert performed[-1].topics == frozenset() and m.subscribed == frozenset()


def test_what_a_pipeline_waits_on_reads_like_a_sentence():
    from mapreduce_kafka.shared import liveness
    from mapreduce_kafka.shared.barrier import FLOW, Stage

    totals = dict.fromkeys(FLOW, 4)
    assert liveness.describe({Stage.SOURCE: 1}, totals) == (
        "the source's stream (1/4 partitions ended)")
    assert liveness.describe({Stage.SOURCE: 4, Stage.MAP: 2}, totals, mapped=7, frames=9) == (
        "map (2/4 partitions ended, 7/9 frames mapped)")
    assert liveness.describe(dict.fromkeys(FLOW, 4), totals) == (
        "the sink to finalize the output")
    assert liveness.describe({}, {}) == "starting"


def test_a_stall_is_reported_once_per_period_and_progress_resets_it():
    from mapreduce_kafka.shared.liveness import StallWatch

    watch = StallWatch(stall_s=10)
    assert not watch.stalled("p", (1, 2), now=0)
    assert not watch.stalled("p", (1, 2), now=9)
    assert watch.stalled("p", (1, 2), now=10)
    assert not watch.stalled("p", (1, 2), now=15)  # the clock restarted at the repair
    assert watch.stalled("p", (1, 2), now=20)
    assert not watch.stalled("p", (1, 3), now=29)  # progress
    assert not watch.stalled("p", (1, 3), now=38)
    watch.forget(set())
    assert not watch.stalled("p", (1, 3), now=100)  # forgotten: a fresh start


def test_a_stall_names_the_input_partitions_no_live_worker_holds():
    from mapreduce_kafka.shared import liveness
    from mapreduce_kafka.shared.barrier import FLOW, Stage

    totals = {**dict.fromkeys(FLOW, 2), Stage.SHUFFLE: 3}
    assert liveness.stage_input(Stage.MAP, "p1", totals) == ["MAP---p1[0]", "MAP---p1[1]"]
    assert liveness.stage_input(Stage.SHUFFLE, "p1", totals) == [
        "SHUFFLE[0]", "SHUFFLE[1]", "SHUFFLE[2]"]
    assert liveness.stage_input(Stage.REDUCE, "p1", totals) == [
        "REDUCE---p1[0]", "REDUCE---p1[1]"]
    # the source's stream and the sink's finalizing are not read from partitions held alone
    assert liveness.stage_input(Stage.SOURCE, "p1", totals) == []
    assert liveness.stage_input(liveness.FINALIZE, "p1", totals) == []
    held = {"MAP---p1[1]", "MAP---p2[0]", "SHUFFLE[0]"}
    assert liveness.unheld(liveness.stage_input(Stage.MAP, "p1", totals), held) == [
        "MAP---p1[0]"]
    assert liveness.unheld(["MAP---p1[1]"], held) == []
