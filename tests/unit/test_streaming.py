"""Hadoop Streaming's lines as the framework carries them, sorted as Hadoop sorts them,
through commands, and the reporter lines by which commands and mrjob jobs count."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapreduce_kafka.services.cli import job_arguments
from mapreduce_kafka.shared import output, streaming, task_context
from mapreduce_kafka.shared.errors import PipelineDefinitionError
from mapreduce_kafka.shared.streaming_steps import command_code

lines = st.binary(max_size=40).filter(lambda line: b"\n" not in line)


@given(lines)
def test_any_line_goes_through_a_pair_and_back_unchanged(line):
    key, value = streaming.pair_of(line)
    assert streaming.line_of(key, value) == line
    assert (value is None) == (b"\t" not in line)
    assert output.decode_line(output.encode_line(key, value, "lines"), "lines") == (key, value)


@given(st.lists(lines, max_size=30))
def test_text_order_of_keys_is_byte_order(batch):
    keys = [streaming.pair_of(line)[0] for line in batch]
    assert sorted(keys) == [k.decode("latin-1") for k in sorted(k.encode("latin-1")
                                                                for k in keys)]


def test_a_line_splits_at_its_first_tab_only():
    assert streaming.pair_of(b"k\tv\tw") == ("k", "v\tw")
    assert streaming.pair_of(b"k\t") == ("k", "")
    assert streaming.pair_of(b"alone") == ("alone", None)
    with pytest.raises(TypeError, match="texts"):
        streaming.line_of(1, "x")


def test_input_chunks_become_lines_without_newlines_or_carriage_returns():
    assert streaming.lines_of(b"a\r\nb\n\nc") == [b"a", b"b", b"", b"c"]
    assert streaming.lines_of(b"") == []


def test_sorting_is_by_key_keeping_arrival_order_unless_values_are_sorted_too():
    arrived = [b"b\t2", b"a\t9", b"b\t1", b"a\t1"]
    assert streaming.sorted_lines(arrived, False) == [b"a\t9", b"a\t1", b"b\t2", b"b\t1"]
    assert streaming.sorted_lines(arrived, True) == [b"a\t1", b"a\t9", b"b\t1", b"b\t2"]


def test_reporter_lines_count_and_the_rest_passes_on():
    with task_context.running({}) as task:
        rest = streaming.report(b"reporter:counter:g,n,2\nnoise\nreporter:counter:g,n,3\n"
                                b"reporter:status:halfway\nreporter:counter:bad\n")
        assert task.take() == {"g": {"n": 5}}
    assert rest == b"noise\nreporter:counter:bad\n"


def test_an_mrjob_job_writing_its_stderr_in_pieces_is_read_by_line(capfdbinary):
    with task_context.running({}) as task:
        reporter = streaming.Reporter()
        reporter.write(b"reporter:counter:a,b")
        reporter.write(b",7\nplain ")
        reporter.write("text\n")
        assert task.take() == {"a": {"b": 7}}
    assert capfdbinary.readouterr().err == b"plain text\n"


def test_a_command_maps_lines_and_counts_through_its_stderr():
    with task_context.running({}) as task:
        out = streaming.run_command(
            ["sh", "-c", "tr a-z A-Z; echo reporter:counter:cmd,lines,2 >&2"], [b"a\tb", b"c"])
        assert task.take() == {"cmd": {"lines": 2}}
    assert out == [b"A\tB", b"C"]


def test_a_failing_or_missing_command_is_one_clear_error():
    with pytest.raises(streaming.CommandFailed, match="exited with status 4: last words"):
        streaming.run_command(["sh", "-c", "echo first >&2; echo last words >&2; exit 4"], [])
    with pytest.raises(streaming.CommandFailed, match="cannot run `no-such-command-here`"):
        streaming.run_command(["no-such-command-here"], [b"x"])
    with pytest.raises(streaming.CommandFailed, match="empty"):
        streaming.command_argv("  ")


def test_command_jobs_are_checked_before_anything_is_sent():
    with pytest.raises(PipelineDefinitionError, match="--combiner-cmd needs --reducer-cmd"):
        command_code("cat", combiner="cat")
    with pytest.raises(PipelineDefinitionError, match="--reducer-cmd 'sort \"'"):
        command_code("cat", reducer='sort "')
    code = command_code("cat", reducer="uniq -c")
    assert code.output_format == "lines" and code.reads_lines


def test_what_follows_the_double_dash_of_run_and_submit_is_the_jobs_own():
    assert job_arguments(["run", "x.py", "-o", "y", "--", "-e", "z"]) == [
        "run", "x.py", "-o", "y", "--job-arg=-e", "--job-arg=z"]
    assert job_arguments(["status", "--", "x"]) == ["status", "--", "x"]
    assert job_arguments(["run", "x.py"]) == ["run", "x.py"]


def test_a_streaming_job_writes_its_lines_reads_text_and_ships_its_own_files():
    from dataclasses import replace

    code = replace(command_code("cat"), side_files={"stop.txt": b"the\n"})
    assert code.settled("text", "jsonl", {"more.txt": b"x"}) == (
        "lines", {"stop.txt": b"the\n", "more.txt": b"x"})
    with pytest.raises(PipelineDefinitionError, match="drop --format jsonl"):
        code.settled("jsonl", "jsonl", None)
    with pytest.raises(PipelineDefinitionError, match="ships 'stop.txt' itself"):
        code.settled("text", "jsonl", {"stop.txt": b"other"})


def test_pipes_is_provided_where_python_removed_it(monkeypatch):
    import importlib.util
    import shlex
    import sys

    from mapreduce_kafka.shared import legacy_modules

    monkeypatch.delitem(sys.modules, "pipes", raising=False)
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "pipes" else found(name, *rest))
    legacy_modules.provide_pipes()
    assert sys.modules["pipes"].quote is shlex.quote
    monkeypatch.delitem(sys.modules, "pipes")
