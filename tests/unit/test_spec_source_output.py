"""Pure pieces of the source and the sink: pipeline loading, input discovery, framing,
atomic output, comparison with the sequential run."""

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapreduce_kafka.services.client import reference, source
from mapreduce_kafka.shared import inputs, output
from mapreduce_kafka.shared.codec import decode_records
from mapreduce_kafka.shared.errors import InputError, PipelineDefinitionError
from mapreduce_kafka.shared.spec import load_module, spec_from_module

REPO = Path(__file__).resolve().parents[2]


def spec_of(path, **kw):
    args = dict(pipeline_id="p", fmt="text", partitions=2, output_dir="/tmp/o",
                source_partitions=4, where=Path(path).name)
    args.update(kw)
    return spec_from_module(load_module(path), **args)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_missing_pipeline_file(tmp_path):
    with pytest.raises(PipelineDefinitionError, match="not found"):
        load_module(tmp_path / "nope.py")


def test_a_pipeline_without_a_reducer_is_map_only(tmp_path):
    assert spec_of(write(tmp_path, "p.py", "def mapper(r):\n    yield r, 1\n")).map_only
    assert not spec_of(REPO / "pipelines" / "wordcount.py").map_only


def test_a_combiner_without_a_reducer_is_refused(tmp_path):
    path = write(tmp_path, "p.py", "def mapper(r):\n    yield r, 1\n"
                                   "def combiner(k, vs):\n    return sum(vs)\n")
    with pytest.raises(PipelineDefinitionError, match=r"`combiner` but no `reducer`"):
        spec_of(path)


def test_pipeline_with_neither_mapper_nor_map_batch(tmp_path):
    path = write(tmp_path, "p.py", "def reducer(k, v):\n    return 1\n")
    with pytest.raises(PipelineDefinitionError, match=r"no `mapper\(record\)`"):
        spec_of(path)
    with pytest.raises(PipelineDefinitionError,
                       match=r"nor `map_batch\(records\)` or `map_chunk\(data\)`"):
        spec_of(path)


def test_pipeline_with_wrong_arity(tmp_path):
    path = write(tmp_path, "p.py", "def mapper():\n    pass\ndef reducer(k, v):\n    pass\n")
    with pytest.raises(PipelineDefinitionError, match="1 positional"):
        spec_of(path)


def test_pipeline_that_fails_to_import(tmp_path):
    path = write(tmp_path, "p.py", "import no_such_module_here\n")
    with pytest.raises(PipelineDefinitionError, match="ModuleNotFoundError"):
        spec_of(path)


def test_selectors_and_combiner_are_used_by_map_frame(tmp_path):
    path = write(tmp_path, "p.py", (
        "def mapper(r):\n    yield {'k': r, 'v': 2}\n"
        "def key_selector(i):\n    return i['k']\n"
        "def value_selector(i):\n    return i['v']\n"
        "def combiner(k, vs):\n    return sum(vs)\n"
        "def reducer(k, vs):\n    return sum(vs)\n"))
    spec = spec_of(path)
    assert spec.map_frame(["a", "b", "a"]) == {"a": [4], "b": [2]}


def test_input_files_directory_sorted_and_filtered(tmp_path):
    for name in ("b.txt", "a.txt", ".hidden", "_SUCCESS"):
        write(tmp_path, name, "x\n")
    assert [p.name for p in inputs.input_files([tmp_path])] == ["a.txt", "b.txt"]
    with pytest.raises(InputError, match="does not exist"):
        inputs.input_files([tmp_path / "missing"])
    with pytest.raises(InputError, match="no input files"):
        empty = tmp_path / "empty"
        empty.mkdir()
        inputs.input_files([empty])


def test_missing_output_parents_are_created(tmp_path):
    source.check_output(tmp_path / "a" / "b" / "out")
    assert (tmp_path / "a" / "b").is_dir() and not (tmp_path / "a" / "b" / "out").exists()


def test_existing_output_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    source.check_output(tmp_path / "out")  # empty directory is fine
    write(tmp_path / "out", "part-00000", "")
    with pytest.raises(InputError, match="already exists"):
        source.check_output(tmp_path / "out")


def test_frames_hold_whole_lines_and_lose_nothing(tmp_path):
    text = "".join(f"line {i} {'x' * (i % 37)}\n" for i in range(2000)) + "no newline at end"
    path = write(tmp_path, "in.txt", text)
    frames = list(inputs.frames([path], 1000, "text"))
    assert all(f.endswith(b"\n") for f in frames)
    assert b"".join(frames).decode() == text + "\n"


def test_bad_jsonl_line_is_reported_with_its_number(tmp_path):
    path = write(tmp_path, "in.jsonl", '{"a": 1}\n{"a": 2}\n{oops\n')
    with pytest.raises(InputError, match="line 3 is not valid JSON"):
        list(inputs.frames([path], 1 << 20, "jsonl"))


def test_oversized_record_names_the_limit(tmp_path):
    path = write(tmp_path, "big.txt", "x" * (inputs.MAX_RECORD_BYTES + 10) + "\n")
    with pytest.raises(InputError, match=str(inputs.MAX_RECORD_BYTES)):
        list(inputs.frames([path], 64 * 1024, "text"))


def test_output_is_all_or_nothing(tmp_path):
    out = tmp_path / "result"
    staging = output.staging_dir(out, "p")
    output.write_part(staging, 1, [("b", 2)])
    output.write_part(staging, 0, sorted({"z": 1, "a": 3}.items()))
    assert not out.exists()
    output.finalize(staging, out, "p")
    output.finalize(staging, out, "p")  # a replay after a crash is harmless
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "part-00000", "part-00001"]
    assert output.read_output(out) == [("a", 3), ("z", 1), ("b", 2)]


def test_key_order_handles_mixed_key_types():
    # ordered by JSON text: '"a"' < '1' < '[1,2]'
    from mapreduce_kafka.shared.codec import key_order

    assert sorted([1, "a", (1, 2), 0.5], key=key_order) == ["a", 0.5, 1, (1, 2)]


def test_reference_and_compare(tmp_path):
    spec = spec_of(REPO / "pipelines" / "wordcount.py")
    path = write(tmp_path, "in.txt", "a b a\nc\n")
    expected = reference.run_sequential(spec, [path])
    assert dict(expected) == {"a": 2, "b": 1, "c": 1} and len(expected) == 3
    assert reference.compare(expected, [("a", 2), ("b", 1), ("c", 1)]).equal
    bad = reference.compare(expected, [("a", 3), ("b", 1), ("b", 1), ("x", 1)])
    assert bad.missing == ["c"] and bad.duplicated == ["b"] and bad.unexpected == ["x"]
    assert bad.different == [("a", 2, 3)]
    assert "1 missing" in bad.summary()


BATCH_AND_RECORD = (
    "def mapper(r):\n"
    "    if r == 'bad':\n        raise ValueError('poison')\n"
    "    yield r, 1\n"
    "def map_batch(rs):\n"
    "    if 'bad' in rs:\n        raise ValueError('poison in batch')\n"
    "    return [(r, 10) for r in rs]\n"  # 10, not 1: shows which path ran
    "def reducer(k, vs):\n    return sum(vs)\n")


def test_map_batch_is_used_when_present(tmp_path):
    spec = spec_of(write(tmp_path, "p.py", BATCH_AND_RECORD))
    assert spec.map_frame(["a", "b", "a"]) == {"a": [10, 10], "b": [10]}


def test_a_raising_map_batch_falls_back_to_mapper_to_isolate_the_bad_record(tmp_path):
    spec = spec_of(write(tmp_path, "p.py", BATCH_AND_RECORD))
    errors = []
    groups = spec.map_frame(["a", "bad", "a"], lambda *e: errors.append(e[:3]))
    assert groups == {"a": [1, 1]}
    assert errors == [("mapper", 1, "bad")]


def test_a_raising_map_batch_without_mapper_reports_the_frame(tmp_path):
    spec = spec_of(write(tmp_path, "p.py", (
        "def map_batch(rs):\n    raise ValueError('no')\n"
        "def reducer(k, vs):\n    return sum(vs)\n")))
    errors = []
    assert spec.map_frame(["a", "b"], lambda *e: errors.append(e[:3])) == {}
    assert errors == [("mapper", "frame", ["a", "b"])]
    with pytest.raises(ValueError, match="no"):
        spec.map_frame(["a"])


def test_oracle_checks_map_batch_against_mapper(tmp_path):
    """The sequential oracle maps with `mapper`: a map_batch that disagrees is caught."""
    text = write(tmp_path, "in.txt", "x y\nx\n")
    spec = spec_of(write(tmp_path, "p.py", BATCH_AND_RECORD))
    assert dict(reference.run_sequential(spec, [text])) == {"x y": 1, "x": 1}
    batch_only = spec_of(write(tmp_path, "q.py", (
        "def map_batch(rs):\n    return [(r, 10) for r in rs]\n"
        "def reducer(k, vs):\n    return sum(vs)\n")))
    assert dict(reference.run_sequential(batch_only, [text])) == {"x y": 10, "x": 10}


def test_the_combiner_may_run_zero_times_for_a_single_value(tmp_path):
    """Hadoop's contract: a key with one value is passed on without calling the combiner
    (whose result must be of the same kind as the values anyway)."""
    spec = spec_of(write(tmp_path, "p.py", (
        "def mapper(r):\n    yield r, 1\n"
        "def combiner(k, vs):\n    return ('called', sum(vs))\n"
        "def reducer(k, vs):\n    return vs\n")))
    assert spec.map_frame(["a", "b", "a"]) == {"a": [("called", 2)], "b": [1]}


CHUNK_AND_RECORD = (
    "def mapper(r):\n"
    "    if r == 'bad':\n        raise ValueError('poison')\n"
    "    yield r, 1\n"
    "def map_chunk(data):\n"
    "    assert isinstance(data, bytes)\n"
    "    if b'bad' in data:\n        raise ValueError('poison in chunk')\n"
    "    return [(line.decode(), 100) for line in data.splitlines()]\n"  # 100: which path ran
    "def reducer(k, vs):\n    return sum(vs)\n")


def decode(data):
    return data.decode().splitlines()


def test_map_chunk_gets_the_frame_bytes_when_present(tmp_path):
    spec = spec_of(write(tmp_path, "p.py", CHUNK_AND_RECORD))
    assert spec.map_data(b"a\nb\na\n", decode) == {"a": [100, 100], "b": [100]}


def test_a_raising_map_chunk_falls_back_to_the_records(tmp_path):
    spec = spec_of(write(tmp_path, "p.py", CHUNK_AND_RECORD))
    errors = []
    groups = spec.map_data(b"a\nbad\na\n", decode, lambda *e: errors.append(e[:3]))
    assert groups == {"a": [1, 1]}
    assert errors == [("mapper", 1, "bad")]


def test_a_raising_map_chunk_alone_reports_the_frame_as_records(tmp_path):
    spec = spec_of(write(tmp_path, "p.py", (
        "def map_chunk(data):\n    raise ValueError('no')\n"
        "def reducer(k, vs):\n    return sum(vs)\n")))
    errors = []
    assert spec.map_data(b"a\nb\n", decode, lambda *e: errors.append(e[:3])) == {}
    assert errors == [("mapper", "frame", ["a", "b"])]
    with pytest.raises(ValueError, match="no"):
        spec.map_data(b"a\n", decode)


def test_map_chunk_is_for_text_input_only(tmp_path):
    only_chunk = write(tmp_path, "c.py", (
        "def map_chunk(data):\n    return []\n"
        "def reducer(k, vs):\n    return sum(vs)\n"))
    with pytest.raises(PipelineDefinitionError, match="text input only"):
        spec_of(only_chunk, fmt="jsonl")
    both = spec_of(write(tmp_path, "p.py", CHUNK_AND_RECORD), fmt="jsonl")
    assert both.map_chunk is None and both.mapper is not None


def test_oracle_maps_a_chunk_only_pipeline_with_map_chunk(tmp_path):
    text = write(tmp_path, "in.txt", "x y\nx\n")
    spec = spec_of(write(tmp_path, "p.py", (
        "def map_chunk(data):\n    return [(w.decode(), 1) for w in data.split()]\n"
        "def reducer(k, vs):\n    return sum(vs)\n")))
    assert dict(reference.run_sequential(spec, [text])) == {"x": 2, "y": 1}


def test_wordcount_map_chunk_agrees_with_its_mapper_on_the_samples():
    spec = spec_of(REPO / "pipelines/wordcount.py")
    data = sorted((REPO / "pipelines/samples/text").iterdir())[0].read_bytes()
    per_record = replace(spec, map_chunk=None)
    assert spec.map_data(data, lambda d: decode_records(d, "text")) == \
        per_record.map_data(data, lambda d: decode_records(d, "text"))


@settings(max_examples=300)
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_wordcount_map_chunk_agrees_with_its_mapper_on_any_bytes(data):
    """Any bytes, invalid UTF-8 included: the tokens are the regex's on the decoded text."""
    spec = spec_of(REPO / "pipelines/wordcount.py")
    records = decode_records(data + b"\n", "text")
    expected = replace(spec, map_chunk=None).map_frame(records)
    assert spec.map_data(data + b"\n", lambda d: decode_records(d, "text")) == expected
