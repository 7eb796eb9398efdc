"""The output producer every role uses: idempotent, and loud about lost deliveries."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from shared.codec import Envelope
from shared.config import Settings


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
