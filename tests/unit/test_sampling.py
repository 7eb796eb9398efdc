"""Sampling a job's keys for a total order across parts (shared/sampling.py)."""

from __future__ import annotations

import gzip

from mapreduce_kafka.shared import sampling
from mapreduce_kafka.shared.codec import key_order
from mapreduce_kafka.shared.spec import spec_from_module


def test_pieces_are_whole_lines_from_across_every_file(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"".join(b"line %06d\n" % i for i in range(100_000)))  # 1.1 MB
    small = tmp_path / "small.txt"
    small.write_bytes(b"alpha\nbeta")  # no newline at its end
    packed = tmp_path / "packed.gz"
    packed.write_bytes(gzip.compress(b"zeta\neta\n"))
    pieces = list(sampling.pieces([big, small, packed], count=8, piece_bytes=4096))
    assert all(p.endswith(b"\n") for p in pieces)
    lines = [line for p in pieces for line in p.splitlines()]
    assert all(line.startswith(b"line ") or line in (b"alpha", b"beta", b"zeta", b"eta")
               for line in lines)
    numbers = [int(line[5:]) for line in lines if line.startswith(b"line ")]
    assert min(numbers) == 0 and max(numbers) > 80_000  # from its start to near its end
    assert b"beta" in lines and b"eta" in lines


def test_boundaries_cut_the_sorted_sample_in_equal_ranges():
    keys = [f"k{i:03d}" for i in range(100)] * 3
    cut = sampling.boundaries(keys, 4)
    assert cut == ("k025", "k050", "k075")
    starts = [key_order(b) for b in cut]
    assert [sampling.part_of(k, starts) for k in ("k000", "k024", "k025", "k074", "k099")] == [
        0, 0, 1, 2, 3]
    assert sampling.boundaries(keys, 1) == () and sampling.boundaries([], 4) == ()
    mixed = sampling.boundaries([3, "b", [1, 2], 1.5, "a"], 2)  # key_order across types
    assert len(mixed) == 1


def test_a_total_order_spec_partitions_by_its_sampled_boundaries(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("".join(f"{i:05d} payload\n" for i in range(5000)))
    module = type("M", (), {"mapper": lambda line: [(line[:5], 1)],
                            "reducer": lambda k, vs: sum(vs), "total_order": True})
    spec = spec_from_module(module, pipeline_id="t", fmt="text", partitions=5,
                            output_dir="-", source_partitions=1, where="test")
    sampled = sampling.with_boundaries(spec, [path])
    assert sampled.boundaries == ("01000", "02000", "03000", "04000")
    assert [sampled.partition_of(k) for k in ("00000", "00999", "01000", "04999")] == [
        0, 0, 1, 4]


def test_a_topic_input_cannot_be_sampled_for_a_total_order():
    import pytest

    from mapreduce_kafka.shared.errors import InputError

    module = type("M", (), {"mapper": lambda line: [(line, 1)],
                            "reducer": lambda k, vs: sum(vs), "total_order": True})
    spec = spec_from_module(module, pipeline_id="t", fmt="text", partitions=2,
                            output_dir="-", source_partitions=1, where="test")
    with pytest.raises(InputError, match="kafka: input cannot be sampled"):
        sampling.with_boundaries(spec, [], topics=1)
