"""Properties of the paths a replay must reproduce exactly: a mapper's chunks do not depend
on the order it yielded its pairs in, fragments reassemble whatever the interleaving and
the duplicates, and input frames never outgrow a Kafka message."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from mapreduce_kafka.shared.codec import Fragment, decode_items, fragments
from mapreduce_kafka.shared.inputs import MAX_RECORD_BYTES, frame_spans
from mapreduce_kafka.shared.reassembly import Reassembler, clamp
from mapreduce_kafka.shared.shuffle import shuffle_frames

words = st.text(alphabet="abcdefghij", min_size=1, max_size=6)
values = st.one_of(st.integers(0, 10**6), st.text(max_size=30),
                   st.lists(st.integers(0, 9), max_size=4))
groups_st = st.dictionaries(words, st.lists(values, min_size=1, max_size=8), max_size=60)


def _chunk_keys(frames):
    return {(p, c): sorted(k for k, _ in decode_items(data)) for p, c, data in frames}


@given(groups_st, st.integers(1, 8), st.integers(40, 600), st.randoms(use_true_random=False))
def test_chunks_do_not_depend_on_the_mappers_order(groups, partitions, limit, rnd):
    """A replay of a set-iterating mapper builds the same groups in another order: every
    (partition, chunk) tag must name the same keys, or de-duplicating by tag double-counts
    some keys and loses others."""
    first, bad = shuffle_frames(groups, partitions, limit)
    assert not bad
    shuffled_keys = list(groups)
    rnd.shuffle(shuffled_keys)
    reordered = {k: rnd.sample(groups[k], len(groups[k])) for k in shuffled_keys}
    second, _ = shuffle_frames(reordered, partitions, limit)
    assert _chunk_keys(first) == _chunk_keys(second)
    # nothing lost or repeated, and a chunk over the limit holds a single key
    seen = [k for _, _, data in first for k, _ in decode_items(data)]
    assert sorted(seen) == sorted(groups)
    for _, _, data in first:
        assert len(data) <= limit or len(decode_items(data)) == 1


def test_unencodable_keys_and_values_are_set_aside_one_by_one():
    groups = {"ok": [1, 2], "lone \udcff": [1], "mixed": [1, float("nan"), 2, {3}],
              "big": [2**70]}
    frames, bad = shuffle_frames(groups, 2, 10_000)
    sent = {k: v for _, _, data in frames for k, v in decode_items(data)}
    assert sent == {"ok": [1, 2], "mixed": [1, 2]}
    assert sorted((repr(k), repr(v)) for k, v, _ in bad) == sorted([
        (repr("lone \udcff"), "[1]"), ("'mixed'", "[nan]"), ("'mixed'", "[{3}]"),
        ("'big'", repr([2**70]))])


messages_st = st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=6)


@given(messages_st, st.integers(1, 64), st.booleans(), st.randoms(use_true_random=False))
def test_fragments_reassemble_whatever_the_interleaving(messages, limit, resend, rnd):
    """Each message's fragments in order, interleaved with other writers' on the partition,
    a piece delivered twice while its group is incomplete, a message sent again by another
    writer (a zombie: a new group), and a dead partial group (a writer that crashed
    mid-message): every message comes back whole, the resent one twice, nothing else."""
    sends = [(i, fragments(data, limit)) for i, data in enumerate(messages)]
    if resend:
        sends.append((0, fragments(messages[0], limit)))
    dead = fragments(b"x" * (limit * 3), limit)[:2]
    sends.append((-1, dead))
    merged, positions = [], [0] * len(sends)
    while any(pos < len(pieces) for pos, (_, pieces) in zip(positions, sends, strict=True)):
        j = rnd.choice([j for j, (_, s) in enumerate(sends) if positions[j] < len(s)])
        i, stream = sends[j]
        piece, frag = stream[positions[j]]
        merged.append((i, piece, frag))
        if frag is not None and frag.index < frag.count - 1 and rnd.random() < 0.2:
            merged.append((i, piece, frag))  # a piece twice, before its group is whole
        positions[j] += 1
    pieces = Reassembler()
    whole: list[tuple[int, bytes]] = []
    for offset, (i, piece, frag) in enumerate(merged):
        done = piece if frag is None else pieces.add(frag, piece, ("T", 0), offset, owner="p")
        if done is not None:
            whole.append((i, done))
    expected = list(enumerate(messages)) + ([(0, messages[0])] if resend else [])
    assert sorted(whole) == sorted(expected)
    # only the dead group is left, and it holds the commit at its first fragment
    first_dead = next(o for o, (i, _, _) in enumerate(merged) if i == -1)
    assert len(pieces) == 1
    assert pieces.first_offsets() == {("T", 0): first_dead}
    assert clamp({("T", 0): len(merged)}, pieces.first_offsets()) == {("T", 0): first_dead}
    assert pieces.drop(lambda owner, where: owner == "p") == 1
    assert pieces.held_bytes == 0 and not pieces.first_offsets()


def test_a_fragment_header_round_trips():
    fragment = Fragment("0123abcd", 2, 5)
    assert Fragment.parse(fragment.header()) == fragment


lines_st = st.lists(st.one_of(st.integers(0, 40), st.integers(200, 1200)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(lengths=lines_st, frame_bytes=st.integers(64, 1024), newline_at_end=st.booleans())
def test_frames_hold_whole_lines_and_never_outgrow_the_limit(lengths, frame_bytes,
                                                             newline_at_end, tmp_path_factory):
    rnd = random.Random(len(lengths))
    text = b"\n".join(bytes(rnd.choice(b"abc ") for _ in range(n)) for n in lengths)
    if newline_at_end and text:
        text += b"\n"
    path = Path(tmp_path_factory.mktemp("frames")) / "in.txt"
    path.write_bytes(text)
    spans = list(frame_spans([path], frame_bytes, "text"))
    joined = b"".join(frame for _, _, frame in spans)
    assert joined == (text if text.endswith(b"\n") or not text else text + b"\n")
    longest = max(lengths, default=0) + 1
    offset = 0
    for _, at, frame in spans:
        assert at == offset and frame.endswith(b"\n")
        assert len(frame) <= max(frame_bytes, longest)
        offset += len(frame)
    assert MAX_RECORD_BYTES + 1 < 1_000_000  # the producer's message.max.bytes


def test_orjson_writes_nan_as_null_which_the_codec_refuses():
    assert orjson.dumps(float("nan")) == b"null"
    from mapreduce_kafka.shared.codec import problem_of
    assert problem_of([1, float("inf")]) and problem_of(None) is None
