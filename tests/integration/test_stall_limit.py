"""A stall repair cannot help ends the job: with every reducer gone, a pipeline whose reduce
input is complete waits on partitions nobody reads; once it has shown no progress for
MAPREDUCE_STALL_LIMIT_S, the dispatcher fails it, naming the stage and the partitions."""

from __future__ import annotations

import time

import pytest

from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.shared.errors import PipelineFailed
from tests import REPO
from tests.integration import jobs

pytestmark = pytest.mark.integration
SAMPLES = REPO / "pipelines/samples/text"
LIMIT_S = 6


def test_a_pipeline_stalled_past_the_limit_fails_with_what_it_waits_on(workers, tmp_path):
    supervisor.scale(workers, {"dispatcher": 0, "reducer": 0})
    supervisor.scale(workers.with_(stall_limit_s=LIMIT_S), {"dispatcher": 1})
    try:
        job = jobs.submit(workers, jobs.WORDCOUNT, [SAMPLES], tmp_path / "out", partitions=2)
        started = time.monotonic()
        with pytest.raises(PipelineFailed, match=(
                r"stalled: no progress for \d+ s with its inputs complete, waiting on reduce "
                r"\(0/2 partitions ended\); no live worker holds REDUCE---\S+\[0\], "
                r"REDUCE---\S+\[1\]")):
            jobs.wait(workers, job, timeout=120)
        assert time.monotonic() - started < 90
    finally:
        supervisor.scale(workers, {"dispatcher": 0})  # the fixture restarts the defaults
