"""The bounded fault suite run in CI: every fault kind at least once, each trial's output
compared with the sequential run. The long randomized run is `python -m benchmarks.faults`.

A trial whose faults did not all land, or landed after a fault-free run of the job would
have ended, fails: it would prove little or nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing.fault_harness import (
    Fault,
    Harness,
    TrialResult,
    plan,
    shapes_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# `at` is a fraction of a fault-free run's duration, measured on this machine first: fixed
# seconds stopped landing as the job got faster (a 3 s sink kill missed a 2.2 s job).
CASES = {
    "kill-mapper-shuffler-reducer": [Fault(0.15, "kill", "mapper", 0.5),
                                     Fault(0.35, "kill", "shuffler", 1.0),
                                     Fault(0.55, "kill", "reducer", 0.0)],
    "kill-dispatcher-and-sink": [Fault(0.05, "kill", "dispatcher", 0.5),
                                 Fault(0.5, "kill", "sink", 1.0)],
    "zombie-mapper": [Fault(0.3, "stop", "mapper")],
    "zombie-shuffler": [Fault(0.3, "stop", "shuffler")],
    "broker-restart": [Fault(0.3, "broker", pause=2.0)],
    "redis-restart": [Fault(0.3, "redis", pause=1.0)],
    "source-dies-mid-stream": [Fault(0.0, "source")],
}
# The other shapes, each with the faults that hit what word count never reaches: chunks a
# replayed set-iterating mapper must cut the same way, fragments of hot keys at the shuffler
# and the reducer, dict and list values through a zombie shuffler, the hand-off from one
# step to the next, which the sinks make, and reduce tasks that must be replayed whole.
SHAPE_CASES = {
    "distinct_prefixes": [Fault(0.3, "kill", "mapper", 0.0), Fault(0.6, "kill", "shuffler")],
    "nested_values": [Fault(0.3, "stop", "shuffler")],
    "three_steps": [Fault(0.3, "kill", "reducer"), Fault(0.6, "kill", "sink")],
    "hooks": [Fault(0.3, "kill", "reducer"), Fault(0.5, "kill", "shuffler")],
}
LATEST = 0.6  # of the baseline: no fault is planned later, so each lands before the end


def assert_every_fault_landed(result: TrialResult, faults: list[Fault],
                              before_s: float | None = None) -> None:
    """Each planned fault hit while the job ran and, given `before_s` (a fault-free run's
    duration), before then: it hit the job mid-run, not a job already finishing."""
    assert not result.skipped, f"faults that never landed: {result.skipped}"
    assert [(f["kind"], f["role"]) for f in result.injected] == [
        (f.kind, f.role) for f in faults], result
    end_s = result.job_s if before_s is None else min(before_s, result.job_s)
    # a source is killed before its stream completes, or the trial itself fails
    late = [f for f in result.injected if f["kind"] != "source" and f["at"] >= end_s]
    assert not late, f"faults that hit after {end_s} s: {late} ({result})"


def plan_in_another_process(seed: int, faults: int, horizon: float,
                            kinds: tuple[str, ...]) -> list[Fault]:
    """The plan a fresh interpreter, with another hash seed, makes from the same seed: what
    replaying a logged seed later does."""
    code = ("import json, sys, dataclasses\n"
            "from mapreduce_kafka.services.testing.fault_harness import plan\n"
            "seed, faults, horizon, kinds = json.loads(sys.argv[1])\n"
            "print(json.dumps([dataclasses.asdict(f) for f in "
            "plan(seed, faults, horizon, tuple(kinds))]))\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps([seed, faults, horizon, kinds])],
                         env={**os.environ, "PYTHONHASHSEED": str(seed % 4096 + 1)},
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [Fault(**f) for f in json.loads(out)]


def test_a_plan_is_the_same_in_another_process_and_differs_by_seed() -> None:
    kinds = ("kill", "stop", "broker", "redis")
    plans = {seed: plan(seed, faults=3, horizon=10.0, kinds=kinds)
             for seed in (1, 2, 3, 20261123)}
    for seed, faults in plans.items():
        assert plan_in_another_process(seed, 3, 10.0, kinds) == faults, seed
        assert len(faults) == 3 and all(0.5 <= f.at <= 10.0 for f in faults), faults
    assert len({tuple(faults) for faults in plans.values()}) == len(plans), plans


@pytest.fixture(scope="module")
def harness(infrastructure, tmp_path_factory) -> Iterator[Harness]:
    settings, local = infrastructure
    if local is None:
        pytest.skip("fault tests restart the broker and Redis: they need the local cluster")
    supervisor.scale(settings, supervisor.DEFAULT_COUNTS)
    work = tmp_path_factory.mktemp("faults")
    # Big enough that the job is still running when the last fault lands (4 s): at 30 MB,
    # once the workers overlapped deliveries, a job could end before its faults.
    yield Harness(settings, local, Path(work), shapes_for(Path(work) / "input", 80))


@pytest.fixture(scope="module")
def baseline_s(harness: Harness) -> float:
    return harness.baseline(harness.shapes["wordcount"])


def scaled(faults: list[Fault], baseline_s: float) -> list[Fault]:
    return [replace(f, at=round(f.at * baseline_s, 2)) for f in faults]


@pytest.mark.parametrize("name", list(CASES))
def test_fault(harness: Harness, baseline_s: float, name: str) -> None:
    faults = scaled(CASES[name], baseline_s)
    result = harness.run(seed=sum(map(ord, name)), faults=faults)
    # every case lands before a fault-free run would end
    assert_every_fault_landed(result, faults, before_s=baseline_s)
    assert result.ok, result


def test_random_plan_replays_from_its_seed(harness: Harness, baseline_s: float) -> None:
    seed = 20261123
    horizon = max(1.0, LATEST * baseline_s)
    kinds = ("kill", "broker", "redis")
    faults = plan(seed, faults=3, horizon=horizon, kinds=kinds)
    assert plan_in_another_process(seed, 3, horizon, kinds) == faults
    assert plan(seed + 1, faults=3, horizon=horizon, kinds=kinds) != faults
    print(f"seed {seed}: {faults}")
    result = harness.run(seed, faults)
    # Faults are injected one after another: a restart's downtime delays the next, so a
    # random plan's last fault may land after a fault-free run would have ended.
    assert_every_fault_landed(result, faults)
    assert result.ok, result


@pytest.mark.parametrize("shape", list(SHAPE_CASES))
def test_fault_on_another_shape(harness: Harness, shape: str) -> None:
    chosen = harness.shapes[shape]
    shape_baseline_s = harness.baseline(chosen, runs=1)
    faults = scaled(SHAPE_CASES[shape], shape_baseline_s)
    result = harness.run(seed=sum(map(ord, shape)), faults=faults, shape=chosen)
    assert_every_fault_landed(result, faults, before_s=shape_baseline_s)
    assert result.ok, result
