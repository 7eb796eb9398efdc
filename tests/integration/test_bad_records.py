"""Poison records, unloadable specs and dead sources: clear failures, nothing lost, other
pipelines unaffected."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from mapreduce_kafka.services.client import source
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import output, topics
from mapreduce_kafka.shared.errors import PipelineFailed
from mapreduce_kafka.shared.store import Store
from tests import REPO
from tests.integration import jobs

pytestmark = pytest.mark.integration

POISON_MAPPER = ("import re\n"
                 "def mapper(line):\n"
                 "    if line.endswith(' rep2'):\n"
                 "        raise ValueError('cannot map ' + line[:12])\n"
                 "    for w in re.findall('[A-Za-z0-9]+', line):\n"
                 "        yield w, 1\n"
                 "def reducer(k, vs):\n"
                 "    return sum(vs)\n")


def dead_letters(settings, pipeline_id: str) -> list[dict]:
    consumer = Consumer(settings.consumer_config("test-deadletter-reader"))
    tp = TopicPartition(topics.DEADLETTER, 0, OFFSET_BEGINNING)
    _, high = consumer.get_watermark_offsets(tp, timeout=10)
    consumer.assign([tp])
    letters: list[dict] = []
    while high and consumer.position([tp])[0].offset < high:
        for msg in consumer.consume(500, timeout=1):
            if not msg.error() and msg.key() == pipeline_id.encode():
                letters.append(orjson.loads(msg.value()))
    consumer.close()
    return letters


def test_poison_records_are_dead_lettered_and_the_job_finishes(pool, tmp_path):
    pipeline = tmp_path / "poison.py"
    pipeline.write_text(POISON_MAPPER)
    inputs = make_corpus(tmp_path / "in", 0.5)
    poisoned = sum(line.endswith(b" rep2") for p in inputs for line in p.read_bytes().split(b"\n"))
    assert poisoned > 100
    job = jobs.submit(pool, pipeline, inputs, tmp_path / "out")
    status = jobs.wait(pool, job)
    assert int(status["errors"]) == poisoned
    jobs.assert_matches_sequential(job)  # the oracle leaves the same records out
    letters = dead_letters(pool, job.pipeline_id)
    identities = {letter["identity"] for letter in letters}
    assert len(identities) == poisoned  # replays may repeat a letter, never lose one
    letter = letters[0]
    assert letter["role"] == "mapper" and letter["topic"] == topics.map_topic(job.pipeline_id)
    assert {"partition", "offset", "frame", "traceback"} <= set(letter)
    assert "ValueError: cannot map" in letter["traceback"]


def test_max_errors_fails_the_job_once_exceeded(pool, tmp_path):
    pipeline = tmp_path / "poison.py"
    pipeline.write_text(POISON_MAPPER)
    job = source.Job(pipeline, make_corpus(tmp_path / "in", 0.5), tmp_path / "out",
                     max_errors=3)
    source.prepare(job, pool)
    source.submit(job, pool)
    with pytest.raises(PipelineFailed, match="more than --max-errors 3"):
        jobs.wait(pool, job)
    assert not output.is_complete(tmp_path / "out")


def test_reducer_that_raises_loses_only_its_key(pool, tmp_path):
    pipeline = tmp_path / "badreduce.py"
    pipeline.write_text("import re\n"
                        "def mapper(line):\n"
                        "    for w in re.findall('[A-Za-z0-9]+', line):\n"
                        "        yield w, 1\n"
                        "def reducer(k, vs):\n"
                        "    if k == 'the':\n"
                        "        raise RuntimeError('no articles')\n"
                        "    return sum(vs)\n")
    job = jobs.submit(pool, pipeline, [REPO / "pipelines/samples/text"], tmp_path / "out")
    status = jobs.wait(pool, job)
    assert int(status["errors"]) == 1
    jobs.assert_matches_sequential(job)
    assert "the" not in dict(output.read_output(tmp_path / "out"))
    assert [x["identity"] for x in dead_letters(pool, job.pipeline_id)][:1] == ['reducer:the']


def test_spec_that_workers_cannot_load_fails_only_its_pipeline(pool, tmp_path, monkeypatch):
    helper_dir = tmp_path / "only_here"
    helper_dir.mkdir()
    (helper_dir / "submitter_only_helper.py").write_text("def words(s):\n    return s.split()\n")
    monkeypatch.syspath_prepend(str(helper_dir))
    pipeline = tmp_path / "needs_helper.py"
    pipeline.write_text("import submitter_only_helper\n"
                        "def mapper(line):\n"
                        "    for w in submitter_only_helper.words(line):\n"
                        "        yield w, 1\n"
                        "def reducer(k, vs):\n    return sum(vs)\n")
    healthy = jobs.submit(pool, jobs.WORDCOUNT, [REPO / "pipelines/samples/text"],
                          tmp_path / "o2")
    # the submitter hears of it at once if the failure comes while it still sends input
    with pytest.raises(PipelineFailed, match="cannot be unpickled.*submitter_only_helper"):
        broken = jobs.submit(pool, pipeline, [REPO / "pipelines/samples/text"],
                             tmp_path / "o1")
        jobs.wait(pool, broken)
    jobs.wait(pool, healthy)
    jobs.assert_matches_sequential(healthy)


def test_source_killed_mid_stream_is_reported_incomplete(pool, tmp_path):
    inputs = make_corpus(tmp_path / "in", 80)
    env = {**os.environ, **pool.env(), "MAPREDUCE_SOURCE_TTL_S": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "mapreduce_kafka.services.cli", "submit",
                             str(jobs.WORDCOUNT), "-i", str(tmp_path / "in"),
                             "-o", str(tmp_path / "out"), "--id", f"dead-source-{os.getpid()}"],
                            env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    store = Store(pool.redis_url)
    pipeline_id = f"dead-source-{os.getpid()}"
    wait_for(lambda: store.pipeline(pipeline_id), 60, "the source to start", interval=0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "frames" not in store.pipeline(pipeline_id), "the source finished before the kill"
    with pytest.raises(PipelineFailed, match="source stopped mid-stream"):
        source.wait(pool, pipeline_id, lambda status: None, timeout=60)
    assert not (tmp_path / "out").exists()
    del inputs


def test_input_file_changed_after_submission_fails_the_split_job_clearly(workers, tmp_path):
    """Mappers stopped while the job is submitted, the file changed, mappers back: the
    split no longer matches the file, and the job fails saying so (never a wrong result)."""
    supervisor.scale(workers, {"mapper": 0})
    inputs = make_corpus(tmp_path / "in", 0.2, files=1)
    job = jobs.submit(workers, jobs.WORDCOUNT, inputs, tmp_path / "out", input_mode="splits")
    with open(inputs[0], "ab") as f:
        f.write(b"appended after submission\n")
    supervisor.scale(workers, supervisor.DEFAULT_COUNTS)
    with pytest.raises(PipelineFailed, match="changed since it was submitted"):
        jobs.wait(workers, job)
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def test_a_source_blocked_longer_than_its_liveness_ttl_is_not_taken_for_dead(pool, tmp_path,
                                                                           monkeypatch):
    """The source's heartbeat runs beside its stream: a source stuck in a flush or on a full
    producer queue for longer than the TTL is alive, and its job must not fail as dead."""
    monkeypatch.setattr(source, "SOURCE_TTL_S", 2)
    monkeypatch.setattr(source, "SOURCE_BEAT_S", 0.5)
    blocked = []

    def progress(sent: int, total: int) -> None:
        if not blocked:  # the first frame: block as a stalled flush would, past the TTL
            blocked.append(sent)
            time.sleep(8)

    job = source.Job(jobs.WORDCOUNT, make_corpus(tmp_path / "in", 1), tmp_path / "out")
    source.prepare(job, pool)
    source.submit(job, pool, progress)
    jobs.wait(pool, job)
    jobs.assert_matches_sequential(job)
