"""What a data engineer uses: the Python API with a notebook's functions, the inline runner
against the cluster, inputs as they come (globs, directories, compressed files, a Kafka
topic) and outputs as they are wanted (tsv, a Kafka topic), on the real broker and Redis."""

from __future__ import annotations

import bz2
import gzip
import lzma
import shutil
import sys
import types
import uuid
from pathlib import Path

import orjson
import pytest
import zstandard
from confluent_kafka import Producer

from mapreduce_kafka.services.client import api, reference
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.shared import kafka, output
from mapreduce_kafka.shared.errors import InputError
from mapreduce_kafka.shared.spec import PipelineCode
from tests import REPO
from tests.integration import jobs

pytestmark = pytest.mark.integration
SAMPLES = REPO / "pipelines" / "samples"


@pytest.fixture
def api_cluster(pool) -> api.Cluster:
    return api.Cluster(pool)


def notebook_functions() -> types.ModuleType:
    """Functions defined the way a notebook cell defines them: in a module no worker can
    import (they must travel pickled by value)."""
    cell = types.ModuleType(f"notebook_cell_{uuid.uuid4().hex[:8]}")
    cell.__file__ = "/nonexistent/notebook.ipynb"
    exec(  # noqa: S102 - a stand-in for a notebook cell
        "import re\n"
        "WORD = re.compile('[a-z]+')\n"
        "def mapper(line):\n"
        "    for w in WORD.findall(line.lower()):\n"
        "        yield len(w), w\n"
        "def reducer(length, words):\n"
        "    return [len(words), min(words)]\n", cell.__dict__)
    sys.modules[cell.__name__] = cell
    return cell


def test_a_notebooks_functions_run_on_the_cluster_and_results_stream_back(api_cluster, tmp_path):
    cell = notebook_functions()
    pipeline = api.Pipeline(mapper=cell.mapper, reducer=cell.reducer, name="lengths")
    job = api_cluster.submit(pipeline, [SAMPLES / "text"], tmp_path / "out", partitions=2)
    status = job.wait()
    assert status["state"] == "done"
    results = dict(job.results())
    expected = pipeline.run_inline([SAMPLES / "text"]).results
    assert results == {k: v for k, v in expected.items()} and len(results) > 5
    assert job.status()["keys"] == len(results)


def test_the_inline_runner_writes_what_the_cluster_writes(api_cluster, tmp_path):
    for pipeline, inputs, fmt in ((jobs.WORDCOUNT, [SAMPLES / "text"], "text"),
                                  (jobs.INVERTED_INDEX, [SAMPLES / "docs.jsonl"], "jsonl")):
        inline = api.Pipeline.from_file(pipeline).run_inline(
            inputs, tmp_path / f"inline-{fmt}", fmt=fmt, partitions=3)
        job = api_cluster.submit(api.Pipeline.from_file(pipeline), inputs,
                             tmp_path / f"cluster-{fmt}", fmt=fmt, partitions=3)
        job.wait()
        parts = sorted(p.name for p in (tmp_path / f"cluster-{fmt}").iterdir())
        assert parts == ["_SUCCESS", "part-00000", "part-00001", "part-00002"]
        for name in parts[1:]:  # _SUCCESS names the job that wrote the output
            assert ((tmp_path / f"inline-{fmt}" / name).read_bytes()
                    == (tmp_path / f"cluster-{fmt}" / name).read_bytes()), (pipeline, name)
        assert output.finished_by(tmp_path / f"cluster-{fmt}") == job.pipeline_id
        assert output.finished_by(tmp_path / f"inline-{fmt}") == "inline"
        assert inline.keys > 100


def _compress(path: Path, suffix: str) -> Path:
    data = path.read_bytes()
    compressors = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress,
                   ".zst": zstandard.ZstdCompressor().compress}
    target = path.with_name(path.name + suffix)
    target.write_bytes(compressors[suffix](data))
    path.unlink()
    return target


@pytest.mark.parametrize("input_mode", ["splits", "kafka"])
def test_globs_nested_directories_and_compressed_files_in_both_input_modes(api_cluster, tmp_path,
                                                                          input_mode):
    corpus = make_corpus(tmp_path / "in" / "2026" / "12", 1.5, files=4)
    for path, suffix in zip(corpus, (".gz", ".bz2", ".xz", ".zst"), strict=True):
        _compress(path, suffix)
    (tmp_path / "in" / "plain.txt").write_text("zyxwvu in a plain file beside them\n")
    (tmp_path / "in" / "_SUCCESS").write_text("qwzxleftout\n")  # left out: _ and . names
    (tmp_path / "in" / ".hidden").write_text("qwzxleftout too\n")
    job = api_cluster.submit(api.Pipeline.from_file(jobs.WORDCOUNT),
                         [tmp_path / "in", str(tmp_path / "in" / "2026" / "*" / "*.gz")],
                         tmp_path / "out", input_mode=input_mode)
    job.wait()
    assert job.request is not None and len(job.request.files) == 6  # the .gz one twice
    jobs.assert_matches_sequential(job.request)
    counts = dict(job.results())
    assert counts["zyxwvu"] == 1 and "qwzxleftout" not in counts


def test_a_glob_that_matches_nothing_is_a_clear_error(api_cluster, tmp_path):
    with pytest.raises(InputError, match="no input files match"):
        api_cluster.submit(api.Pipeline.from_file(jobs.WORDCOUNT), [str(tmp_path / "*.nope")],
                       tmp_path / "out")


def _topic_with_records(settings, values: list[bytes], partitions: int = 3) -> str:
    topic = f"input-{uuid.uuid4().hex[:8]}"
    kafka.ensure_topics(kafka.admin(settings), {topic: (partitions, {})})
    producer = Producer(settings.producer_config())
    for i, value in enumerate(values):
        producer.produce(topic, value, partition=i % partitions)
    assert producer.flush(30) == 0
    return topic


def test_an_existing_topic_as_input_is_read_up_to_its_watermarks(api_cluster, tmp_path):
    docs = [orjson.dumps({"doc": f"d{i}", "text": f"word{i % 37} shared text number {i}"})
            for i in range(45_000)]
    topic = _topic_with_records(api_cluster.settings, [*docs, b"{not json"])
    job = api_cluster.submit(api.Pipeline.from_file(jobs.INVERTED_INDEX), [f"kafka:{topic}"],
                         tmp_path / "out", fmt="jsonl")
    # records produced after submission are not part of the snapshot
    late = Producer(api_cluster.settings.producer_config())
    late.produce(topic, orjson.dumps({"doc": "late", "text": "late arrival"}))
    late.flush(30)
    status = job.wait()
    assert job.request is not None and len(job.request.ranges) >= 3  # 3 partitions, ranges
    expected = reference.run_sequential(job.request.spec, [], job.request.ranges,
                                        api_cluster.settings)
    comparison = reference.compare(expected, list(job.results()))
    assert comparison.equal, comparison.summary()
    assert "late" not in dict(job.results())
    assert int(status["errors"]) == 1  # the record that is not JSON, dead-lettered
    assert job.dead_letters()[0]["error"].startswith("ValueError: not valid JSON")


def test_a_topic_as_output_gets_every_result_and_a_completion_record(api_cluster, tmp_path):
    topic = f"output-{uuid.uuid4().hex[:8]}"
    job = api_cluster.submit(api.Pipeline.from_file(jobs.WORDCOUNT), [SAMPLES / "text"],
                         f"kafka:{topic}")
    job.wait()
    assert job.request is not None and job.request.spec is not None
    expected = reference.run_sequential(job.request.spec, job.request.files)
    comparison = reference.compare(expected, list(job.results()))
    assert comparison.equal, comparison.summary()
    records = list(api._read_topic(api_cluster.settings, topic))
    success = [m for m in records if m.key() == output.success_key(job.pipeline_id)]
    assert len(success) == 1
    assert orjson.loads(success[0].value()) == {"pipeline": job.pipeline_id,
                                                "keys": len(expected)}
    assert records.index(success[0]) == len(records) - 1 or all(  # last in its partition
        m.offset() < success[0].offset() for m in records
        if m.partition() == success[0].partition() and m is not success[0])


def test_tsv_output_is_key_tab_value_with_json_fields(api_cluster, tmp_path):
    job = api_cluster.submit(api.Pipeline.from_file(jobs.WORDCOUNT), [SAMPLES / "text"],
                         tmp_path / "out", output_format="tsv")
    job.wait()
    line = next(p for p in sorted((tmp_path / "out").glob("part-*"))
                if p.stat().st_size).read_bytes().splitlines()[0]
    key, value = line.split(b"\t")
    assert isinstance(orjson.loads(key), str) and isinstance(orjson.loads(value), int)
    assert job.request is not None and job.request.spec is not None
    comparison = reference.compare(reference.run_sequential(job.request.spec,
                                                            job.request.files),
                                   list(job.results()))
    assert comparison.equal, comparison.summary()


def test_a_pipeline_from_functions_names_what_it_misses():
    from mapreduce_kafka.shared.errors import PipelineDefinitionError

    with pytest.raises(PipelineDefinitionError, match="reducer"):
        api.Pipeline(mapper=lambda line: [(line, 1)],
                     combiner=lambda line, ones: sum(ones)).run_inline([SAMPLES / "text"])
    with pytest.raises(PipelineDefinitionError, match="unknown pipeline functions"):
        PipelineCode.from_functions(mapper=print, reducer=print, reduce=print)


def test_inline_needs_no_cluster(tmp_path, monkeypatch):
    """The inline runner runs where no Kafka and no Redis answer."""
    monkeypatch.setenv("MAPREDUCE_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("MAPREDUCE_REDIS_URL", "redis://127.0.0.1:9/0")
    shutil.copytree(SAMPLES / "text", tmp_path / "in")
    result = api.Pipeline.from_file(jobs.WORDCOUNT).run_inline([tmp_path / "in"],
                                                               tmp_path / "out")
    assert output.is_complete(tmp_path / "out") and result.keys > 100


@pytest.mark.parametrize("input_mode", ["splits", "kafka"])
def test_a_join_tells_its_inputs_apart_by_the_file_each_record_comes_from(api_cluster, tmp_path,
                                                                          input_mode):
    from mapreduce_kafka import examples

    job = api_cluster.submit(api.Pipeline.from_file(examples.JOIN), [examples.SAMPLES / "join"],
                             tmp_path / "out", fmt="jsonl", input_mode=input_mode)
    job.wait()
    assert job.request is not None
    comparison = jobs.assert_matches_sequential(job.request)
    joined = dict(job.results())
    assert comparison.actual_keys == len(joined) > 40
    assert all(row["name"] and row["country"] for row in joined.values())
    assert job.counters()["join"]["orders of unknown users"] > 0


WHERE_FROM = '''
from mapreduce_kafka import input_context


def mapper(line):
    context = input_context()
    yield line, [context.topic, context.partition, context.kafka_offset,
                 context.key.decode(), context.timestamp]


def reducer(line, origins):
    return origins
'''


def test_a_topic_records_context_is_its_messages_key_timestamp_and_offset(api_cluster,
                                                                          tmp_path):
    topic = f"input-{uuid.uuid4().hex[:8]}"
    kafka.ensure_topics(kafka.admin(api_cluster.settings), {topic: (2, {})})
    producer = Producer(api_cluster.settings.producer_config())
    for i in range(300):
        producer.produce(topic, f"line {i}".encode(), key=f"k{i}".encode(), partition=i % 2,
                         timestamp=1_700_000_000_000 + i)
    assert producer.flush(30) == 0
    pipeline = tmp_path / "where_from.py"
    pipeline.write_text(WHERE_FROM)
    job = api_cluster.submit(api.Pipeline.from_file(pipeline), [f"kafka:{topic}"],
                             tmp_path / "out")
    job.wait()
    found = dict(job.results())
    assert len(found) == 300
    for i in range(300):
        [[got_topic, partition, offset, key, timestamp]] = found[f"line {i}"]
        assert (got_topic, partition, offset, key, timestamp) == (
            topic, i % 2, i // 2, f"k{i}", 1_700_000_000_000 + i)
