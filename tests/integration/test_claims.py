"""Names a live pipeline holds alone: its id as Kafka sees it, its output directory or
topic. A second job cannot take them while the first runs, and a name Kafka refuses
anyway fails its pipeline at once, with the reason."""

from __future__ import annotations

import uuid

import pytest

from mapreduce_kafka.services.client import api, source
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import kafka, output, topics
from mapreduce_kafka.shared.errors import InputError, InvalidPipelineId, PipelineFailed
from tests import REPO
from tests.integration import jobs

pytestmark = pytest.mark.integration
SAMPLES = REPO / "pipelines" / "samples" / "text"


def test_a_live_jobs_output_and_kafka_name_are_refused_to_a_second_job(pool, tmp_path):
    tag = uuid.uuid4().hex[:8]
    first_id = f"claims.{tag}"
    with jobs.paused_mid_stream(pool, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 4),
                                tmp_path / "out", pipeline_id=first_id) as first:
        same_output = source.prepare(source.Job(jobs.WORDCOUNT, [SAMPLES], tmp_path / "out"),
                                     pool)
        with pytest.raises(InputError, match=f"being written by the live pipeline '{first_id}'"):
            source.submit(same_output, pool)
        colliding = source.prepare(source.Job(jobs.WORDCOUNT, [SAMPLES], tmp_path / "other",
                                              pipeline_id=f"claims_{tag}"), pool)
        with pytest.raises(InvalidPipelineId, match=f"collides with the live pipeline "
                                                    f"'{first_id}'"):
            source.submit(colliding, pool)
    jobs.wait(pool, first)
    jobs.assert_matches_sequential(first)
    # released when the first job ended: once its topics are gone, Kafka takes the name too
    admin = kafka.admin(pool)
    wait_for(lambda: topics.map_topic(first_id) not in admin.list_topics(timeout=10).topics,
             60, "the first job's topics to be deleted")
    source.submit(colliding, pool)
    jobs.wait(pool, colliding)


def test_topics_kafka_refuses_fail_their_pipeline_and_the_others_go_on(pool, tmp_path):
    """A name no live pipeline holds can still collide in Kafka (here a topic made by
    hand): the dispatcher fails that pipeline with Kafka's reason instead of restarting
    on it forever, and a job beside it finishes."""
    tag = uuid.uuid4().hex[:8]
    admin = kafka.admin(pool)
    kafka.ensure_topics(admin, {topics.map_topic(f"refused.{tag}"): (1, {})})
    try:
        refused = source.prepare(source.Job(jobs.WORDCOUNT, [SAMPLES], tmp_path / "refused",
                                            pipeline_id=f"refused_{tag}"), pool)
        source.submit(refused, pool)
        beside = jobs.submit(pool, jobs.WORDCOUNT, [SAMPLES], tmp_path / "beside")
        with pytest.raises(PipelineFailed, match=r"Kafka refused to create its topics "
                                                 r"\(TOPIC_EXCEPTION\).*collides"):
            jobs.wait(pool, refused, timeout=60)
        jobs.wait(pool, beside)
        jobs.assert_matches_sequential(beside)
    finally:
        kafka.delete_topics(admin, [topics.map_topic(f"refused.{tag}")])


def test_a_job_whose_output_another_finished_meanwhile_fails_instead_of_done(pool, tmp_path):
    """An inline run is not a live pipeline in the store: it can finish the output a
    running job will write. That job must not report the other's results as its own."""
    with pytest.raises(PipelineFailed, match="was finished by pipeline 'inline' while "
                                             "this job ran"):
        with jobs.paused_mid_stream(pool, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 4),
                                    tmp_path / "out") as job:
            api.Pipeline.from_file(jobs.INVERTED_INDEX).run_inline(
                [REPO / "pipelines" / "samples" / "docs.jsonl"], tmp_path / "out",
                fmt="jsonl")
        jobs.wait(pool, job)
    assert output.finished_by(tmp_path / "out") == "inline"  # the other's output, untouched
    assert not output.staging_dir(tmp_path / "out", job.pipeline_id).exists()


def test_jobs_writing_one_topic_one_after_the_other_keep_their_own_records(pool, tmp_path):
    """The topic is compacted: records with equal keys erase each other. Two jobs with the
    same results write different keys, and each reads back its own results."""
    topic = f"output-{uuid.uuid4().hex[:8]}"
    cluster = api.Cluster(pool)
    wordcount = api.Pipeline.from_file(jobs.WORDCOUNT)
    first = cluster.submit(wordcount, [SAMPLES], f"kafka:{topic}")
    first.wait()  # the topic is the first job's until it ends
    second = cluster.submit(wordcount, [SAMPLES], f"kafka:{topic}")
    second.wait()
    records = list(api._read_topic(pool, topic))
    keys = {pid: {m.key() for m in records if dict(m.headers())["mr-p"] == pid.encode()}
            for pid in (first.pipeline_id, second.pipeline_id)}
    assert keys[first.pipeline_id] and not keys[first.pipeline_id] & keys[second.pipeline_id]
    assert {output.success_key(first.pipeline_id),
            output.success_key(second.pipeline_id)} <= {m.key() for m in records}
    results = dict(first.results())
    assert results == dict(second.results()) and len(results) > 100
