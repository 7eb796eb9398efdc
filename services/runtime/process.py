"""What every worker process has: settings, Redis store, producer, pipeline view, logger,
a stop flag set by SIGTERM, heartbeats. Built at start-up, never at import."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any, cast

import redis
import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from mapreduce_kafka.services.runtime import lifecycle
from mapreduce_kafka.services.runtime.pipeline_view import PipelineView
from mapreduce_kafka.services.runtime.producer import DeliveryFailed, OutputProducer
from mapreduce_kafka.shared import kafka, topics
from mapreduce_kafka.shared.codec import CodecError, Envelope
from mapreduce_kafka.shared.crashpoints import CrashPointError
from mapreduce_kafka.shared.errors import ConsumerFailed
from mapreduce_kafka.shared.metrics import METRICS
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.spec import PipelineSpec
from mapreduce_kafka.shared.store import Store

# How many times this process restarted in place (services/worker.py re-executes itself
# with it raised by one): the same pid, so its heartbeat and metrics stay one series.
ENV_RESTARTS = "MAPREDUCE_WORKER_RESTARTS"
HEARTBEAT_S = 2.0  # how often a worker tells Redis it is alive (status shows silence)
UNAUTHENTICATED_LOG_INTERVAL_S = 1.0  # per partition: a flood of forgeries logs a line a second


# A commit refused because the group is rebalancing loses nothing: outputs are already
# durable, and the partition's next owner replays from the last commit (replays are
# de-duplicated downstream). Failing the worker instead would leave its member id in the
# group until the session times out, stalling everyone.
REBALANCE_COMMIT_ERRORS = {
    KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.UNKNOWN_MEMBER_ID, KafkaError._ASSIGNMENT_LOST, KafkaError._STATE,
    KafkaError.STALE_MEMBER_EPOCH, KafkaError.FENCED_MEMBER_EPOCH,
}


# The group coordinator is moving or unreachable (a broker restart, a network cut). Offsets
# are cumulative, so the next commit covers this one, and a crash before it only replays.
TRANSIENT_COMMIT_ERRORS = {
    KafkaError._WAIT_COORD, KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._TRANSPORT,
}


# The topic is gone: its pipeline finished and the dispatcher deleted it while a batch of
# its last records was still to be committed (seen in benchmarks/rebalance.py: the worker
# restarted, stalling the other pipelines by seconds). Nothing of it is left to replay.
GONE_TOPIC_COMMIT_ERRORS = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.UNKNOWN_TOPIC_ID}


def commit_refused(error: KafkaError) -> bool:
    """Log and swallow a commit error that only means "replay from the last commit"; False
    for anything else (a bug or a misconfiguration, which must surface)."""
    code = error.code()
    if code in REBALANCE_COMMIT_ERRORS:
        structlog.get_logger("commit").info("commit refused by a rebalance; the next owner "
                                            "replays from the last commit", error=error.str())
        return True
    if code in GONE_TOPIC_COMMIT_ERRORS:
        structlog.get_logger("commit").info("commit refused: the topic is gone with its "
                                            "finished pipeline", error=error.str())
        return True
    if code in TRANSIENT_COMMIT_ERRORS:
        structlog.get_logger("commit").warning("commit deferred: group coordinator "
                                               "unavailable; the next commit covers it",
                                               error=error.str())
        return True
    return False


def commit(consumer: Consumer, offsets: list[Any] | None = None,
           asynchronous: bool = False) -> bool:
    """Synchronous commit by default. Returns False when there was nothing to commit or it
    was refused harmlessly (see above); raises on anything else. An asynchronous commit's
    result goes to the consumer's `on_commit` callback."""
    try:
        if offsets is not None and not offsets:
            return False
        if offsets is None:
            consumer.commit(asynchronous=asynchronous)  # type: ignore[call-overload]
        else:
            consumer.commit(offsets=offsets, asynchronous=asynchronous)  # type: ignore[call-overload]
        return True
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError._NO_OFFSET or commit_refused(exc.args[0]):
            return False
        raise


def check_consumer_error(log: Any, error: KafkaError) -> None:
    """Log a consumer error; raise ConsumerFailed if it is fatal (seen: a KIP-848 heartbeat
    answered INVALID_REQUEST right after an unsubscribe, which left a mapper consuming
    nothing for the rest of its life while it still heartbeated as healthy)."""
    if error.fatal() or error.code() == KafkaError._FATAL:
        raise ConsumerFailed(f"fatal consumer error: {error.str()}")
    if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
        log.debug("topic gone", error=error.str())  # a finished pipeline's topic
    elif error.code() != KafkaError._PARTITION_EOF:
        log.warning("consumer error", error=error.str())


# Failures of the machinery, not of a pipeline's data: the worker restarts and replays
# from what is committed. Anything else raised while handling a pipeline's message is that
# pipeline's problem (a record, a value or an output it cannot be done with): the pipeline
# fails with the reason, and the worker goes on serving the others. A worker that raised
# instead would replay the same message, raise again, and be lost to every pipeline.
INFRASTRUCTURE_ERRORS = (DeliveryFailed, KafkaException, redis.RedisError, ConsumerFailed,
                         CrashPointError, MemoryError)


def is_infrastructure(exc: BaseException) -> bool:
    return isinstance(exc, INFRASTRUCTURE_ERRORS)


def processing_failure(role: str, exc: BaseException, msg: Message) -> str:
    """A pipeline's failure reason: one line saying what could not be done, where."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return (f"{role} could not process {msg.topic()}[{msg.partition()}]@{msg.offset()}: "
            f"{type(exc).__name__}: {text}")


def envelope_of(rt: Runtime, msg: Message) -> Envelope | None:
    """The envelope of a consumed message; None (and logged) for a consumer error, a message
    that cannot be decoded or whose tag does not verify (shared/auth.py), which every role
    skips. A fatal consumer error raises ConsumerFailed."""
    error = msg.error()
    if error is not None:
        check_consumer_error(rt.log, error)
        return None
    # a consumer's headers are (str, bytes) pairs; the client's type also covers a producer's
    headers = cast(list[tuple[str, bytes | None]], msg.headers())
    try:
        envelope = Envelope.from_headers(headers)
    except CodecError as exc:
        rt.log.error("undecodable message skipped", topic=msg.topic(),
                     partition=msg.partition(), offset=msg.offset(), error=str(exc),
                     pipeline=topics.pipeline_of(msg.topic() or ""))
        return None
    topic, partition, _ = kafka.position_of(msg)
    if not rt.auth.check(envelope.pipeline, topic, partition, envelope, msg.key(), msg.value(),
                         headers):
        rt.unauthenticated(msg, envelope)
        return None
    return envelope


@dataclass
class Runtime:
    role: str
    settings: Settings
    worker_id: str = ""
    store: Store = field(init=False)
    producer: OutputProducer = field(init=False)
    view: PipelineView = field(init=False)
    stopping: bool = False
    assignment: list[str] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)  # pipelines this worker saw fail
    _last_beat: float = 0.0

    def __post_init__(self) -> None:
        self.worker_id = self.worker_id or f"{self.role}-{socket.gethostname()}-{os.getpid()}"
        structlog.contextvars.bind_contextvars(role=self.role, worker=self.worker_id)
        self.log = structlog.get_logger(self.role)
        self.store = Store(self.settings.redis_url)
        self.store.check_reachable()
        kafka.check_reachable(self.settings)
        client = kafka.admin(self.settings)
        kafka.ensure_topics(client, kafka.fixed_topics(self.settings),
                            replication_factor=self.settings.replication_factor)
        self.shuffle_partitions = kafka.partition_count(client, topics.SHUFFLE)
        self.output_partitions = kafka.partition_count(client, topics.OUTPUT)
        self.admin = client
        self.producer = OutputProducer(self.settings)
        self.auth = self.settings.message_auth()
        # unauthenticated messages not logged yet, and when the last was logged, per partition
        self._dropped: dict[tuple[str, int], tuple[int, float]] = {}
        self.view = PipelineView(self.settings, self._has_ended)
        self.view.catch_up()

    def spec(self, pipeline_id: str) -> PipelineSpec | None:
        """The spec of a live pipeline, or None. A spec that cannot be loaded here (say it
        imports a module this worker lacks) fails its pipeline, loudly, once."""
        if pipeline_id in self.failed:
            return None
        spec = self.view.spec(pipeline_id)
        if spec is None:
            entry = self.view.entries.get(pipeline_id)
            if entry is not None and entry.error:
                self.fail(pipeline_id, f"spec cannot be loaded on {self.worker_id}: "
                                       f"{entry.error}")
        return spec

    def _has_ended(self, pipeline_id: str) -> bool:
        return self.store.pipeline(pipeline_id).get("state") in ("done", "failed")

    def unauthenticated(self, msg: Message, envelope: Envelope) -> None:
        """A message whose tag does not verify: dropped and logged, at most once a second
        per partition with the number dropped since (an attacker's flood must not flood
        the logs too)."""
        where = (msg.topic() or "", msg.partition() or 0)
        count, last = self._dropped.get(where, (0, float("-inf")))
        now = time.monotonic()
        if now - last < UNAUTHENTICATED_LOG_INTERVAL_S:
            self._dropped[where] = (count + 1, last)
            return
        self._dropped[where] = (0, now)
        self.log.error("unauthenticated message dropped", topic=where[0],
                       partition=where[1], offset=msg.offset(), kind=envelope.kind.value,
                       pipeline=envelope.pipeline, dropped_since_last_line=count)

    def fail(self, pipeline_id: str, reason: str) -> None:
        if pipeline_id in self.failed:
            return
        self.failed.add(pipeline_id)
        self.log.error("pipeline failed", pipeline=pipeline_id, reason=reason)
        # only dispatchers write PIPELINES: they tombstone it (services/runtime/lifecycle.py)
        lifecycle.finish(self.store, self.producer if self.role == "dispatcher" else None,
                         pipeline_id, "failed", reason)

    def forget_finished(self) -> None:
        """Drop what this process remembers of pipelines that are gone (a long-lived worker
        must not grow with every job it ever saw)."""
        self.failed &= set(self.view.entries)

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            self.log.info("stop requested", signal=signal.Signals(signum).name)
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def heartbeat(self, force: bool = False, **fields: Any) -> None:
        now = time.monotonic()
        if force or now - self._last_beat >= HEARTBEAT_S:
            self._last_beat = now
            self.admin.poll(0)  # serves its log lines (the clients' own polls serve theirs)
            # a callable field (a lag, say) is only computed when a beat is due
            values = {k: v() if callable(v) else v for k, v in fields.items()}
            METRICS.set("consumer_lag", float(values.get("lag") or 0))
            METRICS.set("held_bytes", float(values.get("held_bytes") or 0))
            self.store.heartbeat(self.worker_id, {
                "role": self.role, "host": socket.gethostname(), "pid": os.getpid(),
                "partitions": ",".join(self.assignment),
                "strategy": self.settings.resubscribe,
                # restarts in place (services/worker.py): same pid, so the same series
                "restarts": os.environ.get(ENV_RESTARTS, "0"),
                "metrics": json.dumps(METRICS.snapshot()), **values})

    def close(self) -> None:
        self.producer.flush()
        self.view.close()
        self.store.remove_worker(self.worker_id)


def consumer_lag(consumer: Consumer | None) -> int:
    """Messages not yet read on this consumer's assigned partitions, from the high
    watermarks its fetches last saw (no request to the broker)."""
    if consumer is None:
        return 0
    parts = consumer.assignment()
    if not parts:
        return 0
    lag = 0
    for tp in consumer.position(parts):
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        if high >= 0 and tp.offset >= 0:
            lag += max(0, high - tp.offset)
    return lag


def describe(partitions: list[Any]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
