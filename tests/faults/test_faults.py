"""The bounded fault suite run in CI: every fault kind at least once, each trial's output
compared with the sequential run. The long randomized run is `python -m benchmarks.faults`.

A trial whose faults did not all land (the job ended first) fails: it would prove nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services import supervisor
from tests.conftest import make_corpus
from tests.faults.harness import Fault, Harness, plan

pytestmark = [pytest.mark.integration, pytest.mark.faults]

CASES = {
    "kill-mapper-shuffler-reducer": [Fault(1.0, "kill", "mapper", 0.5),
                                     Fault(2.5, "kill", "shuffler", 1.0),
                                     Fault(4.0, "kill", "reducer", 0.0)],
    "kill-dispatcher-and-sink": [Fault(0.3, "kill", "dispatcher", 0.5),
                                 Fault(3.0, "kill", "sink", 1.0)],
    "zombie-mapper": [Fault(1.5, "stop", "mapper")],
    "zombie-shuffler": [Fault(1.5, "stop", "shuffler")],
    "broker-restart": [Fault(2.0, "broker", pause=2.0)],
    "redis-restart": [Fault(2.0, "redis", pause=1.0)],
    "source-dies-mid-stream": [Fault(0.0, "source")],
}


@pytest.fixture(scope="module")
def harness(infrastructure, tmp_path_factory) -> Iterator[Harness]:
    settings, local = infrastructure
    if local is None:
        pytest.skip("fault tests restart the broker and Redis: they need the local cluster")
    supervisor.scale(settings, supervisor.DEFAULT_COUNTS)
    work = tmp_path_factory.mktemp("faults")
    # Big enough that the job is still running when the last fault lands (4 s): at 30 MB,
    # once the workers overlapped deliveries, a job could end before its faults.
    inputs = make_corpus(Path(work) / "input", 80)
    yield Harness(settings, local, Path(work), inputs)


@pytest.mark.parametrize("name", list(CASES))
def test_fault(harness: Harness, name: str) -> None:
    faults = CASES[name]
    result = harness.run(seed=sum(map(ord, name)), faults=faults)
    assert not result.skipped, f"faults that never landed: {result.skipped}"
    assert len(result.injected) == len(faults), result
    assert result.ok, result


def test_random_plan_replays_from_its_seed(harness: Harness) -> None:
    seed = 20261123
    faults = plan(seed, faults=3, horizon=5.0, kinds=("kill", "broker", "redis"))
    assert faults == plan(seed, faults=3, horizon=5.0, kinds=("kill", "broker", "redis"))
    print(f"seed {seed}: {faults}")
    result = harness.run(seed, faults)
    assert result.ok, result
