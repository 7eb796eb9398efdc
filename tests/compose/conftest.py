"""The compose suite's projects: each built (layer cache reused) and started once per
session, torn down with its volumes after its tests. Skipped, in one line, on machines
that cannot run containers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.compose.project import ComposeProject, unavailable

# The files' own counts: one dispatcher and sink, two of every other role.
WORKERS = {"dispatcher": 1, "mapper": 2, "shuffler": 2, "reducer": 2, "sink": 1}


@pytest.fixture(scope="session")
def containers_here() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(f"containers cannot run on this machine: {reason}")


def started(project: ComposeProject, brokers: int) -> Iterator[ComposeProject]:
    project.down()  # what an interrupted run left behind
    try:
        project.compose("up", "-d", "--build", timeout=1800)
        project.wait_ready(WORKERS, brokers)
        yield project
    finally:
        project.down(check=True)


@pytest.fixture(scope="module")
def multi_topic(containers_here: None,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeProject]:
    project = ComposeProject("mrtest", tmp_path_factory.mktemp("compose-data"))
    yield from started(project, brokers=1)


@pytest.fixture(scope="module")
def replicated(containers_here: None,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeProject]:
    project = ComposeProject("mrtest-replicated", tmp_path_factory.mktemp("compose-data"),
                             replicated=True)
    yield from started(project, brokers=3)
