"""An output directory's `_SUCCESS` names the pipeline that wrote it: a pipeline never
takes another's finished output for its own."""

from __future__ import annotations

import pytest

from mapreduce_kafka.shared import output


def finished(out, pipeline_id: str) -> None:
    staging = output.staging_dir(out, pipeline_id)
    output.write_part(staging, 0, [(pipeline_id, 1)])
    output.finalize(staging, out, pipeline_id)


def test_success_names_the_pipeline_and_a_replay_of_it_is_harmless(tmp_path):
    out = tmp_path / "out"
    finished(out, "first")
    assert output.finished_by(out) == "first"
    late = output.staging_dir(out, "first")
    output.write_part(late, 0, [("late", 1)])  # a zombie sink's late part
    output.finalize(late, out, "first")
    assert not late.exists() and output.read_output(out) == [("first", 1)]


def test_another_pipelines_finished_output_is_not_taken_for_this_ones(tmp_path):
    out = tmp_path / "out"
    mine = output.staging_dir(out, "second")
    output.write_part(mine, 0, [("second", 2)])
    finished(out, "first")  # finished by another job while this one ran
    with pytest.raises(output.ForeignOutput, match="finished by pipeline 'first'"):
        output.finalize(mine, out, "second")
    assert output.read_output(out) == [("first", 1)] and output.finished_by(out) == "first"


def test_an_empty_success_names_no_pipeline(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / output.SUCCESS).write_bytes(b"")
    assert output.finished_by(out) == ""
    assert output.finished_by(tmp_path / "missing") is None
    with pytest.raises(output.ForeignOutput, match="finished by another job"):
        output.finalize(output.staging_dir(out, "p"), out, "p")


def test_a_topic_records_key_is_the_pipelines_own():
    assert output.topic_key("p", ["a", 1]) == b'["p",["a",1]]'
    assert output.topic_key("p", "w") != output.topic_key("q", "w")  # no compaction across
    assert output.topic_result("p", output.topic_key("p", "w"), b"3") == ("w", 3)
    assert output.topic_result("q", output.topic_key("p", "w"), b"3") is None
    assert output.topic_result("p", output.success_key("p"), b"{}") is None
    assert output.success_key("p") != output.success_key("q")
    for foreign in (b'"w"', b"not json", b'{"p": 1, "x": 2}', b'["p"]', None):
        assert output.topic_result("p", foreign, b"1") is None


def test_a_key_that_may_repeat_is_keyed_apart_by_its_part_and_line():
    first, second = output.topic_key("p", "w", (0, 1)), output.topic_key("p", "w", (0, 2))
    assert first == b'["p","w",0,1]' and first != second
    assert output.topic_result("p", first, b"3") == ("w", 3)
    assert output.topic_result("q", first, b"3") is None
