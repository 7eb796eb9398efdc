"""Message tags: what they bind a message to."""

from mapreduce_kafka.shared.auth import HEADER, MessageAuth
from mapreduce_kafka.shared.codec import Envelope, Kind

AUTH = MessageAuth(b"k" * 32)
END = Envelope(Kind.STREAM_ENDED, "p1")


def tagged(pipeline="p1", topic="MAP---p1", partition=0, envelope=END, key=None, value=b""):
    return [*envelope.headers(), (HEADER, AUTH.tag(pipeline, topic, partition, envelope, key,
                                                   value))]


def test_a_tag_verifies_where_it_was_made_and_nowhere_else():
    headers = tagged()
    assert AUTH.check("p1", "MAP---p1", 0, END, None, b"", headers)
    assert not AUTH.check("p1", "MAP---p1", 1, END, None, b"", headers)  # another partition
    assert not AUTH.check("p1", "SHUFFLE", 0, END, None, b"", headers)  # another topic
    assert not AUTH.check("p2", "MAP---p1", 0, END, None, b"", headers)  # another pipeline
    other = Envelope(Kind.RECORDS, "p1", seq=3)
    assert not AUTH.check("p1", "MAP---p1", 0, other, None, b"", headers)  # other headers
    assert not AUTH.check("p1", "MAP---p1", 0, END, None, b"x", headers)  # other value
    assert not AUTH.check("p1", "MAP---p1", 0, END, b"k", b"", headers)  # other key
    assert not AUTH.check("p1", "MAP---p1", 0, END, None, None, headers)  # a tombstone


def test_no_tag_or_another_keys_tag_fails():
    assert not AUTH.check("p1", "MAP---p1", 0, END, None, b"", END.headers())
    forged = MessageAuth(b"x" * 32)
    headers = [*END.headers(), (HEADER, forged.tag("p1", "MAP---p1", 0, END, None, b""))]
    assert not AUTH.check("p1", "MAP---p1", 0, END, None, b"", headers)


def test_insecure_mode_checks_nothing():
    assert MessageAuth(None).check("p1", "MAP---p1", 0, END, None, b"", [])
