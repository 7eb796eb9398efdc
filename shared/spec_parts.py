"""A pipeline spec of any size on PIPELINES: a spec larger than one Kafka message holds is
sent as parts, each its own record keyed `<id>/part/<n>` (so that compaction keeps every
one), then the announcement, whose value is a small *manifest*: how many parts, how many
bytes, and their SHA-256. The signature on the announcement covers the whole spec, so a
reader assembles the parts, checks the digest, and verifies the signature over the
assembled bytes before unpickling anything. A spec that fits one message travels as it
always did. Parts precede their announcement in PIPELINES' one partition: a reader that
meets an announcement has its parts already. Pure: no Kafka."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from mapreduce_kafka.shared.codec import CodecError

MAGIC = b"mr-spec-parts\n"
# A spec up to this size travels in its announcement; a larger one in parts of PART_BYTES
# (the broker's default limit for a message is 1 MiB, headers and signature included).
INLINE_BYTES = 900 * 1024
PART_BYTES = 512 * 1024
PART_INFIX = "/part/"  # never in a pipeline id (shared/topics.validate_pipeline_id)


@dataclass(frozen=True)
class Manifest:
    parts: int
    size: int
    sha256: str

    def encode(self) -> bytes:
        return MAGIC + orjson.dumps({"parts": self.parts, "size": self.size,
                                     "sha256": self.sha256})

    @classmethod
    def parse(cls, value: bytes) -> Manifest | None:
        """The manifest an announcement holds, or None for a spec sent whole."""
        if not value.startswith(MAGIC):
            return None
        try:
            fields = orjson.loads(value[len(MAGIC):])
            return cls(int(fields["parts"]), int(fields["size"]), str(fields["sha256"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CodecError(f"malformed spec manifest: {exc}") from exc


def split(payload: bytes) -> tuple[bytes, list[bytes]]:
    """What to send for a spec: (the announcement's value, the parts before it)."""
    if len(payload) <= INLINE_BYTES:
        return payload, []
    parts = [payload[at:at + PART_BYTES] for at in range(0, len(payload), PART_BYTES)]
    manifest = Manifest(len(parts), len(payload), hashlib.sha256(payload).hexdigest())
    return manifest.encode(), parts


def part_key(pipeline_id: str, index: int) -> str:
    return f"{pipeline_id}{PART_INFIX}{index}"


def parse_part_key(key: str) -> tuple[str, int] | None:
    """(pipeline id, part index) of a part's key; None for a pipeline's own key."""
    pipeline_id, infix, index = key.partition(PART_INFIX)
    if not infix:
        return None
    if not index.isdigit():
        raise CodecError(f"malformed spec part key {key!r:.120}")
    return pipeline_id, int(index)


def assemble(manifest: Manifest, parts: dict[int, bytes]) -> bytes:
    """The spec the parts make, checked against the manifest (CodecError if one is missing
    or the bytes are not the ones announced)."""
    missing = [index for index in range(manifest.parts) if index not in parts]
    if missing:
        raise CodecError(f"spec parts {missing[:5]} of {manifest.parts} never arrived")
    payload = b"".join(parts[index] for index in range(manifest.parts))
    if len(payload) != manifest.size or hashlib.sha256(payload).hexdigest() != manifest.sha256:
        raise CodecError("the spec's parts are not the ones its announcement names")
    return payload
