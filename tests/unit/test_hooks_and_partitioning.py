"""Hooks per task, partitioners and sorted values as the spec defines them, and the
bookkeeping of reduce tasks (pure: no Kafka, no Redis)."""

from __future__ import annotations

import functools

import pytest

from mapreduce_kafka.services.runtime.reduce_tasks import ReduceTask, ReduceTasks
from mapreduce_kafka.shared.errors import PipelineDefinitionError
from mapreduce_kafka.shared.spec import Step, spec_from_module
from tests.unit.specs import spec_from_functions

spec_of = functools.partial(spec_from_functions, 3)


def words(line):
    for word in line.split():
        yield word, 1


def total(_key, counts):
    return sum(counts)


def test_mapper_hooks_run_around_each_frame_and_final_pairs_join_its_output():
    seen = []
    spec = spec_of(mapper_init=lambda: seen.append("init"), mapper=words,
                   mapper_final=lambda: [("frames", 1)], reducer=total)
    groups = spec.map_data(b"a b a\n", lambda data: data.decode().splitlines())
    assert groups == {"a": [1, 1], "b": [1], "frames": [1]}
    assert seen == ["init"]
    assert spec.map_pairs(b"x\n", lambda data: data.decode().splitlines()) == [
        ["x", 1], ["frames", 1]]


def test_a_failing_mapper_init_dead_letters_the_frame_and_a_failing_final_only_itself():
    letters = []

    def broken():
        raise RuntimeError("no")

    spec = spec_of(mapper_init=broken, mapper=words, reducer=total)
    assert spec.map_data(b"a\n", lambda d: d.decode().splitlines(),
                         lambda *e: letters.append(e[:2])) == {}
    assert letters == [("mapper", "frame")]
    letters.clear()
    spec = spec_of(mapper=words, mapper_final=broken, reducer=total)
    assert spec.map_data(b"a\n", lambda d: d.decode().splitlines(),
                         lambda *e: letters.append(e[:2])) == {"a": [1]}
    assert letters == [("mapper", "final")]


def test_combiner_hooks_and_final_pairs():
    state = {}

    def combiner(key, values):
        state[key] = sum(values)
        return state[key]

    spec = spec_of(mapper=words, combiner=combiner, combiner_init=state.clear,
                   combiner_final=lambda: [("combined", len(state))], reducer=total)
    assert spec.map_data(b"a a b b c\n", lambda d: d.decode().splitlines()) == {
        "a": [2], "b": [2], "c": [1], "combined": [2]}  # c had one value: not combined


def test_a_combiner_final_that_yields_no_pairs_is_reported():
    letters = []
    spec = spec_of(mapper=words, combiner=total, combiner_final=lambda: ["not a pair"],
                   reducer=total)
    spec.map_data(b"a a\n", lambda d: d.decode().splitlines(), lambda *e: letters.append(e))
    assert letters and letters[0][:2] == ("combiner", "final")


def test_the_partitioner_is_checked_and_the_default_is_a_hash():
    spec = spec_of(mapper=words, reducer=total, partitioner=lambda key, n: len(key) % n)
    assert spec.partition_of("abcd") == 1
    assert 0 <= spec_of(mapper=words, reducer=total).partition_of("abcd") < 3
    for wrong in (3, -1, "0", None, True):
        bad = spec_of(mapper=words, reducer=total, partitioner=lambda k, n, w=wrong: w)
        with pytest.raises(ValueError, match="a partition from 0 to 2"):
            bad.partition_of("a")


def test_sorted_values_reach_the_reducer_in_order_mixed_types_too():
    spec = spec_of(mapper=words, reducer=lambda key, values: values, sort_values=True)
    assert spec.reduce_key("k", [3, 1, 2]) == [["k", [1, 2, 3]]]
    assert spec.reduce_key("k", [[2, "b"], [1, "z"]]) == [["k", [[1, "z"], [2, "b"]]]]
    assert spec.reduce_key("k", ["b", 2, "a", 1]) == [["k", ["a", "b", 1, 2]]]
    unsorted = spec_of(mapper=words, reducer=lambda key, values: values)
    assert unsorted.reduce_key("k", [3, 1, 2]) == [["k", [3, 1, 2]]]


@pytest.mark.parametrize("functions, message", [
    ({"mapper": words, "reducer_final": lambda: []}, "reducer hooks but no `reducer`"),
    ({"mapper": words, "reducer": total, "combiner_init": lambda: None},
     "combiner hooks but no `combiner`"),
    ({"mapper": words, "reducer": total, "sort_values": "yes"}, "True or False"),
    ({"mapper": words, "partitioner": lambda k, n: 0}, "no `reducer`"),
    ({"mapper": words, "reducer": total, "partitioner": lambda k: 0}, "2 positional"),
    ({"mapper": words, "reducer": total, "mapper_final": lambda x: x}, "0 positional"),
    ({"mapper": words, "reducer": total, "total_order": True,
      "partitioner": lambda k, n: 0}, "only the first"),
    ({"steps": [Step(mapper=words, reducer=total), Step(reducer=total, total_order=True)]},
     "only the first"),
    ({"mapper": words, "total_order": True}, "no `reducer`"),
])
def test_hooks_and_options_are_checked_at_submission(functions, message):
    with pytest.raises(PipelineDefinitionError, match=message):
        spec_of(**functions)


def test_steps_carry_their_own_hooks_and_options():
    module = type("M", (), {"steps": [
        Step(mapper=words, reducer=total),
        Step(reducer=lambda key, values: values, sort_values=True,
             reducer_final=lambda: [("end", 1)]),
    ]})
    spec = spec_from_module(module, pipeline_id="t", fmt="text", partitions=2,
                            output_dir="-", source_partitions=1, where="test")
    assert not spec.sort_values and not spec.reduce_tasks and not spec.keys_may_repeat
    later = spec.at_step(1)
    assert later.sort_values and later.reduce_tasks and later.keys_may_repeat
    assert not later.sends_units  # a returning reducer's results stay [key, value]


def test_reduce_tasks_hold_their_first_offsets_until_they_end():
    tasks = ReduceTasks()
    spec = spec_of(mapper=words, reducer=total)
    tasks.add("p", 0, 1, ReduceTask(spec, ("REDUCE---p", 1), 5))
    tasks.add("p", 1, 1, ReduceTask(spec, ("REDUCE---p", 1), 9))
    tasks.add("q", 0, 0, ReduceTask(spec, ("REDUCE---q", 0), 2))
    assert tasks.held_offsets() == {("REDUCE---p", 1): 5, ("REDUCE---q", 0): 2}
    assert tasks.pop("p", 0, 1) is not None
    assert tasks.held_offsets()[("REDUCE---p", 1)] == 9
    assert tasks.drop(lambda where: where[0] == "REDUCE---q") == 1
    assert tasks.held_offsets() == {("REDUCE---p", 1): 9}


def test_a_task_reduces_each_key_once():
    task = ReduceTask(spec_of(mapper=words, reducer=total), ("REDUCE---p", 0), 0)
    assert task.first_time(b'"a"') and task.first_time(b'"b"')
    assert not task.first_time(b'"a"')
