"""Jobs on the real broker and Redis, compared with the sequential run."""

from __future__ import annotations

import orjson
import pytest
from confluent_kafka.admin import AdminClient

from mapreduce_kafka.services.client import source
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import output, topics
from mapreduce_kafka.shared.store import Store
from tests import REPO
from tests.integration import jobs

pytestmark = pytest.mark.integration


def test_wordcount_matches_sequential_and_output_follows_the_contract(pool, tmp_path):
    inputs = make_corpus(tmp_path / "in", 2)
    job = jobs.submit(pool, jobs.WORDCOUNT, inputs, tmp_path / "out", partitions=3)
    jobs.wait(pool, job)
    comparison = jobs.assert_matches_sequential(job)
    assert comparison.actual_keys > 2500
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["_SUCCESS", "part-00000", "part-00001", "part-00002"]
    assert output.finished_by(tmp_path / "out") == job.pipeline_id
    for part in (tmp_path / "out").glob("part-*"):
        keys = [orjson.loads(line)[0] for line in part.read_bytes().splitlines()]
        assert keys == sorted(keys)
    assert not list(tmp_path.glob(".out.*.staging"))


def test_inverted_index_matches_sequential(pool, tmp_path):
    job = jobs.submit(pool, jobs.INVERTED_INDEX, [REPO / "pipelines/samples/docs.jsonl"],
                      tmp_path / "out", fmt="jsonl")
    jobs.wait(pool, job)
    jobs.assert_matches_sequential(job)


@pytest.mark.parametrize("input_mode", ["splits", "kafka"])
def test_both_input_modes_match_sequential(pool, tmp_path, input_mode):
    """splits: mappers read (file, offset, length) themselves; kafka: the bytes travel."""
    inputs = make_corpus(tmp_path / "in", 1)
    with open(inputs[0], "ab") as f:
        f.write(b"a last line without a newline")
    job = jobs.submit(pool, jobs.WORDCOUNT, inputs, tmp_path / "out", input_mode=input_mode)
    jobs.wait(pool, job)
    jobs.assert_matches_sequential(job)
    assert Store(pool.redis_url).pipeline(job.pipeline_id)["input_mode"] == input_mode


def test_at_least_once_matches_sequential_when_nothing_fails(pool, tmp_path):
    job = jobs.submit(pool, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 1), tmp_path / "out",
                      guarantee="at-least-once")
    jobs.wait(pool, job)
    jobs.assert_matches_sequential(job)
    assert Store(pool.redis_url).pipeline(job.pipeline_id)["guarantee"] == "at-least-once"


def test_two_pipelines_submitted_together(pool, tmp_path):
    first = jobs.submit(pool, jobs.WORDCOUNT, make_corpus(tmp_path / "a", 1), tmp_path / "oa")
    second = jobs.submit(pool, jobs.INVERTED_INDEX, [REPO / "pipelines/samples/docs.jsonl"],
                         tmp_path / "ob", fmt="jsonl", partitions=2)
    jobs.wait(pool, first)
    jobs.wait(pool, second)
    jobs.assert_matches_sequential(first)
    jobs.assert_matches_sequential(second)


def test_pipeline_announced_while_another_is_mid_run(pool, tmp_path):
    with jobs.paused_mid_stream(pool, jobs.WORDCOUNT, make_corpus(tmp_path / "big", 12),
                                tmp_path / "big-out") as long_job:
        late = jobs.submit(pool, jobs.WORDCOUNT, make_corpus(tmp_path / "small", 0.3),
                           tmp_path / "small-out")
        jobs.wait(pool, late)  # taken up, run and finished beside the unfinished one
    jobs.wait(pool, long_job)
    jobs.assert_matches_sequential(long_job)
    jobs.assert_matches_sequential(late)


def test_finished_pipeline_topics_and_keys_are_removed(pool, tmp_path):
    job = jobs.submit(pool, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 0.2), tmp_path / "o")
    jobs.wait(pool, job)
    admin = AdminClient(pool.admin_config())
    names = {topics.map_topic(job.pipeline_id), topics.reduce_topic(job.pipeline_id)}
    wait_for(lambda: not names & set(admin.list_topics(timeout=10).topics), 30,
             "the pipeline's topics to be deleted")
    store = Store(pool.redis_url)
    wait_for(lambda: not any(store.ended_counts(job.pipeline_id).values()), 30,
             "the pipeline's coordination keys to be dropped")
    assert Store(pool.redis_url).pipeline(job.pipeline_id)["state"] == "done"


def test_duplicate_pipeline_id_is_refused(pool, tmp_path):
    job = source.Job(jobs.WORDCOUNT, [REPO / "pipelines/samples/text"], tmp_path / "o1",
                     pipeline_id="dup-id-test")
    source.prepare(job, pool)
    source.submit(job, pool)
    again = source.Job(jobs.WORDCOUNT, [REPO / "pipelines/samples/text"], tmp_path / "o2",
                       pipeline_id="dup-id-test")
    source.prepare(again, pool)
    from mapreduce_kafka.shared.errors import InvalidPipelineId

    with pytest.raises(InvalidPipelineId, match="already in use"):
        source.submit(again, pool)
    jobs.wait(pool, job)
