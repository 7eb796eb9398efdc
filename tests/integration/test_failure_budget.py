"""One pipeline's trouble stays its own: user code that exits, hangs or holds too much, and
inputs that vanish, end their own pipeline (or lose only their records), while a word
count beside them finishes exactly and every worker keeps its heartbeat."""

from __future__ import annotations

import signal
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from mapreduce_kafka.services.client import source
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.status.worker_status import worker_rows
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import kafka, topics
from mapreduce_kafka.shared.errors import PipelineFailed
from mapreduce_kafka.shared.store import Store, keys
from tests import REPO
from tests.integration import jobs

pytestmark = pytest.mark.integration

SAMPLES = REPO / "pipelines/samples/text"

EXITING = ("import re, sys\n"
           "def mapper(line):\n"
           "    if 'EXIT' in line:\n"
           "        sys.exit('no more of ' + line)\n"
           "    if 'INTERRUPT' in line:\n"
           "        raise KeyboardInterrupt\n"
           "    for w in re.findall('[A-Za-z0-9]+', line):\n"
           "        yield w, 1\n"
           "def reducer(k, vs):\n"
           "    if k == 'the':\n"
           "        sys.exit(3)\n"
           "    return sum(vs)\n")

HANGING = ("import re, time\n"
           "def mapper(line):\n"
           "    if 'HANG' in line:\n"
           "        time.sleep(3600)\n"
           "    for w in re.findall('[A-Za-z0-9]+', line):\n"
           "        yield w, 1\n"
           "def reducer(k, vs):\n"
           "    return sum(vs)\n")

HOT_KEY = ("def mapper(line):\n"
           "    yield 'hot', line\n"
           "def reducer(k, vs):\n"
           "    return len(vs)\n")


def restarts(settings) -> dict[str, str]:
    return {w["id"]: w.get("restarts", "0") for w in Store(settings.redis_url).workers()}


def assert_no_worker_silent(settings) -> None:
    """Every process of the pool beats. Workers that earlier tests on this shared cluster
    stopped or killed stay on the registry until it forgets them: they are not the pool."""
    store = Store(settings.redis_url)
    live = {str(p.pid) for p in supervisor.running(settings.home)}
    beating = {row["pid"] for row in worker_rows(store.workers(), store.now())
               if not row["silent"]}  # what `mapreduce status` shows as not SILENT
    assert live, "the pool has no running worker"
    assert not live - beating, f"silent worker processes: {sorted(live - beating)}"


def submit(settings, pipeline, inputs, out, **options) -> source.Job:
    job = source.Job(pipeline, inputs, out, **options)
    source.prepare(job, settings)
    source.submit(job, settings)
    return job


def test_user_code_that_exits_loses_its_records_not_the_workers(workers, tmp_path):
    """sys.exit and KeyboardInterrupt in a mapper or reducer are dead letters: the job
    finishes without those records or keys, as the oracle says, and no worker restarted."""
    pipeline = tmp_path / "exiting.py"
    pipeline.write_text(EXITING)
    data = tmp_path / "in" / "lines.txt"
    data.parent.mkdir()
    data.write_text("the cat EXIT now\nthe dog\nINTERRUPT here\na cat and the dog\n" * 50)
    before = restarts(workers)
    healthy = jobs.submit(workers, jobs.WORDCOUNT, [SAMPLES], tmp_path / "healthy")
    job = jobs.submit(workers, pipeline, [data], tmp_path / "out")
    status = jobs.wait(workers, job)
    assert int(status["errors"]) == 100 + 1  # 100 lines, and the key `the`
    # The oracle runs here, where Ctrl-C is a KeyboardInterrupt: with a handler of its own,
    # as a worker has, this process too takes the code's KeyboardInterrupt as the code's.
    default = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        jobs.assert_matches_sequential(job)
    finally:
        signal.signal(signal.SIGINT, default)
    jobs.wait(workers, healthy)
    jobs.assert_matches_sequential(healthy)
    assert {w: r for w, r in restarts(workers).items() if w in before} == before
    assert_no_worker_silent(workers)


def test_a_task_that_never_returns_is_charged_until_its_pipeline_fails(workers, tmp_path):
    """A mapper stuck in user code past --task-timeout: its worker charges the pipeline
    and restarts; at the third charge the pipeline fails with the reason, and a word count
    submitted beside it finishes exactly."""
    pipeline = tmp_path / "hanging.py"
    pipeline.write_text(HANGING)
    data = tmp_path / "in" / "lines.txt"
    data.parent.mkdir()
    data.write_text("one line\nHANG here\nanother line\n")
    job = submit(workers, pipeline, [data], tmp_path / "out", task_timeout_s=2)
    healthy = jobs.submit(workers, jobs.WORDCOUNT, [SAMPLES], tmp_path / "healthy")
    started = time.monotonic()
    with pytest.raises(PipelineFailed, match=r"ran over its time limit of 2 s.*3 times"):
        jobs.wait(workers, job, timeout=150)
    status = Store(workers.redis_url).pipeline(job.pipeline_id)
    assert status["charges"] == "3" and "lines.txt" not in status["charge.where"]
    assert time.monotonic() - started < 150
    jobs.wait(workers, healthy)
    jobs.assert_matches_sequential(healthy)
    assert_no_worker_silent(workers)


def test_a_key_over_the_memory_budget_fails_its_pipeline_naming_it(workers, tmp_path):
    """One key's values past MAPREDUCE_KEY_MEMORY_MB: the pipeline fails with a reason
    that names the key, instead of a worker running out of memory and replaying it."""
    supervisor.scale(workers, {"shuffler": 0})
    supervisor.scale(workers.with_(key_memory_mb=1), {"shuffler": 2})
    pipeline = tmp_path / "hot.py"
    pipeline.write_text(HOT_KEY)
    data = tmp_path / "in" / "lines.txt"
    data.parent.mkdir()
    data.write_text("".join(f"line {i} of a hot key's values\n" for i in range(60_000)))
    healthy = jobs.submit(workers, jobs.WORDCOUNT, [SAMPLES], tmp_path / "healthy")
    job = jobs.submit(workers, pipeline, [data], tmp_path / "out")
    with pytest.raises(PipelineFailed, match=r"key hot has [\d.]+ MB of values, over the 1 MB"):
        jobs.wait(workers, job)
    jobs.wait(workers, healthy)
    jobs.assert_matches_sequential(healthy)
    supervisor.scale(workers, {"shuffler": 0})  # the fixture restarts them with the default


def test_a_deleted_input_topic_fails_its_pipeline_at_once(workers, tmp_path):
    """A kafka:TOPIC input deleted after submission: the mapper's read is refused for good,
    so the pipeline fails with a reason at once rather than replaying the range."""
    topic = f"vanishing-input-{time.time_ns()}"
    admin = kafka.admin(workers)
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result()
    producer = Producer(workers.producer_config())
    for i in range(200):
        producer.produce(topic, f"line {i} of a topic".encode())
    producer.flush()
    supervisor.scale(workers, {"mapper": 0})
    job = jobs.submit(workers, jobs.WORDCOUNT, [f"kafka:{topic}"], tmp_path / "out")
    for future in admin.delete_topics([topic]).values():
        future.result()
    supervisor.scale(workers, supervisor.DEFAULT_COUNTS)
    with pytest.raises(PipelineFailed, match=f"input topic {topic} cannot be read"):
        jobs.wait(workers, job, timeout=90)


def test_charges_count_only_while_the_pipeline_is_active(cluster):
    store = Store(cluster.redis_url)
    pipeline_id = f"charged-{time.time_ns()}"
    assert store.create_pipeline(pipeline_id, {"output": "x"})
    assert [store.charge(pipeline_id, "it hung", "MAP---x[0]@5") for _ in range(2)] == [1, 2]
    assert store.pipeline(pipeline_id)["charge.reason"] == "it hung"
    store.finish_pipeline(pipeline_id, "failed", "enough")
    assert store.charge(pipeline_id, "late", "MAP---x[0]@5") == 0


def test_a_value_that_is_not_utf8_reads_without_raising(cluster):
    """Something else wrote bytes that are not UTF-8 into Redis: reading them must not
    raise UnicodeDecodeError (not a RedisError) in every worker that reads them."""
    store = Store(cluster.redis_url)
    pipeline_id = f"undecodable-{time.time_ns()}"
    assert store.create_pipeline(pipeline_id, {"output": "x"})
    store.redis.hset(keys.pipeline(pipeline_id), "reason", b"\xff\xfe broken")
    assert store.pipeline(pipeline_id)["reason"] == "\\xff\\xfe broken"


def test_records_deleted_before_they_were_mapped_fail_the_pipeline_loudly(workers, tmp_path):
    """Records of a pipeline's topic deleted before any mapper read them (retention, or
    delete-records): the consumer would skip to the log's start and the result would lack
    them; the pipeline fails instead, naming the offsets."""
    supervisor.scale(workers, {"mapper": 0})
    job = submit(workers, jobs.WORDCOUNT, [SAMPLES], tmp_path / "out", partitions=1,
                 input_mode="kafka")
    store = Store(workers.redis_url)
    partition = TopicPartition(topics.map_topic(job.pipeline_id), 0)
    reader = Consumer(workers.consumer_config(f"test-watermarks-{time.time_ns()}"))
    wait_for(lambda: {"ready", "frames"} <= set(store.pipeline(job.pipeline_id))  # topics made
             and reader.get_watermark_offsets(partition, timeout=10)[1] >= 3, 60,
             "the input to be forwarded to the map topic")
    reader.close()
    deleted = TopicPartition(partition.topic, 0, 2)  # the opening marker and a frame
    admin = kafka.admin(workers)  # held: its futures complete only while it lives
    for future in admin.delete_records([deleted], request_timeout=30).values():
        future.result(timeout=60)
    supervisor.scale(workers, supervisor.DEFAULT_COUNTS)
    with pytest.raises(PipelineFailed,
                       match=rf"records 0..1 of {partition.topic}\[0\] were deleted"):
        jobs.wait(workers, job, timeout=90)
