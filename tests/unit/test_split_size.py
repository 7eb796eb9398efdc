"""Chunk boundaries follow the signed spec: a compressed split (or a topic range) is cut into
pieces of the submitter's split size, whatever MAPREDUCE_SPLIT_BYTES the mapper runs with,
so that a replay on another host tags the same keys with the same (frame, chunk)."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from mapreduce_kafka.services.client import source
from mapreduce_kafka.services.roles.mapper import Mapper
from mapreduce_kafka.shared.codec import Envelope, Kind, Split
from mapreduce_kafka.shared.inputs import split_size
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.spec import PipelineCode, spec_from_module

BASE = Settings("localhost:1", "redis://localhost:1", insecure_specs=True)


def _pieces(spec_split: int, worker_split: int, path: Path) -> list[bytes]:
    stat = path.stat()
    code = PipelineCode.from_functions(mapper=lambda line: [(line, 1)],
                                       reducer=lambda key, values: sum(values))
    spec = replace(spec_from_module(code.namespace, pipeline_id="p", fmt="text", partitions=1,
                                    output_dir="/out", source_partitions=1, where="t"),
                   input_files={str(path): (stat.st_size, stat.st_mtime_ns)},
                   split_bytes=spec_split)
    split = Split(str(path), 0, stat.st_size, stat.st_size, stat.st_mtime_ns)
    mapper = SimpleNamespace(rt=SimpleNamespace(settings=BASE.with_(split_bytes=worker_split)),
                             _ranges=None)
    return [frame for frame, _origin in Mapper._frames(
        mapper, spec, Envelope(Kind.SPLIT, "p", seq=0),  # type: ignore[arg-type]
        split.encode(), lambda *_: None)]


@settings(max_examples=25, deadline=None)
@given(lines=st.lists(st.text("abcdef ", min_size=0, max_size=300), min_size=100,
                      max_size=200),
       spec_split=st.integers(64, 4096), workers=st.lists(st.integers(64, 1024), min_size=2,
                                                          max_size=2, unique=True))
def test_a_compressed_split_is_cut_by_the_spec_not_the_worker(tmp_path_factory, lines,
                                                              spec_split, workers):
    path = tmp_path_factory.mktemp("split") / "in.txt.gz"
    path.write_bytes(gzip.compress("".join(f"{line}\n" for line in lines).encode()))
    first, second = (_pieces(spec_split, own, path) for own in workers)
    # the cut the spec's size makes, whatever size the worker runs with
    assert first == second == _pieces(0, spec_split, path)
    assert b"".join(first).decode() == "".join(f"{line}\n" for line in lines)


def test_two_workers_that_would_cut_differently_cut_the_same(tmp_path):
    """The case that shows the property above could fail: the workers' own sizes cut this
    split differently, the spec's size makes them agree."""
    path = tmp_path / "in.txt.gz"
    path.write_bytes(gzip.compress(b"".join(b"line %d\n" % i for i in range(2000))))
    assert _pieces(0, 1024, path) != _pieces(0, 8192, path)
    assert _pieces(4096, 1024, path) == _pieces(4096, 8192, path) == _pieces(0, 4096, path)


def test_a_spec_without_a_split_size_falls_back_to_the_worker(tmp_path):
    assert split_size(0, 4096) == 4096 and split_size(1024, 4096) == 1024
    path = tmp_path / "in.txt.gz"
    path.write_bytes(gzip.compress(b"".join(b"line %d\n" % i for i in range(2000))))
    assert len(_pieces(0, 1024, path)) > len(_pieces(0, 8192, path))


def test_the_submitter_signs_its_split_size(tmp_path):
    (tmp_path / "in.txt").write_text("a b\n")
    job = source.Job(PipelineCode.from_functions(mapper=lambda line: [(line, 1)],
                                                 reducer=lambda key, values: sum(values)),
                     [tmp_path / "in.txt"], tmp_path / "out")
    source.prepare(job, BASE.with_(split_bytes=12345))
    assert job.spec is not None and job.spec.split_bytes == 12345


def test_workers_are_started_with_the_split_size():
    assert BASE.with_(split_bytes=4321).env()["MAPREDUCE_SPLIT_BYTES"] == "4321"
