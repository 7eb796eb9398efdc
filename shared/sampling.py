"""A total order across output parts (Hadoop's TotalOrderPartitioner): keys are sampled
from the job's input when it is submitted, by mapping a few evenly spaced pieces of it,
and the sorted sample is cut into as many ranges as the job has partitions. Part i then
holds the keys of range i: every key of part-00000 sorts before every key of part-00001
(in codec.key_order, the order part files are sorted in). The boundaries travel in the
signed spec, so every shuffler cuts the same way. Deterministic: the same input and
pipeline give the same boundaries (the inline runner's parts equal the cluster's)."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from mapreduce_kafka.shared.codec import decode_records, key_order
from mapreduce_kafka.shared.errors import InputError
from mapreduce_kafka.shared.inputs import compression, open_input

PIECES = 64  # pieces of the input mapped for the sample
PIECE_BYTES = 64 * 1024


def pieces(files: list[Path], count: int = PIECES,
           piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
    """Whole lines from about `count` evenly spaced places of the input, each file getting
    its share by size (a compressed file: its first piece, where a reader cannot seek)."""
    sizes = [path.stat().st_size for path in files]
    total = sum(sizes)
    for path, size in zip(files, sizes, strict=True):
        if size == 0:
            continue
        if compression(path):
            with open_input(path) as f:
                data = f.read(piece_bytes)
            yield data[:data.rfind(b"\n") + 1]
            continue
        share = max(1, min(-(-size // piece_bytes), round(count * size / total)))
        with open(path, "rb") as f:
            for index in range(share):
                offset = index * size // share
                f.seek(offset)
                data = f.read(piece_bytes + 1)
                if offset > 0:  # a piece starts after the line it lands in
                    data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
                if offset + len(data) >= size and not data.endswith(b"\n") and data:
                    data += b"\n"  # the file's last line, without a newline
                end = data.rfind(b"\n", 0, piece_bytes + 1)
                if end >= 0:
                    yield data[:end + 1]


def boundaries(keys: list[Any], partitions: int) -> tuple[Any, ...]:
    """The keys that start parts 1..partitions-1 of a sample's sorted distinct keys."""
    if partitions <= 1:
        return ()
    ordered = sorted({key_order(key): key for key in keys}.items())
    if not ordered:
        return ()
    return tuple(ordered[len(ordered) * part // partitions][1]
                 for part in range(1, partitions))


def part_of(key: Any, starts: list[Any]) -> int:
    """The part of a key among parts starting at `starts` (boundaries' key_order)."""
    return bisect.bisect_right(starts, key_order(key))


def sample_keys(spec: Any, files: list[Path]) -> list[Any]:
    """The keys the step's mapper gives for the sampled pieces of the input (records it
    raises on are left out: they would be dead letters)."""
    keys: list[Any] = []
    with spec.task():
        for piece in pieces(files):
            groups = spec.map_data(piece, lambda data: decode_records(data, spec.fmt),
                                   lambda *_: None)
            keys.extend(groups)
    return keys


def with_boundaries(spec: Any, files: list[Path], topics: int = 0) -> Any:
    """The spec with its total order's boundaries sampled from its input files (the spec
    as it is when it has no total order)."""
    if not spec.total_order:
        return spec
    if topics:
        raise InputError("total_order samples its input when the job is submitted: a "
                         "kafka: input cannot be sampled yet; copy it to files first")
    return replace(spec, boundaries=boundaries(sample_keys(spec, files), spec.partitions))
