"""The multi-topic profile in containers (compose/docker-compose.yml): built from
compose/images/, started with compose/podman-compose, a job submitted from a `source`
container, its output read from the mounted data directory and compared with a plain
Python count, as the original project's compare script did."""

from __future__ import annotations

import pytest

from mapreduce_kafka.examples import SAMPLES
from mapreduce_kafka.services.testing.waiting import wait_for
from tests.compose.project import ComposeProject, sequential_word_count

# The first run on a machine builds the images (several minutes); later runs reuse them.
pytestmark = [pytest.mark.compose, pytest.mark.timeout(2400)]


def test_a_word_count_in_containers_equals_the_sequential_count(multi_topic: ComposeProject):
    multi_topic.stage(SAMPLES / "text")
    result = multi_topic.run_job("pipelines/wordcount.py", "--input", "/data/text",
                                 "--output", "/data/out/wc", "--verify")
    assert "verify: identical" in result.stdout, result.stdout[-2000:]
    assert multi_topic.output_counts("out/wc") == \
        sequential_word_count(multi_topic.data_dir / "text")


def test_four_mappers_one_killed_mid_job_leave_the_count_exact(multi_topic: ComposeProject):
    multi_topic.compose("up", "-d", "--scale", "mapper=4")
    wait_for(lambda: len(multi_topic.live_workers("mapper")) == 4, 180, "four live mappers",
             interval=2)

    def kill_a_mapper_holding_the_job() -> None:
        holders = [row for row in multi_topic.live_workers("mapper")
                   if any("slow-mapper-killed" in p for p in row["partitions"])]
        assert holders, "no mapper holds the job's partitions while it maps"
        multi_topic.podman("kill", holders[0]["host"])  # the host name is the container's id

    multi_topic.killed_mid_map("slow-mapper-killed", 2, kill_a_mapper_holding_the_job)
