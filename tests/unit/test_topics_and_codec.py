import pytest

from mapreduce_kafka.shared import topics
from mapreduce_kafka.shared.codec import (
    CodecError,
    Envelope,
    Kind,
    decode_items,
    decode_records,
    dump_spec,
    encode_items,
    load_spec,
    partition_for,
    split_by_size,
    split_lines,
)
from mapreduce_kafka.shared.errors import InvalidPipelineId


@pytest.mark.parametrize("good", ["wc", "word.count_2-x", "A" * topics.MAX_PIPELINE_ID])
def test_valid_pipeline_ids(good):
    assert topics.validate_pipeline_id(good) == good


@pytest.mark.parametrize("bad, fragment", [
    ("", "empty"), ("has space", "' '"), ("a/b", "'/'"), ("a---b", "reserved"),
    ("é", "'é'"), ("x" * (topics.MAX_PIPELINE_ID + 1), "at most"), ("..", "not a valid"),
])
def test_invalid_pipeline_ids_say_why(bad, fragment):
    with pytest.raises(InvalidPipelineId, match=fragment):
        topics.validate_pipeline_id(bad)


def test_topic_names_round_trip():
    assert topics.map_topic("p1") == "MAP---p1"
    assert topics.reduce_topic("p1") == "REDUCE---p1"
    assert len(topics.reduce_topic("a" * topics.MAX_PIPELINE_ID)) == 249


def test_envelope_round_trip_and_malformed_headers():
    env = Envelope(Kind.RECORDS, "p", seq=7, chunk=2, part=3)
    assert Envelope.from_headers(env.headers()) == env
    with pytest.raises(CodecError):
        Envelope.from_headers(None)
    with pytest.raises(CodecError):
        Envelope.from_headers([("mr-k", b"nonsense"), ("mr-p", b"p")])


def test_split_lines_keeps_empty_lines_and_strips_only_newline():
    assert split_lines(b"a\n\nb\r\n") == [b"a", b"", b"b\r"]
    assert split_lines(b"") == []


def test_decode_records_text_and_jsonl():
    assert decode_records(b"x y\n\xff\n", "text") == ["x y", "\ufffd"]
    assert decode_records(b'{"a": 1}\n\n[2]\n', "jsonl") == [{"a": 1}, [2]]
    with pytest.raises(CodecError):
        decode_records(b"x\n", "csv")


def test_items_round_trip_and_list_keys_become_tuples():
    data = encode_items([[("a", 1), [1, 2]], ["w", 3]])
    assert decode_items(data) == [(("a", 1), [1, 2]), ("w", 3)]


def test_non_json_values_are_a_clear_error():
    with pytest.raises(CodecError, match="JSON values"):
        encode_items([["k", {1, 2}]])


def test_partition_is_stable_and_in_range():
    # Fixed expectations: the partitioner must never change between versions or processes.
    assert [partition_for(k, 8) for k in ("the", "a", 17, ("x", 1))] == [
        partition_for(k, 8) for k in ("the", "a", 17, ["x", 1])]
    assert partition_for("the", 8) == 1011183078 % 8 == 6  # CRC-32 of b"the"
    assert all(0 <= partition_for(str(i), 5) < 5 for i in range(1000))


def test_split_by_size_bounds_chunks_and_keeps_everything():
    items = [[f"key{i}", "v" * 100] for i in range(1000)]
    chunks = list(split_by_size(items, 10_000))
    assert all(len(c) <= 10_000 for c in chunks) and len(chunks) > 1
    assert [list(kv) for c in chunks for kv in decode_items(c)] == items


def test_spec_travels_by_value(tmp_path):
    module_file = tmp_path / "userpipe.py"
    module_file.write_text("def mapper(r):\n    yield r, 1\n\ndef reducer(k, vs):\n"
                           "    return len(vs)\n")
    from mapreduce_kafka.shared.spec import load_module, spec_from_module

    module = load_module(module_file)
    spec = spec_from_module(module, pipeline_id="p", fmt="text", partitions=2,
                            output_dir="/tmp/x", source_partitions=4, where="userpipe.py")
    data = dump_spec(spec, [module])
    module_file.unlink()  # a worker never imports the user's file
    import sys

    del sys.modules[module.__name__]
    loaded = load_spec(data)
    assert list(loaded.mapper("w")) == [("w", 1)] and loaded.reducer("w", [1, 1]) == 2


def test_unloadable_spec_is_a_codec_error():
    with pytest.raises(CodecError, match="cannot be unpickled"):
        load_spec(b"not a pickle")


def test_split_reads_its_bytes_and_refuses_a_changed_or_missing_file(tmp_path):
    from mapreduce_kafka.shared.codec import CodecError, Split
    from mapreduce_kafka.shared.inputs import read_split

    def read(split: Split) -> bytes:
        return b"".join(frame for _offset, frame in read_split(split, 1 << 20))

    path = tmp_path / "in.txt"
    path.write_bytes(b"one\ntwo\nthree\n")
    stat = path.stat()
    split = Split(str(path), 4, 4, stat.st_size, stat.st_mtime_ns)
    assert Split.decode(split.encode()) == split
    assert read(split) == b"two\n"
    path.write_bytes(b"one\nTWO\nthree\nfour\n")
    with pytest.raises(CodecError, match="changed since it was submitted"):
        read(split)
    path.unlink()
    with pytest.raises(CodecError, match="--input-mode kafka"):
        read(split)
    with pytest.raises(CodecError, match="undecodable input split"):
        Split.decode(b"[1, 2]")


def test_a_compressed_split_is_its_whole_file_read_in_frames(tmp_path):
    import bz2
    import gzip
    import lzma

    import zstandard

    from mapreduce_kafka.shared.codec import Split
    from mapreduce_kafka.shared.inputs import read_split

    text = b"".join(b"line %d of the input\n" % i for i in range(5000))
    for name, compress in (("in.gz", gzip.compress), ("in.bz2", bz2.compress),
                           ("in.xz", lzma.compress),
                           ("in.zst", zstandard.ZstdCompressor().compress)):
        path = tmp_path / name
        path.write_bytes(compress(text))
        stat = path.stat()
        pieces = list(read_split(Split(str(path), 0, stat.st_size, stat.st_size,
                                       stat.st_mtime_ns), 16 * 1024))
        frames = [frame for _offset, frame in pieces]
        assert len(frames) > 1 and all(len(f) <= 16 * 1024 for f in frames), name
        assert b"".join(frames) == text, name
        # each piece's offset is where it starts in the decompressed text
        assert all(text[offset:offset + len(frame)] == frame for offset, frame in pieces)
