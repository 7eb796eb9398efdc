"""Pipelines of several steps on the real broker and Redis: each step's output is the next
step's input through MAP---<id>, handed over by the step's sinks; only the last step
writes the output."""

from __future__ import annotations

import json

import pytest

from mapreduce_kafka import examples
from mapreduce_kafka.services.client.inline import run_inline
from mapreduce_kafka.services.testing import shapes
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import output
from mapreduce_kafka.shared.barrier import Stage
from mapreduce_kafka.shared.spec import PipelineCode
from mapreduce_kafka.shared.store import Store, keys
from tests.integration import jobs

pytestmark = pytest.mark.integration


def test_top_words_in_two_steps_gives_the_sequential_top_ten(pool, tmp_path):
    inputs = make_corpus(tmp_path / "in", 2, files=3)
    job = jobs.submit(pool, examples.TOP_WORDS, inputs, tmp_path / "out", partitions=3)
    jobs.wait(pool, job)
    jobs.assert_matches_sequential(job)
    counts = [n for _, n in output.read_output(tmp_path / "out")]
    assert len(counts) == 10 and counts == sorted(counts, reverse=True)


def test_three_steps_with_a_map_only_one_match_sequential_and_inline(pool, tmp_path):
    inputs = make_corpus(tmp_path / "in", 1, files=2)
    job = jobs.submit(pool, shapes.THREE_STEPS, inputs, tmp_path / "out", partitions=2)
    jobs.wait(pool, job)
    comparison = jobs.assert_matches_sequential(job)
    assert comparison.actual_keys > 50
    run_inline(PipelineCode.from_file(shapes.THREE_STEPS), inputs, tmp_path / "inline",
               partitions=2)
    assert jobs.part_lines(tmp_path / "out") == jobs.part_lines(tmp_path / "inline")
    store = Store(pool.redis_url)
    wait_for(lambda: not store.redis.exists(keys.ended(job.pipeline_id, Stage.SINK, 2)),
             60, "the cleanup of every step's barriers")
    left = list(store.redis.scan_iter(f"mr:ended:{job.pipeline_id}:*"))
    assert not left, f"barrier keys left after the job: {left}"


def test_hooks_a_partitioner_and_sorted_values_match_sequential_and_inline(pool, tmp_path):
    inputs = make_corpus(tmp_path / "in", 1, files=2)
    job = jobs.submit(pool, shapes.HOOKS, inputs, tmp_path / "out", partitions=3)
    jobs.wait(pool, job)
    jobs.assert_matches_sequential(job)
    jobs.assert_counters_exact(pool, job)
    run_inline(PipelineCode.from_file(shapes.HOOKS), inputs, tmp_path / "inline",
               partitions=3)
    assert jobs.part_lines(tmp_path / "out") == jobs.part_lines(tmp_path / "inline")
    finals = [pair for pair in output.read_output(tmp_path / "out")
              if pair[0].startswith("~partition of ")]
    assert len(finals) == 3  # one per reduce task, after the part's keys
    for part, lines in enumerate(jobs.part_lines(tmp_path / "out").values()):
        letters = {chr(c) for c in range(ord("a"), ord("z") + 1) if c % 3 == part}
        assert lines[-1].startswith(b'["~partition of ')
        assert set(json.loads(lines[-1])[0].removeprefix("~partition of ")) <= letters
