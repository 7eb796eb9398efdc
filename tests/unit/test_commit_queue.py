"""The bookkeeping behind overlapping a batch's deliveries with the next batch: only batches
whose every output is acknowledged are committed, in order, and offsets never go back."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapreduce_kafka.services.runtime.commit_queue import CommitQueue, PendingBatch, next_offsets


def test_next_offsets_is_one_past_the_highest_read_per_partition():
    read = [("MAP---a", 0, 5), ("MAP---a", 0, 3), ("MAP---a", 1, 0), ("MAP---b", 0, 9)]
    assert next_offsets(read) == {("MAP---a", 0): 6, ("MAP---a", 1): 1, ("MAP---b", 0): 10}


def test_nothing_settles_before_its_epoch_is_acknowledged():
    queue = CommitQueue()
    queue.add(PendingBatch(0, {("t", 0): 5}, "first"))
    queue.add(PendingBatch(1, {("t", 0): 9}, "second"))
    assert queue.settle(-1).offsets == {}
    assert len(queue) == 2
    settled = queue.settle(0)
    assert settled.offsets == {("t", 0): 5} and settled.payloads == ["first"]
    settled = queue.settle(1)
    assert settled.offsets == {("t", 0): 9} and settled.payloads == ["second"]
    assert len(queue) == 0


def test_a_later_acknowledgement_settles_every_earlier_batch_merged():
    queue = CommitQueue()
    queue.add(PendingBatch(0, {("t", 0): 5, ("t", 1): 2}, None))
    queue.add(PendingBatch(1, {("t", 0): 7}, {"p": [1]}))
    queue.add(PendingBatch(2, {("u", 0): 1}, {"p": [2]}))
    settled = queue.settle(2)
    assert settled.offsets == {("t", 0): 7, ("t", 1): 2, ("u", 0): 1}
    assert settled.payloads == [{"p": [1]}, {"p": [2]}]  # None payloads are left out


def test_lost_partitions_are_not_committed_but_the_rest_is():
    queue = CommitQueue()
    queue.add(PendingBatch(0, {("t", 0): 5, ("t", 1): 2}, "x"))
    queue.forget({("t", 0)})
    settled = queue.settle(0)
    assert settled.offsets == {("t", 1): 2} and settled.payloads == ["x"]


def test_epochs_must_not_go_back():
    queue = CommitQueue()
    queue.add(PendingBatch(3, {}, None))
    with pytest.raises(ValueError):
        queue.add(PendingBatch(2, {}, None))


@given(st.lists(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 50)), max_size=5),
                min_size=1, max_size=12),
       st.lists(st.integers(-1, 12), max_size=6))
def test_committed_offsets_never_pass_an_unacknowledged_batch(batches, acks):
    """Whatever the acknowledgements, what is committed for a partition is exactly the
    highest offset among batches up to the highest acknowledged epoch, and never lower than
    before."""
    # a partition is read forward: a later batch reads later offsets
    batches = [[(p, epoch * 100 + o) for p, o in reads] for epoch, reads in enumerate(batches)]
    queue = CommitQueue()
    for epoch, reads in enumerate(batches):
        queue.add(PendingBatch(epoch, next_offsets(("t", p, o) for p, o in reads)))
    committed: dict[tuple[str, int], int] = {}
    acked = -1
    for ack in acks:
        acked = max(acked, ack)
        for where, offset in queue.settle(ack).offsets.items():
            assert offset >= committed.get(where, 0)
            committed[where] = offset
        expected: dict[tuple[str, int], int] = {}
        for reads in batches[:acked + 1]:
            for where, offset in next_offsets(("t", p, o) for p, o in reads).items():
                expected[where] = max(offset, expected.get(where, 0))
        assert committed == expected
