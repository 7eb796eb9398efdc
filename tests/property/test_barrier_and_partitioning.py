"""Properties of what the workers run: the barrier completes exactly when every partition has
ended, whatever the duplicates and the order; partitioning is stable and in range; which
stage a pipeline waits on follows the barriers."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mapreduce_kafka.shared import liveness
from mapreduce_kafka.shared.barrier import FLOW, Stage, is_complete
from mapreduce_kafka.shared.codec import CodecError, partition_for

partitions = st.integers(min_value=1, max_value=16)


@given(partitions.flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.integers(0, n - 1), max_size=60))))
def test_barrier_completes_exactly_when_all_partitions_ended(case):
    """What Store.mark_ended does: add to a set, then ask is_complete of its members."""
    total, marks = case
    members: set[int] = set()
    for partition in marks:  # duplicates and any order
        members.add(partition)
        assert is_complete(members, total) == (members == set(range(total)))


@given(partitions.flatmap(lambda n: st.permutations(list(range(n)))), st.data())
def test_redelivered_markers_never_complete_early(order, data):
    total = len(order)
    members: set[int] = set()
    for i, partition in enumerate(order):
        for _ in range(data.draw(st.integers(1, 3))):  # a redelivered marker counts once
            members.add(partition)
            assert is_complete(members, total) == (i == total - 1)


@given(st.sets(st.integers(0, 20)), partitions)
def test_is_complete_ignores_extra_members(ended, total):
    assert is_complete(ended, total) == set(range(total)).issubset(ended)


scalars = st.one_of(st.text(), st.integers(-(2**63), 2**64 - 1), st.booleans(), st.none())
keys = st.recursive(scalars, lambda inner: st.tuples(inner, inner), max_leaves=4)


@given(keys, partitions)
def test_partition_is_deterministic_and_in_range(key, n):
    p = partition_for(key, n)
    assert 0 <= p < n and p == partition_for(key, n)


def test_keys_that_are_not_json_values_are_a_clear_error():
    for key in (2**70, frozenset({1}), "lone \udcff surrogate"):
        with pytest.raises(CodecError, match="not a JSON value|not valid Unicode"):
            partition_for(key, 4)


@given(st.lists(st.integers(0, 5), min_size=5, max_size=5), st.data())
def test_a_pipeline_waits_on_the_first_incomplete_stage(totals_raw, data):
    totals = {stage: n + 1 for stage, n in zip(FLOW, totals_raw, strict=True)}
    ended = {stage: data.draw(st.integers(0, totals[stage])) for stage in FLOW}
    waiting = liveness.waiting_on(ended, totals)
    incomplete = [stage for stage in FLOW if ended[stage] < totals[stage]]
    assert waiting == (incomplete[0] if incomplete else liveness.FINALIZE)
    if waiting == Stage.SOURCE:
        assert liveness.handoff_into(waiting, totals) is None  # only the source ends it
    else:
        before = liveness.handoff_into(waiting, totals)
        assert before is not None and ended[before] >= totals[before]
