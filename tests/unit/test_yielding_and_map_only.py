"""Reducers and combiners that yield pairs, and map-only pipelines: the pure parts (the spec's
calls, the oracle, the inline runner's parts, what a map-only pipeline waits on)."""

from __future__ import annotations

import pytest

from mapreduce_kafka.services.client import reference
from mapreduce_kafka.services.client.inline import run_inline
from mapreduce_kafka.shared import liveness, output
from mapreduce_kafka.shared.barrier import Stage, stage_totals, status_totals
from mapreduce_kafka.shared.codec import decode_records, key_order
from mapreduce_kafka.shared.spec import PipelineCode, combined_values, spec_from_module


def spec_of(code: PipelineCode, partitions: int = 2):
    return spec_from_module(code.namespace, pipeline_id="t", fmt="text",
                            partitions=partitions, output_dir="-", source_partitions=1,
                            where=code.name)


def words(line):
    for word in line.split():
        yield word, 1


def count(key, values):
    return sum(values)


def rekey_by_length(key, values):
    """Exploding and re-keying: one pair per value, keyed by the word's length."""
    total = sum(values)
    yield len(key), key
    if total > 1:
        yield "repeated", [key, total]


def keep_if_repeated(key, values):
    if sum(values) > 1:
        yield key, sum(values)


def test_a_returning_reducer_gives_one_pair_for_its_key():
    spec = spec_of(PipelineCode.from_functions(mapper=words, reducer=count))
    assert spec.reduce_key("a", [1, 2]) == [["a", 3]]


def test_a_yielding_reducer_gives_its_pairs_with_any_keys():
    spec = spec_of(PipelineCode.from_functions(mapper=words, reducer=rekey_by_length))
    assert spec.reduce_key("abc", [1, 1]) == [[3, "abc"], ["repeated", ["abc", 2]]]
    assert spec.reduce_key("ab", [1]) == [[2, "ab"]]
    filtering = spec_of(PipelineCode.from_functions(mapper=words, reducer=keep_if_repeated))
    assert filtering.reduce_key("x", [1]) == []


def test_a_yielding_reducer_that_yields_no_pair_is_the_pipelines_error():
    def bad(key, values):
        yield key

    spec = spec_of(PipelineCode.from_functions(mapper=words, reducer=bad))
    with pytest.raises(TypeError, match=r"must yield \(key, value\) pairs, not str"):
        spec.reduce_key("abc", [1])


def test_a_yielding_combiner_keeps_its_own_keys_values_and_refuses_another_key():
    def partial_sums(key, values):
        yield key, sum(values[:1])
        yield key, sum(values[1:])

    assert combined_values(partial_sums("a", [1, 2, 3]), "a") == [1, 5]
    with pytest.raises(ValueError, match="for its own key only"):
        combined_values(iter_pairs("b"), "a")

    def moving(key, values):
        yield "elsewhere", sum(values)

    spec = spec_of(PipelineCode.from_functions(mapper=words, reducer=count, combiner=moving))
    letters: list = []
    groups = spec.map_frame(["a a"], lambda *args: letters.append(args))
    assert groups == {"a": [1, 1]}, "a combiner that fails keeps the values it was given"
    assert letters and letters[0][0] == "combiner"


def iter_pairs(key):
    yield key, 1


def test_map_pairs_keeps_order_and_duplicates():
    spec = spec_of(PipelineCode.from_functions(mapper=words))
    assert spec.map_only
    frame = b"b a\na b\n"
    assert spec.map_pairs(frame, lambda data: decode_records(data, "text")) == [
        ["b", 1], ["a", 1], ["a", 1], ["b", 1]]


def test_map_pairs_reports_a_bad_record_and_keeps_the_others():
    def picky(line):
        if line == "bad":
            raise ValueError("poison")
        yield line, len(line)

    spec = spec_of(PipelineCode.from_functions(mapper=picky))
    letters: list = []
    pairs = spec.map_pairs(b"ok\nbad\nfine\n", lambda data: decode_records(data, "text"),
                           lambda *args: letters.append(args))
    assert pairs == [["ok", 2], ["fine", 4]]
    assert [(role, at) for role, at, *_ in letters] == [("mapper", 1)]


def test_map_pairs_falls_back_from_map_chunk_to_the_mapper():
    def map_chunk(data):
        raise RuntimeError("not today")

    spec = spec_of(PipelineCode.from_functions(mapper=words, map_chunk=map_chunk))
    assert spec.map_pairs(b"x y\n", lambda data: decode_records(data, "text")) == [
        ["x", 1], ["y", 1]]


def test_arrays_sort_element_by_element_as_numbers():
    units = [(12, 0, 0), (2, 0, 1), (2, 0, 0), (2, 1, 0)]
    assert sorted(units, key=key_order) == [(2, 0, 0), (2, 0, 1), (2, 1, 0), (12, 0, 0)]
    assert sorted(["b", 3, ("a",), None], key=key_order) == ["b", 3, ("a",), None]


def test_the_oracle_gives_a_yielding_reducers_pairs(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("to be or not to be\nab\n")
    spec = spec_of(PipelineCode.from_functions(mapper=words, reducer=rekey_by_length))
    expected = reference.run_sequential(spec, [text])
    assert sorted(expected, key=lambda kv: (key_order(kv[0]), key_order(kv[1]))) == [
        ("repeated", ["be", 2]), ("repeated", ["to", 2]), (2, "ab"), (2, "be"), (2, "or"),
        (2, "to"), (3, "not")]


def test_pairs_compare_as_multisets_where_keys_repeat():
    expected = [("k", 1), ("k", 1), ("j", 2)]
    assert reference.compare(expected, [("j", 2), ("k", 1), ("k", 1)]).equal
    short = reference.compare(expected, [("k", 1), ("j", 2)])
    assert short.missing == [["k", 1]] and not short.unexpected
    extra = reference.compare(expected, [("k", 1), ("k", 1), ("k", 1), ("j", 2)])
    assert extra.unexpected == [["k", 1]] and not extra.equal


def test_inline_writes_a_yielding_reducers_units_in_key_order(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("to be or not to be\n")
    code = PipelineCode.from_functions(mapper=words, reducer=rekey_by_length)
    result = run_inline(code, [text], tmp_path / "out", partitions=1)
    # units in the order of the keys they came from (be, not, or, to), pairs as yielded
    assert result.pairs == [(2, "be"), ("repeated", ["be", 2]), (3, "not"), (2, "or"),
                            (2, "to"), ("repeated", ["to", 2])]
    assert output.read_output(tmp_path / "out") == [
        (2, "be"), ("repeated", ["be", 2]), (3, "not"), (2, "or"), (2, "to"),
        ("repeated", ["to", 2])]
    with pytest.raises(ValueError, match="read `.pairs`"):
        _ = result.results


def test_inline_map_only_keeps_input_order_per_part(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("b a\na b\n")
    result = run_inline(PipelineCode.from_functions(mapper=words), [text], tmp_path / "out",
                        partitions=3)
    assert result.pairs == [("b", 1), ("a", 1), ("a", 1), ("b", 1)]
    assert [p.name for p in sorted((tmp_path / "out").glob("part-*"))] == [
        "part-00000", "part-00001", "part-00002"]  # one frame: all in part 0, two empty
    assert (tmp_path / "out" / "part-00001").read_text() == ""
    assert output.read_output(tmp_path / "out") == result.pairs


def test_a_map_only_pipeline_waits_on_map_then_the_sink():
    totals = stage_totals(source=1, partitions=2, shuffle=4, map_only=True)
    assert list(totals) == [Stage.SOURCE, Stage.MAP, Stage.SINK]
    assert liveness.waiting_on({Stage.SOURCE: 1, Stage.MAP: 2}, totals) is Stage.SINK
    assert liveness.handoff_into(Stage.SINK, totals) is Stage.MAP
    full = stage_totals(source=1, partitions=2, shuffle=4, map_only=False)
    assert liveness.handoff_into(Stage.SINK, full) is Stage.REDUCE
    assert liveness.waiting_on({Stage.SOURCE: 1, Stage.MAP: 2}, full) is Stage.SHUFFLE
    assert status_totals({"source_partitions": "1", "partitions": "2",
                          "shuffle_partitions": "4", "map_only": "1"}) == totals
