"""A fatal consumer error restarts the worker whatever its role. Each role is built on the
real broker and Redis and handed the client's own error event: a client-wide error has no
partition, and the shuffler, reducer and sink once skipped it as "not an assigned
partition", going on with a consumer that would never fetch again."""

from __future__ import annotations

import pytest
import structlog
from confluent_kafka import KafkaError, Message
from structlog.testing import capture_logs

from mapreduce_kafka.services.roles import ROLE_NAMES, build
from mapreduce_kafka.services.runtime.process import Runtime
from mapreduce_kafka.shared.errors import ConsumerFailed

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _own_log_context():
    """A Runtime binds its role and worker id to structlog's context: in a worker process
    for life, here only for the test (else later tests' lines carry them)."""
    yield
    structlog.contextvars.clear_contextvars()


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_a_fatal_consumer_error_fails_the_worker(cluster, role):
    rt = Runtime(role, cluster, worker_id=f"{role}-fatal-error-test")
    worker = build(role, rt)
    fatal = Message(error=KafkaError(KafkaError._FATAL, "fenced", fatal=True))
    assert fatal.partition() is None
    try:
        with pytest.raises(ConsumerFailed, match="fenced"):
            worker._process([fatal])  # type: ignore[attr-defined]
    finally:
        consumer = getattr(worker, "consumer", None)
        if consumer is not None:
            consumer.close()
        rt.close()


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_a_transient_consumer_error_is_logged_and_passed(cluster, role):
    rt = Runtime(role, cluster, worker_id=f"{role}-transient-error-test")
    worker = build(role, rt)
    try:
        with capture_logs() as logs:
            worker._process([Message(error=KafkaError(KafkaError._TRANSPORT, "broker down"))])  # type: ignore[attr-defined]
        warnings = [e for e in logs if e["log_level"] == "warning"]
        assert [e["event"] for e in warnings] == ["consumer error"], logs
        assert "broker down" in warnings[0]["error"]
    finally:
        consumer = getattr(worker, "consumer", None)
        if consumer is not None:
            consumer.close()
        rt.close()
