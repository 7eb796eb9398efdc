"""Counters and parameters as user code sees them, and the task the framework runs it in."""

from __future__ import annotations

import pytest

from mapreduce_kafka import increment_counter, param, params
from mapreduce_kafka.shared import task_context
from mapreduce_kafka.shared.errors import PipelineDefinitionError
from mapreduce_kafka.shared.spec import checked_params, spec_from_module
from mapreduce_kafka.shared.store.counters import summed
from tests.unit.specs import spec_from_functions

spec_of = spec_from_functions


def test_counts_add_up_per_group_and_name_and_are_taken_once():
    with task_context.running({}) as task:
        increment_counter("lines", "all")
        increment_counter("lines", "all", 4)
        increment_counter("lines", "blank")
        increment_counter("words", "kept", 0)
        assert task.take() == {"lines": {"all": 5, "blank": 1}, "words": {"kept": 0}}
        assert task.take() == {}


def test_counting_outside_a_task_is_a_clear_error():
    with pytest.raises(RuntimeError, match="inside a mapper, combiner or reducer"):
        increment_counter("lines", "all")
    with pytest.raises(RuntimeError, match="param"):
        param("x")


@pytest.mark.parametrize("args", [(1, "name"), ("group", None), ("g", "n", 1.5),
                                  ("g", "n", True), ("g", "n", "2")])
def test_a_counter_is_named_by_strings_and_grows_by_ints(args):
    with task_context.running({}), pytest.raises(TypeError):
        increment_counter(*args)


def test_parameters_are_read_by_name_with_a_default_and_copied_whole():
    with task_context.running({"date": "2026-12-01"}):
        assert param("date") == "2026-12-01"
        assert param("missing", "fallback") == "fallback"
        with pytest.raises(KeyError, match="--param missing=VALUE"):
            param("missing")
        copy = params()
        copy["date"] = "changed"
        assert param("date") == "2026-12-01"


def test_tasks_nest_and_each_keeps_its_own_counts():
    with task_context.running({"a": "1"}) as outer:
        increment_counter("g", "outer")
        with task_context.running({"a": "2"}) as inner:
            increment_counter("g", "inner")
            assert param("a") == "2"
        assert param("a") == "1"
    assert outer.take() == {"g": {"outer": 1}} and inner.take() == {"g": {"inner": 1}}


def test_merging_and_summing_counters():
    into = {"g": {"a": 1}}
    task_context.merge(into, {"g": {"a": 2, "b": 1}, "h": {"c": 3}})
    assert into == {"g": {"a": 3, "b": 1}, "h": {"c": 3}}
    total = task_context.total([{"z": {"b": 1, "a": 1}}, {"a": {"x": 2}}, {"z": {"a": 1}}])
    assert total == {"a": {"x": 2}, "z": {"a": 2, "b": 1}}
    assert list(total) == ["a", "z"] and list(total["z"]) == ["a", "b"]
    assert summed({b"m0:1": b'{"g":{"a":1}}', b"r0:0": b'{"g":{"a":2}}'}) == {"g": {"a": 3}}


def test_a_frame_mapped_again_after_map_chunk_raised_counts_once():
    def map_chunk(data):
        for line in data.splitlines():
            increment_counter("lines", "seen")
            if b"bad" in line:
                raise ValueError("bad line")
            yield line.decode(), 1

    def mapper(line):
        increment_counter("lines", "seen")
        yield line, 1

    spec = spec_of(map_chunk=map_chunk, mapper=mapper, reducer=lambda k, vs: sum(vs))
    letters = []
    with task_context.running({}) as task:
        increment_counter("before", "frame")  # the task's earlier counts survive
        spec.map_data(b"one\ntwo\nbad\nfour\n", lambda data: data.decode().splitlines(),
                      lambda *args: letters.append(args))
        assert task.take() == {"before": {"frame": 1}, "lines": {"seen": 4}}
    assert not letters  # the per-record mapper mapped every line


def test_map_batch_fallback_forgets_what_the_failed_forms_counted():
    def map_chunk(data):
        increment_counter("forms", "chunk")
        raise ValueError("no")

    def map_batch(records):
        increment_counter("forms", "batch")
        raise ValueError("no")

    def mapper(record):
        increment_counter("forms", "record")
        yield record, 1

    spec = spec_of(map_chunk=map_chunk, map_batch=map_batch, mapper=mapper,
                   reducer=lambda k, vs: sum(vs))
    with task_context.running({}) as task:
        spec.map_data(b"a\nb\n", lambda data: data.decode().splitlines(), lambda *a: None)
        assert task.take() == {"forms": {"record": 2}}


@pytest.mark.parametrize("bad", [{"": "x"}, {"a=b": "x"}, {" a": "x"}, {"a": 1},
                                 {3: "x"}])
def test_bad_parameters_are_refused_at_submission(bad):
    with pytest.raises(PipelineDefinitionError, match="parameter"):
        checked_params(bad)


def test_parameters_ride_in_the_spec():
    module = type("M", (), {"mapper": lambda line: [(line, 1)]})
    spec = spec_from_module(module, pipeline_id="t", fmt="text", partitions=1,
                            output_dir="-", source_partitions=1, where="test",
                            params={"date": "2026-12-01"})
    assert spec.params == {"date": "2026-12-01"}
    assert spec.at_step(0).params == spec.params


def test_the_command_lines_params_are_name_value_pairs_given_once():
    import click

    from mapreduce_kafka.services.cli import _parse_params

    assert _parse_params(None, None, ("a=1", "b=x=y", "c=")) == {"a": "1", "b": "x=y", "c": ""}
    for bad in (("novalue",), ("=1",), ("a=1", "a=2")):
        with pytest.raises(click.BadParameter):
            _parse_params(None, None, bad)


def test_shipped_files_are_written_once_per_process_and_removed_with_their_job(tmp_path):
    from mapreduce_kafka import side_file
    from mapreduce_kafka.shared import side_files

    files = side_files.SideFiles("job-1-abc", {"a.txt": b"alpha", "b.bin": b"\x00\x01"})
    with task_context.running({}, files):
        path = side_file("a.txt")
        assert path.read_bytes() == b"alpha" and side_file("b.bin").read_bytes() == b"\x00\x01"
        path.write_bytes(b"changed")  # not written again within the process
        assert side_file("a.txt").read_bytes() == b"changed"
        with pytest.raises(FileNotFoundError, match="ships no file 'c.txt'"):
            side_file("c.txt")
    side_files.forget({"another-job"})
    assert not path.exists()
    with task_context.running({}), pytest.raises(FileNotFoundError, match="ships no files"):
        side_file("a.txt")


def test_files_to_ship_must_exist_and_have_distinct_names(tmp_path):
    from mapreduce_kafka.shared import side_files
    from mapreduce_kafka.shared.errors import InputError

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f.txt").write_text("1")
    (tmp_path / "f.txt").write_text("2")
    assert side_files.checked([tmp_path / "f.txt"]) == {"f.txt": b"2"}
    with pytest.raises(InputError, match="no such file"):
        side_files.checked([tmp_path / "missing"])
    with pytest.raises(InputError, match="shipped already"):
        side_files.checked([tmp_path / "f.txt", tmp_path / "x" / "f.txt"])
