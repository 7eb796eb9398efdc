"""Trust nothing on the wire: someone who can write to the cluster's topics but holds no key
forges a split, a tombstone, an end marker and a spec, and replays a finished job's signed
spec. Each is refused with a log line, and a job running beside the attacks ends exactly."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from mapreduce_kafka.services.client import api
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import inputs, topics
from mapreduce_kafka.shared.codec import CodecError, Envelope, Kind, Split
from mapreduce_kafka.shared.redis_client import redacted
from mapreduce_kafka.shared.store import Store
from tests.integration import jobs

pytestmark = pytest.mark.integration


def forger(settings) -> Producer:
    """A client that can write to every topic, and holds no key."""
    return Producer({"bootstrap.servers": settings.bootstrap_servers})


def logged(settings, event: str, **fields: str) -> list[dict]:
    found = []
    for path in (settings.home / "logs").glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{event}"' in line:
                entry = orjson.loads(line)
                if all(entry.get(k) == v for k, v in fields.items()):
                    found.append(entry)
    return found


def test_forged_messages_are_dropped_and_the_job_beside_them_is_exact(pool, tmp_path):
    key_file = pool.home / "signing.key"
    with jobs.paused_mid_stream(pool, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 4),
                                tmp_path / "out") as job:
        pid = job.pipeline_id
        stat = key_file.stat()
        producer = forger(pool)
        # a split of the signing key: its hex would come out as word-count keys
        producer.produce(topics.SOURCE, Split(str(key_file), 0, stat.st_size, stat.st_size,
                                              stat.st_mtime_ns).encode(),
                         headers=Envelope(Kind.SPLIT, pid, seq=99_999).headers(), partition=0)
        # an early end of every map partition: the output would be cut short
        for partition in range(4):
            producer.produce(topics.map_topic(pid), b"", partition=partition,
                             headers=Envelope(Kind.STREAM_ENDED, pid).headers())
        # a tombstone: workers would drop the live job, the dispatcher delete its topics
        producer.produce(topics.PIPELINES, None, key=pid.encode())
        # junk in place of its spec
        producer.produce(topics.PIPELINES, b"junk", key=pid.encode(),
                         headers=Envelope(Kind.ANNOUNCED, pid).headers())
        assert producer.flush(30) == 0
        wait_for(lambda: logged(pool, "unauthenticated message dropped", pipeline=pid,
                                topic=topics.SOURCE)
                 and logged(pool, "unauthenticated message dropped", pipeline=pid,
                            topic=topics.map_topic(pid))
                 and logged(pool, "pipeline spec refused", pipeline=pid), 30,
                 "the workers to drop the forged messages")
    status = jobs.wait(pool, job)
    assert status["state"] == "done"
    jobs.assert_matches_sequential(job)
    key_hex = key_file.read_text().strip()
    assert key_hex not in {str(k) for k, _ in api.Job(api.Cluster(pool), pid).results()}
    dropped = {(e["topic"], e["kind"]) for e in logged(pool, "unauthenticated message dropped")
               if e.get("pipeline") == pid}
    assert {(topics.SOURCE, "split"), (topics.map_topic(pid), "ended")} <= dropped


def _announcement(settings, pipeline_id: str):
    """The record that announced a pipeline, as it is in PIPELINES."""
    consumer = Consumer(settings.consumer_config(f"attack-{uuid.uuid4().hex}"))
    consumer.assign([TopicPartition(topics.PIPELINES, 0, OFFSET_BEGINNING)])
    try:
        for _ in range(60):
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error() is None and msg.key() == pipeline_id.encode() and (
                        dict(msg.headers() or []).get("mr-k") == b"announced"):
                    return msg
    finally:
        consumer.close()
    raise AssertionError(f"no announcement of {pipeline_id} found")


def test_a_finished_jobs_signed_spec_replayed_is_refused(pool, tmp_path):
    job = jobs.submit(pool, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 0.2), tmp_path / "out")
    jobs.wait(pool, job)
    # The ending is complete (tombstone written): before it, the same record again is
    # only a duplicate of a live spec, ignored as such.
    store = Store(pool.redis_url)
    wait_for(lambda: not store.redis.zscore("mr:finishing", job.pipeline_id), 60,
             "the job's cleanup")
    original = _announcement(pool, job.pipeline_id)
    producer = forger(pool)  # the genuine bytes, tag and signature, copied
    producer.produce(topics.PIPELINES, original.value(), key=original.key(),
                     headers=original.headers())
    assert producer.flush(30) == 0
    wait_for(lambda: logged(pool, "pipeline spec refused", pipeline=job.pipeline_id), 30,
             "the replayed spec to be refused")
    reasons = {e["reason"] for e in logged(pool, "pipeline spec refused",
                                           pipeline=job.pipeline_id)}
    assert any("has ended" in r for r in reasons), reasons
    assert Store(pool.redis_url).pipeline(job.pipeline_id)["state"] == "done"


def test_a_spec_older_than_the_age_limit_is_refused(pool, tmp_path):
    """With the age limit, a signed spec cannot be replayed once its status has expired."""
    from dataclasses import replace

    from mapreduce_kafka.services.client import source
    from mapreduce_kafka.services.runtime.pipeline_view import PipelineView

    view = PipelineView(pool.with_(spec_max_age_s=60))
    try:
        job = source.prepare(source.Job(jobs.WORDCOUNT, make_corpus(tmp_path / "in", 0.1),
                                         tmp_path / "out"), pool)
        assert job.spec is not None and view._too_old(job.spec, job.pipeline_id, False) is None
        old = replace(job.spec, created=job.spec.created - 3600)
        for ready in (False, True):  # READY too: this id is not running
            assert "older than the spec age limit" in (
                view._too_old(old, job.pipeline_id, ready) or "")
    finally:
        view.close()


def test_a_mapper_reads_only_files_the_signed_spec_names(tmp_path):
    named = tmp_path / "input.txt"
    named.write_text("the input\n")
    other = tmp_path / "signing.key"
    other.write_text("a secret\n")
    listed = {str(named): (named.stat().st_size, named.stat().st_mtime_ns)}

    def split(path: Path) -> Split:
        stat = path.stat()
        return Split(str(path), 0, stat.st_size, stat.st_size, stat.st_mtime_ns)

    inputs.confined(split(named), listed)
    with pytest.raises(CodecError, match="does not name"):
        inputs.confined(split(other), listed)
    inputs.confined(split(named), listed, roots=[tmp_path])
    with pytest.raises(CodecError, match="outside the input roots"):
        inputs.confined(split(named), listed, roots=[tmp_path / "elsewhere"])
    link = tmp_path / "elsewhere"
    link.mkdir()
    (link / "input.txt").symlink_to(named)  # a link out of the roots is resolved first
    with pytest.raises(CodecError, match="outside the input roots"):
        inputs.confined(split(link / "input.txt"), {str(link / "input.txt"): listed[str(named)]},
                        roots=[link])


def test_passwords_never_reach_the_logs(pool):
    for url in ("redis://:hunter2@h:6379/0", "redis://h:6379/0?password=hunter2&db=1",
                "rediss://u:hunter2@h/0?ssl_ca_certs=/x"):
        assert "hunter2" not in redacted(url)
    logs = "".join(p.read_text(errors="replace") for p in (pool.home / "logs").glob("*.log"))
    assert "redis" in logs and "password=" not in logs.replace("password=***", "")


def test_the_state_directory_and_key_are_private(tmp_path):
    from mapreduce_kafka.shared import signing

    key = signing.ensure_key_file(tmp_path / "new-home")
    assert os.stat(tmp_path / "new-home").st_mode & 0o777 == 0o700
    assert key.stat().st_mode & 0o777 == 0o600
