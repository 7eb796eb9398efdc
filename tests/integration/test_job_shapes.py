"""Jobs whose output is not one value per key, on the real broker and Redis: reducers that
yield pairs (filtering, re-keying, exploding, everything under one key) and map-only
pipelines (no reducer, no shuffle, input order and duplicates kept)."""

from __future__ import annotations

import uuid

import orjson
import pytest

from mapreduce_kafka import examples
from mapreduce_kafka.services.client import api, reference
from mapreduce_kafka.services.client.inline import run_inline
from mapreduce_kafka.services.testing import shapes
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import output
from mapreduce_kafka.shared.spec import PipelineCode
from mapreduce_kafka.shared.store import Store
from tests.integration import jobs

pytestmark = pytest.mark.integration


def test_a_yielding_reducer_gives_the_sequential_pairs_part_for_part(pool, tmp_path):
    inputs = make_corpus(tmp_path / "in", 1, files=2)
    job = jobs.submit(pool, shapes.REKEYING, inputs, tmp_path / "out", partitions=3)
    jobs.wait(pool, job)
    comparison = jobs.assert_matches_sequential(job)
    assert comparison.counted == "pairs" and comparison.actual_keys > 1000
    run_inline(PipelineCode.from_file(shapes.REKEYING), inputs, tmp_path / "inline",
               partitions=3)
    assert jobs.part_lines(tmp_path / "out") == jobs.part_lines(tmp_path / "inline")
    letters = [key for key, _ in output.read_output(tmp_path / "out")
               if isinstance(key, str)]
    assert len(letters) > len(set(letters)) > 5, "many words' pairs under one letter"


def test_a_map_only_job_keeps_input_order_and_duplicates(pool, tmp_path):
    inputs = make_corpus(tmp_path / "in", 1, files=3)
    job = jobs.submit(pool, shapes.MAP_ONLY, inputs, tmp_path / "out", partitions=2)
    status = jobs.wait(pool, job)
    jobs.assert_matches_sequential(job)
    run_inline(PipelineCode.from_file(shapes.MAP_ONLY), inputs, tmp_path / "inline",
               partitions=2)
    assert jobs.part_lines(tmp_path / "out") == jobs.part_lines(tmp_path / "inline")
    pairs = output.read_output(tmp_path / "out")
    assert sum(1 for key, _ in pairs if key == "length") > 100
    # it never reached a shuffler or a reducer
    assert status["state"] == "done"
    store = Store(pool.redis_url)  # the final figures are kept when the job is cleaned up
    wait_for(lambda: "final.map" in store.pipeline(job.pipeline_id), 60, "the cleanup")
    final = store.pipeline(job.pipeline_id)
    assert final.get("final.shuffle") == "0" and final.get("final.reduce") == "0"
    assert final.get("final.map") == "2" and final.get("final.sink") == "2"


def test_the_shipped_grep_and_anagram_examples_match_sequential(pool, tmp_path):
    for name, pipeline in (("grep", examples.GREP), ("anagrams", examples.ANAGRAMS)):
        job = jobs.submit(pool, pipeline, [examples.SAMPLES / "text"], tmp_path / name)
        jobs.wait(pool, job)
        jobs.assert_matches_sequential(job)
        assert output.read_output(tmp_path / name), f"{name} found nothing in the samples"
    first = orjson.loads((tmp_path / "grep" / "part-00000").read_bytes().splitlines()[0])
    assert "error" in first[1].lower()


def test_a_map_only_job_into_a_compacted_topic_keys_every_record_apart(pool):
    """An output topic is compacted: records of one key would be one record in the end.
    Where keys repeat, each record's key holds its part and line too."""
    topic, cluster = f"output-{uuid.uuid4().hex[:8]}", api.Cluster(pool)
    job = cluster.submit(api.Pipeline.from_file(shapes.MAP_ONLY), [examples.SAMPLES / "text"],
                         f"kafka:{topic}")
    job.wait()
    assert job.request is not None and job.request.spec is not None
    expected = reference.run_sequential(job.request.spec, job.request.files)
    comparison = reference.compare(expected, list(job.results()))
    assert comparison.equal and comparison.counted == "pairs", comparison.summary()
    keys = [m.key() for m in api._read_topic(cluster.settings, topic)]
    assert len(keys) == len(expected) + 1 and len(set(keys)) == len(keys)
