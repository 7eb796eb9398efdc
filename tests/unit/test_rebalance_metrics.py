import pytest

from mapreduce_kafka.services.testing.rebalance_metrics import (
    Batch,
    first_batch,
    map_ended,
    phases,
    processed,
    stalls,
)


def b(ts, worker, **counts):
    return Batch(ts, worker, "mapper", counts)


def test_stall_is_the_gap_that_contains_a_change_counted_once():
    batches = [b(0.0, "m1", p0=5), b(0.1, "m1", p0=5), b(2.1, "m1", p0=5), b(2.2, "m1", p0=5),
               b(0.05, "m2", p0=5), b(0.15, "m2", p0=5), b(0.25, "m2", p0=5)]
    result = stalls(batches, "p0", changes=[0.5, 0.6, 2.15])
    # changes at 0.5 and 0.6 fall in one gap (0.1 -> 2.1), the one at 2.15 in (2.1 -> 2.2)
    assert result["m1"]["max"] == pytest.approx(2.0)
    assert result["m1"]["total"] == pytest.approx(2.1)
    assert result["m2"]["max"] == 0.0 and result["m2"]["total"] == 0.0  # P0 done before
    # m1's gaps without a change: 0.1 only, so 0.1 is its normal gap
    assert result["m1"]["normal_gap"] == pytest.approx(0.1)
    assert result["m1"]["excess_max"] == pytest.approx(1.9)
    assert result["m1"]["excess_total"] == pytest.approx(1.9)  # (2.2-2.1) - 0.1 = 0


def test_a_gap_no_longer_than_the_normal_one_is_no_stall():
    batches = [b(t, "m1", p0=1) for t in (0.0, 0.3, 0.6, 0.9, 1.2)]
    result = stalls(batches, "p0", changes=[0.7])
    assert result["m1"]["max"] == pytest.approx(0.3)
    assert result["m1"]["excess_max"] == pytest.approx(0.0)


def test_batches_of_other_pipelines_do_not_count_as_progress():
    batches = [b(0.0, "m1", p0=1), b(1.0, "m1", p1=3), b(3.0, "m1", p0=1)]
    assert stalls(batches, "p0", [0.5])["m1"]["max"] == 3.0
    assert first_batch(batches, "p1") == 1.0 and first_batch(batches, "p9") is None
    assert processed(batches, "p0") == 2


def test_phases_are_relative_to_the_announcement():
    events = [
        {"ts": 11.0, "event": "topic created", "topic": "MAP---p"},
        {"ts": 11.2, "event": "pipeline ready", "pipeline": "p"},
        {"ts": 11.3, "event": "partitions assigned", "role": "mapper",
         "partitions": ["MAP---other[0]"]},
        {"ts": 11.5, "event": "partitions assigned", "role": "mapper",
         "partitions": ["MAP---p[1]"]},
    ]
    assert phases(events, "p", 10.0, 12.0) == {
        "topics_created": 1.0, "ready": 1.2, "assigned": 1.5, "first_batch": 2.0}
    assert phases(events, "q", 10.0, None)["assigned"] is None


def test_map_ended_is_the_pipelines_own_stage_end():
    events = [{"event": "map stage ended", "pipeline": "other", "ts": 5.0},
              {"event": "batch", "pipeline": "p0", "ts": 6.0},
              {"event": "map stage ended", "pipeline": "p0", "ts": 7.5}]
    assert map_ended(events, "p0") == 7.5
    assert map_ended(events, "p1") is None
