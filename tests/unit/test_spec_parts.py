"""Large specs as parts on PIPELINES (shared/spec_parts.py): cut, announced and put back
together, refused when a part is missing or not the announced bytes."""

from __future__ import annotations

import os

import pytest

from mapreduce_kafka.shared import spec_parts
from mapreduce_kafka.shared.codec import CodecError


def test_a_spec_that_fits_one_message_travels_whole():
    payload = b"\x80" + os.urandom(1000)
    assert spec_parts.split(payload) == (payload, [])
    assert spec_parts.Manifest.parse(payload) is None


@pytest.mark.parametrize("size", [spec_parts.INLINE_BYTES + 1, 3 * spec_parts.PART_BYTES,
                                  10 << 20])
def test_a_large_spec_is_cut_into_parts_and_assembled_exactly(size):
    payload = os.urandom(size)
    announcement, parts = spec_parts.split(payload)
    assert all(len(part) <= spec_parts.PART_BYTES for part in parts)
    assert len(announcement) < 200
    manifest = spec_parts.Manifest.parse(announcement)
    assert manifest is not None and manifest.parts == len(parts) and manifest.size == size
    assert spec_parts.assemble(manifest, dict(enumerate(parts))) == payload


def test_a_missing_or_changed_part_is_refused():
    payload = os.urandom(2 * spec_parts.PART_BYTES + 5)
    announcement, parts = spec_parts.split(payload)
    manifest = spec_parts.Manifest.parse(announcement)
    assert manifest is not None
    with pytest.raises(CodecError, match="never arrived"):
        spec_parts.assemble(manifest, {0: parts[0], 2: parts[2]})
    changed = dict(enumerate(parts))
    changed[1] = b"x" + parts[1][1:]
    with pytest.raises(CodecError, match="not the ones its announcement names"):
        spec_parts.assemble(manifest, changed)
    with pytest.raises(CodecError, match="malformed spec manifest"):
        spec_parts.Manifest.parse(spec_parts.MAGIC + b"{}")


def test_part_keys_name_their_pipeline_and_index():
    assert spec_parts.parse_part_key(spec_parts.part_key("job-1", 12)) == ("job-1", 12)
    assert spec_parts.parse_part_key("job-1") is None
    with pytest.raises(CodecError):
        spec_parts.parse_part_key("job-1/part/x")
