"""Properties: the barrier completes exactly when every partition has ended, whatever the
duplicates and the order; partitioning is stable and in range."""

from hypothesis import given
from hypothesis import strategies as st

from shared.barrier import BarrierState, is_complete
from shared.codec import partition_for

partitions = st.integers(min_value=1, max_value=16)


@given(partitions.flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.integers(0, n - 1), max_size=60))))
def test_barrier_completes_exactly_when_all_partitions_ended(case):
    total, marks = case
    barrier = BarrierState(total)
    seen: set[int] = set()
    for partition in marks:  # duplicates and any order
        seen.add(partition)
        assert barrier.mark(partition) == (len(seen) == total)


@given(partitions.flatmap(lambda n: st.permutations(list(range(n)))), st.data())
def test_duplicated_markers_never_complete_early(order, data):
    total = len(order)
    barrier = BarrierState(total)
    for i, partition in enumerate(order):
        repeats = data.draw(st.integers(1, 3))
        for _ in range(repeats):  # a redelivered marker counts once
            complete = barrier.mark(partition)
        assert complete == (i == total - 1)


@given(st.sets(st.integers(0, 20)), partitions)
def test_is_complete_ignores_extra_members(ended, total):
    assert is_complete(ended, total) == set(range(total)).issubset(ended)


scalars = st.one_of(st.text(), st.integers(-(2**63), 2**64 - 1), st.booleans(), st.none())
keys = st.recursive(scalars,
                    lambda inner: st.tuples(inner, inner), max_leaves=4)


@given(keys, partitions)
def test_partition_is_deterministic_and_in_range(key, n):
    p = partition_for(key, n)
    assert 0 <= p < n and p == partition_for(key, n)


def test_keys_that_are_not_json_values_are_a_clear_error():
    import pytest

    from shared.codec import CodecError

    for key in (2**70, frozenset({1})):
        with pytest.raises(CodecError, match="not a JSON value"):
            partition_for(key, 4)
