"""Spilling a shuffler's groups to sorted runs and merging them back (services/runtime/spill.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapreduce_kafka.services.runtime.spill import Groups, fresh_spill_dir

KEYS = st.one_of(st.text(max_size=6), st.integers(-5, 5),
                 st.tuples(st.text(max_size=3), st.integers(0, 3)))
BATCH = st.lists(st.tuples(KEYS, st.lists(st.integers(0, 9), min_size=1, max_size=3)),
                 max_size=8)


def reference(batches):
    expected: dict = {}
    for batch in batches:
        for key, values in batch:
            expected.setdefault(key, []).extend(values)
    return expected


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.tuples(BATCH, st.booleans()), max_size=8),
       fan_in=st.integers(2, 5))
def test_merged_runs_hold_every_value_of_every_key_once(tmp_path_factory, steps, fan_in):
    spill_dir = tmp_path_factory.mktemp("spill")
    groups = Groups(spill_dir, fan_in=fan_in)
    for batch, spill_after in steps:
        groups.add([(k, list(v)) for k, v in batch], wire_bytes=100)
        if spill_after:
            groups.spill()
    stream = groups.merged()
    first = next(stream, None)
    # merging in passes: the final merge opens fewer runs than the fan-in
    assert len(list(spill_dir.iterdir())) == len(groups.runs) <= fan_in - 1
    merged = ([first] if first is not None else []) + list(stream)
    keys = [key for key, _ in merged]
    assert len(keys) == len(set(keys))  # each key once, even when it is in several runs
    got = {key: sorted(values) for key, values in merged}
    assert got == {k: sorted(v) for k, v in reference([b for b, _ in steps]).items()}
    groups.discard()


def test_spill_frees_memory_and_discard_removes_the_runs(tmp_path):
    groups = Groups(tmp_path / "spill")
    groups.add([("a", [1]), ("b", [2])], wire_bytes=1000)
    assert groups.held_bytes == 4000
    run = groups.spill()
    assert run.exists() and groups.memory == {} and groups.held_bytes == 0
    groups.add([("a", [3])], wire_bytes=10)
    assert sorted(groups.merged()) == [("a", [1, 3]), ("b", [2])]
    groups.discard()
    assert not run.exists() and groups.runs == []


def test_many_runs_are_merged_in_passes_and_leave_one_file_per_pass(tmp_path):
    spill_dir = tmp_path / "spill"
    groups = Groups(spill_dir, fan_in=3)
    for i in range(7):
        groups.add([("shared", [i]), (f"only-{i}", [i])], wire_bytes=10)
        groups.spill()
    assert len(groups.runs) == 7
    merged = dict(groups.merged())
    assert sorted(merged["shared"]) == list(range(7))
    assert all(merged[f"only-{i}"] == [i] for i in range(7))
    assert len(groups.runs) == len(list(spill_dir.iterdir())) == 2
    groups.discard()
    assert list(spill_dir.iterdir()) == []


def test_a_fan_in_below_two_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fan-in"):
        Groups(tmp_path, fan_in=1)


def test_fresh_spill_dir_removes_own_and_dead_workers_runs_only(tmp_path):
    root = tmp_path / "spill"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f"shuffler-host-{os.getpid()}", f"shuffler-host-{dead.pid}",
                 "shuffler-host-1"):  # pid 1 is alive
        (root / name).mkdir(parents=True)
        (root / name / "run-0").write_bytes(b"x")
    mine = fresh_spill_dir(root, f"shuffler-host-{os.getpid()}")
    assert not mine.exists()
    assert not (root / f"shuffler-host-{dead.pid}").exists()
    assert (root / "shuffler-host-1" / "run-0").exists()
