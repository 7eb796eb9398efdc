"""The trust boundary, end to end on the real broker: workers refuse specs that are unsigned,
signed with another key, or tampered with, before unpickling them (a spec that would run code
when unpickled never does), and report why; signed jobs beside them are unaffected."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from mapreduce_kafka.services.client import source
from mapreduce_kafka.services.runtime.producer import OutputProducer
from mapreduce_kafka.shared import signing, topics
from mapreduce_kafka.shared.codec import Envelope, Kind, dump_spec
from mapreduce_kafka.shared.errors import PipelineFailed
from mapreduce_kafka.shared.store import Store
from tests import REPO
from tests.integration import jobs

pytestmark = pytest.mark.integration
SAMPLES = [REPO / "pipelines" / "samples" / "text"]


class _TouchOnLoad:
    """Unpickling this creates a file: the code an attacker would ship."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.path,))


def test_spec_signed_with_another_key_is_refused(pool, tmp_path, monkeypatch):
    monkeypatch.setenv(signing.ENV_KEY, "not-the-cluster-key-" * 2)
    # the message tag (keyed by the same secret) is checked first, then the signature
    with pytest.raises(PipelineFailed, match="(tag|signature) does not verify"):
        job = jobs.submit(pool, jobs.WORDCOUNT, SAMPLES, tmp_path / "out")
        jobs.wait(pool, job)
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def test_unsigned_spec_is_refused(pool, tmp_path):
    # A submitter with no key in insecure mode sends the spec unsigned; the workers are not
    # in insecure mode.
    unsigned = pool.with_(home=tmp_path / "keyless-home", insecure_specs=True)
    assert unsigned.spec_policy().key is None
    with pytest.raises(PipelineFailed,
                       match="unsigned pipeline spec refused|tag does not verify"):
        job = jobs.submit(unsigned, jobs.WORDCOUNT, SAMPLES, tmp_path / "out")
        jobs.wait(pool, job)


def test_tampered_spec_never_runs_and_signed_jobs_are_unaffected(pool, tmp_path):
    marker = tmp_path / "code-ran"
    pid = "tampered-spec"
    store = Store(pool.redis_url)
    assert store.create_pipeline(pid, {"name": "tampered", "output": str(tmp_path / "t"),
                                       "partitions": 2})
    store.touch_source(pid, 600)
    honest = dump_spec({"an": "honest spec"})
    signature = pool.spec_policy().sign(pid, honest)  # valid, but for other bytes
    producer = OutputProducer(pool)
    producer.send(topics.PIPELINES, pickle.dumps(_TouchOnLoad(marker)),
                  Envelope(Kind.ANNOUNCED, pid), key=pid.encode(), signature=signature)
    producer.flush()

    healthy = jobs.submit(pool, jobs.WORDCOUNT, SAMPLES, tmp_path / "healthy")
    jobs.wait(pool, healthy)  # every mapper and reducer read PIPELINES past the tampered spec
    jobs.assert_matches_sequential(healthy)
    with pytest.raises(PipelineFailed, match="signature does not verify"):
        source.wait(pool, pid, lambda _s: None, timeout=60)
    assert not marker.exists(), "a worker unpickled a spec whose signature did not verify"
    # this pipeline's refusal, in a worker's own log (not any refusal of an earlier test)
    refused = [line for log in (pool.home / "logs").glob("*.log")
               for line in log.read_text().splitlines()
               if '"pipeline spec refused"' in line and f'"pipeline": "{pid}"' in line]
    assert refused, "no worker logged the refusal of the tampered spec"
