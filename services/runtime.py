"""What every worker process has: settings, Redis store, producer, pipeline view, logger,
a stop flag set by SIGTERM, heartbeats. Built at start-up, never at import."""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from services.pipeline_view import PipelineView
from shared import kafka, topics
from shared.codec import Envelope
from shared.config import Settings
from shared.store import Store

HEARTBEAT_S = 2.0  # how often a worker tells Redis it is alive (status shows silence)


class DeliveryFailed(RuntimeError):
    """The broker refused a produced message: nothing may be committed past its input."""


class OutputProducer:
    """An idempotent producer whose flush() raises if any message since the last flush
    failed, so that a worker never commits input whose output was lost."""

    def __init__(self, settings: Settings) -> None:
        self._producer = Producer(settings.producer_config())
        self._errors: list[str] = []

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")

    def send(self, topic: str, value: bytes | None, envelope: Envelope | None = None, *,
             partition: int = -1, key: bytes | None = None) -> None:
        kwargs: dict[str, Any] = {"value": value, "on_delivery": self._on_delivery}
        if envelope is not None:
            kwargs["headers"] = envelope.headers()
        if partition >= 0:
            kwargs["partition"] = partition
        if key is not None:
            kwargs["key"] = key
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                return
            except BufferError:  # local queue full: let librdkafka send some, then retry
                self._producer.poll(0.1)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise DeliveryFailed(f"{remaining} messages not delivered within {timeout}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed("; ".join(errors[:5]))

    def poll(self) -> None:
        self._producer.poll(0)


def commit(consumer: Consumer, offsets: list[Any] | None = None) -> None:
    """Synchronous commit; "nothing to commit" is not an error."""
    try:
        if offsets is None:
            consumer.commit(asynchronous=False)
        elif offsets:
            consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            raise


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
    _last_beat: float = 0.0

    def __post_init__(self) -> None:
        self.worker_id = self.worker_id or f"{self.role}-{socket.gethostname()}-{os.getpid()}"
        structlog.contextvars.bind_contextvars(role=self.role, worker=self.worker_id)
        self.log = structlog.get_logger(self.role)
        self.store = Store(self.settings.redis_url)
        self.store.check_reachable()
        kafka.check_reachable(self.settings)
        client = kafka.admin(self.settings)
        kafka.ensure_topics(client, kafka.fixed_topics(self.settings))
        self.shuffle_partitions = kafka.partition_count(client, topics.SHUFFLE)
        self.output_partitions = kafka.partition_count(client, topics.OUTPUT)
        self.admin = client
        self.producer = OutputProducer(self.settings)
        self.view = PipelineView(self.settings)
        self.view.catch_up()

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
            self.store.heartbeat(self.worker_id, {
                "role": self.role, "host": socket.gethostname(), "pid": os.getpid(),
                "partitions": ",".join(self.assignment), **fields})

    def close(self) -> None:
        self.producer.flush()
        self.view.close()
        self.store.remove_worker(self.worker_id)


def describe(partitions: list[Any]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
