"""The bounded fault suite run in CI: every fault kind at least once, each trial's output
compared with the sequential run. The long randomized run is `python -m benchmarks.faults`.

A trial whose faults did not all land (the job ended first) fails: it would prove nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing.fault_harness import Fault, Harness, plan, shapes_for

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
# and the reducer, dict and list values through a zombie shuffler.
SHAPE_CASES = {
    "distinct_prefixes": [Fault(0.3, "kill", "mapper", 0.0), Fault(0.6, "kill", "shuffler")],
    "nested_values": [Fault(0.3, "stop", "shuffler")],
}
LATEST = 0.6  # of the baseline: no fault is planned later, so each lands before the end


def test_every_case_lands_before_a_fault_free_run_would_end() -> None:
    assert all(0 <= f.at <= LATEST for faults in CASES.values() for f in faults)


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
    assert not result.skipped, f"faults that never landed: {result.skipped}"
    assert [(f["kind"], f["role"]) for f in result.injected] == [
        (f.kind, f.role) for f in faults], result
    assert result.ok, result


def test_random_plan_replays_from_its_seed(harness: Harness, baseline_s: float) -> None:
    seed = 20261123
    horizon = max(1.0, LATEST * baseline_s)
    faults = plan(seed, faults=3, horizon=horizon, kinds=("kill", "broker", "redis"))
    assert faults == plan(seed, faults=3, horizon=horizon, kinds=("kill", "broker", "redis"))
    print(f"seed {seed}: {faults}")
    result = harness.run(seed, faults)
    assert not result.skipped, f"faults that never landed: {result.skipped}"
    assert [f["kind"] for f in result.injected] == [f.kind for f in faults], result
    assert result.ok, result


@pytest.mark.parametrize("shape", list(SHAPE_CASES))
def test_fault_on_another_shape(harness: Harness, shape: str) -> None:
    chosen = harness.shapes[shape]
    faults = scaled(SHAPE_CASES[shape], harness.baseline(chosen, runs=1))
    result = harness.run(seed=sum(map(ord, shape)), faults=faults, shape=chosen)
    assert not result.skipped, f"faults that never landed: {result.skipped}"
    assert [(f["kind"], f["role"]) for f in result.injected] == [
        (f.kind, f.role) for f in faults], result
    assert result.ok, result
