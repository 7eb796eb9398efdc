"""Message authentication: nothing a worker acts on is taken on trust.

Every message the framework writes (announcements, READY records and markers, tombstones,
input frames, splits and topic ranges, mapper output, groups, results, end-of-stream
markers) carries an HMAC-SHA256 tag in its `mr-mac` header, under a key derived per
pipeline from the cluster's message key:

    key(p) = HMAC(message key, "mapreduce-mac-v1\\0" + p)
    tag    = HMAC(key(p), topic, partition, kind, pipeline, seq, chunk, part, fragment,
                          record key, value)       (each field length-prefixed)

So a tag binds a message to its pipeline, its topic and its partition: a forged message
fails, and so does a genuine one copied elsewhere (an end marker of partition 0 replayed
into partition 1 would end that partition early). A message replayed into its own place is
a duplicate, which every stage already absorbs. Data frames are authenticated too: their
bytes dominate, and HMAC-SHA256 costs about 1 ms per MB (docs/measurements.md).

The message key is the HMAC signing key (shared/signing.py), or, when specs are signed with
Ed25519, the key in MAPREDUCE_MESSAGE_KEY_FILE: workers must share a secret to tell each
other's messages from an outsider's, while an Ed25519 spec key keeps signing code to the
submitters. Without a key (insecure development mode) nothing is tagged or checked.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence

from mapreduce_kafka.shared.codec import Envelope

HEADER = "mr-mac"
_DOMAIN = b"mapreduce-mac-v1\0"


def _field(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


class MessageAuth:
    """Tags and checks messages. `key` None: insecure mode, nothing tagged or required."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key
        self._keys: dict[str, bytes] = {}

    @property
    def enabled(self) -> bool:
        return self.key is not None

    def pipeline_key(self, pipeline: str) -> bytes:
        assert self.key is not None
        derived = self._keys.get(pipeline)
        if derived is None:
            if len(self._keys) > 4096:  # a long-lived worker meets many pipelines
                self._keys.clear()
            derived = self._keys[pipeline] = hmac.new(
                self.key, _DOMAIN + pipeline.encode(), hashlib.sha256).digest()
        return derived

    def tag(self, pipeline: str, topic: str, partition: int, envelope: Envelope | None,
            key: bytes | None, value: bytes | None) -> bytes:
        mac = hmac.new(self.pipeline_key(pipeline), digestmod=hashlib.sha256)
        mac.update(_field(topic.encode()) + struct.pack(">i", partition))
        for name, field in (envelope.headers() if envelope is not None else []):
            mac.update(_field(name.encode()) + _field(field))
        mac.update(_field(key or b"") + (b"\x01" if value is None else b"\x00"))
        mac.update(value or b"")
        return mac.hexdigest().encode()

    def check(self, pipeline: str, topic: str, partition: int, envelope: Envelope | None,
              key: bytes | None, value: bytes | None,
              headers: Sequence[tuple[str, bytes | None]] | None) -> bool:
        """Whether a message's tag verifies (always, in insecure mode)."""
        if self.key is None:
            return True
        found = next((v for k, v in (headers or []) if k == HEADER), None)
        return found is not None and hmac.compare_digest(
            found, self.tag(pipeline, topic, partition, envelope, key, value))
