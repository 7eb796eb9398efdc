"""Pipelines of several steps: the pure parts (the spec's steps, the frames one step hands
the next, the envelope's step, what a job at a later step waits on, the inline runner)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mapreduce_kafka import Step
from mapreduce_kafka.services.client import reference
from mapreduce_kafka.services.client.inline import run_inline
from mapreduce_kafka.shared import liveness
from mapreduce_kafka.shared.barrier import Stage, stage_totals, status_totals
from mapreduce_kafka.shared.codec import (
    CodecError,
    Envelope,
    Kind,
    decode_records,
    pair_frames,
    step_frame_seq,
)
from mapreduce_kafka.shared.errors import PipelineDefinitionError
from mapreduce_kafka.shared.spec import PipelineCode, spec_from_module


def spec_of(namespace, fmt: str = "text"):
    return spec_from_module(namespace, pipeline_id="t", fmt=fmt, partitions=2,
                            output_dir="-", source_partitions=1, where="p.py")


def words(line):
    for word in line.split():
        yield word, 1


def count(word, ones):
    return sum(ones)


def by_count(pair):
    word, n = pair
    yield n, word


def test_steps_resolve_each_steps_functions_and_records():
    spec = spec_of(SimpleNamespace(steps=[Step(mapper=words, reducer=count),
                                          Step(mapper=by_count), Step(reducer=count)]))
    assert spec.step_count == 3 and spec.step == 0 and not spec.last_step
    assert spec.mapper is words and spec.fmt == "text"
    second, third = spec.at_step(1), spec.at_step(2)
    assert second.mapper is by_count and second.map_only and second.record_format == "pairs"
    assert third.last_step and third.reducer is count
    assert list(third.mapper(("w", 3))) == [("w", 3)], "a step without a mapper passes on"
    assert third.at_step(0).mapper is words and third.at_step(0).record_format == "text"
    with pytest.raises(ValueError, match="no step 3"):
        spec.at_step(3)


def test_a_one_step_module_is_unchanged():
    spec = spec_of(SimpleNamespace(mapper=words, reducer=count))
    assert spec.step_count == 1 and spec.last_step and spec.steps == ()


@pytest.mark.parametrize(("namespace", "message"), [
    (SimpleNamespace(steps=[Step(mapper=words)], reducer=count), "both `steps` and"),
    (SimpleNamespace(steps=[]), "non-empty list of Step"),
    (SimpleNamespace(steps=[words]), "non-empty list of Step"),
    (SimpleNamespace(steps=[Step(reducer=count)]), "step 1 defines no `mapper"),
    (SimpleNamespace(steps=[Step(mapper=words), Step(combiner=count)]),
     "step 2 defines a `combiner` but no `reducer`"),
    (SimpleNamespace(steps=[Step(mapper=words),
                            Step(map_chunk=lambda data: [])]), "map_chunk\\(data\\)` reads text"),
])
def test_a_badly_made_list_of_steps_is_named(namespace, message):
    with pytest.raises(PipelineDefinitionError, match=message):
        spec_of(namespace)


def test_a_step_hands_the_next_the_same_frames_for_the_same_pairs():
    pairs = [(("a", 1), [1, 2]), ("b", {"x": None}), (3, "c" * 50)]
    frames = list(pair_frames(pairs, 30))
    assert frames == list(pair_frames(pairs, 30)) and len(frames) == 3
    records = [r for frame in frames for r in decode_records(frame, "pairs")]
    assert records == [(("a", 1), [1, 2]), ("b", {"x": None}), (3, "c" * 50)]
    assert len(list(pair_frames(pairs, 1 << 20))) == 1
    assert step_frame_seq(0, 5) == 5 and step_frame_seq(2, 0) == 2 << 32
    with pytest.raises(CodecError):
        step_frame_seq(1, 1 << 32)


def test_the_envelope_carries_a_later_step_and_step_zero_as_before():
    first = Envelope(Kind.RECORDS, "p", seq=3)
    assert "mr-t" not in dict(first.headers())
    later = Envelope(Kind.STREAM_ENDED, "p", step=2)
    assert Envelope.from_headers(later.headers()) == later
    assert Envelope.from_headers(first.headers()).step == 0


def test_a_later_step_waits_on_its_own_stages_with_its_input_complete():
    totals = stage_totals(source=4, partitions=2, shuffle=3, map_only=False)
    ended, at_step = liveness.at_step(1, {Stage.MAP: 2}, totals)
    assert liveness.waiting_on(ended, at_step) is Stage.SHUFFLE
    assert liveness.handoff_into(Stage.MAP, at_step) is Stage.SOURCE
    assert liveness.describe(ended, at_step, step=1, steps=3).startswith("step 2/3: shuffle")
    info = {"source_partitions": "4", "partitions": "2", "shuffle_partitions": "3",
            "map_only": "0,1,0"}
    assert Stage.SHUFFLE not in status_totals(info, 1)
    assert Stage.SHUFFLE in status_totals(info, 2) and Stage.SHUFFLE in status_totals(info)


def test_inline_and_the_oracle_run_every_step(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("a b a\nc a b\n")
    code = PipelineCode.from_functions(steps=[Step(mapper=words, reducer=count),
                                              Step(mapper=by_count, reducer=sorted_words)])
    result = run_inline(code, [text], tmp_path / "out", partitions=1)
    assert result.pairs == [(1, ["c"]), (2, ["b"]), (3, ["a"])]
    expected = reference.run_sequential(spec_of(code.namespace), [text])
    assert reference.compare(expected, result.pairs).equal


def sorted_words(n, found):
    return sorted(found)
