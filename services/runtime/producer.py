"""The output producer every role uses: idempotent, and loud about lost deliveries.

A delivery report without an error is not proof that a message was written. When a batch
fails with a retriable error (NOT_LEADER on a partition created a moment ago) while the
next batch of the same partition is in flight and succeeds, the broker, which had no state
for this producer on that partition, accepts the later sequence number as the first;
librdkafka then reports the failed batch "implicitly acked" and the retry is refused as a
duplicate. Those messages are reported delivered, at offset -1, and are not in the log
(reproduced with Kafka 4.1.1 and librdkafka 2.16 on about one fresh topic in four, see
tests/integration/test_producer.py). A real acknowledgement carries an offset, so an
offset of -1 counts as a failed delivery: the worker then replays from its last commit, and
replays are harmless downstream.

A failed delivery is sticky: once one is seen, every later flush() and acked_through()
raises too, until the worker restarts. (A caller that retried a failed flush would
otherwise see it succeed and commit input past the lost output.) A delivery the broker
refuses for good (a message too large for it, a record it rejects) names its pipeline in
DeliveryFailed.pipelines: a restart would only replay it and fail the same way, so the
worker fails that pipeline instead of crash-looping on it."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from mapreduce_kafka.shared import auth, signing, topics
from mapreduce_kafka.shared.codec import CodecError, Envelope, fragments
from mapreduce_kafka.shared.metrics import METRICS
from mapreduce_kafka.shared.settings import Settings

# Errors the broker gives for a record it will never accept, however often it is retried.
PERMANENT_DELIVERY_ERRORS = {
    KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.INVALID_RECORD, KafkaError.INVALID_MSG, KafkaError.INVALID_MSG_SIZE,
}


class DeliveryFailed(RuntimeError):
    """The broker refused a produced message: nothing may be committed past its input.
    `pipelines`: those whose records were refused for good (see the module's docstring)."""

    def __init__(self, message: str, pipelines: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.pipelines = pipelines


class OutputProducer:
    """An idempotent producer whose flush() raises if any message since the last flush
    failed, so that a worker never commits input whose output was lost."""

    def __init__(self, settings: Settings, idempotent: bool = True) -> None:
        self._producer = Producer(settings.producer_config(
            **({} if idempotent else {"enable.idempotence": False})))
        self.fragment_bytes = settings.frame_bytes
        self.auth = settings.message_auth()
        self._errors: list[str] = []
        self._failed: DeliveryFailed | None = None  # sticky: see the module's docstring
        self._refused: set[str] = set()  # pipelines with a record refused for good
        # Outputs are numbered by epoch (a worker's batch, see mark()); how many of each
        # epoch are still unacknowledged.
        self._epoch = 0
        self._outstanding: dict[int, int] = {}

    def _settle(self, epoch: int) -> None:
        left = self._outstanding[epoch] - 1
        if left:
            self._outstanding[epoch] = left
        else:
            del self._outstanding[epoch]

    def _on_delivery(self, epoch: int, err: KafkaError | None, msg: Message) -> None:
        self._settle(epoch)
        if err is not None:
            self._errors.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")
            if err.code() in PERMANENT_DELIVERY_ERRORS:
                pipeline = dict(msg.headers() or []).get("mr-p")
                if isinstance(pipeline, bytes):
                    self._refused.add(pipeline.decode())
        elif _unknown_offset(msg.offset()):
            self._errors.append(f"{msg.topic()}[{msg.partition()}]: acknowledged without an "
                                "offset (implicitly acked), so possibly never written")

    def send(self, topic: str, value: bytes | None, envelope: Envelope | None = None, *,
             partition: int = -1, key: bytes | None = None,
             signature: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> None:
        epoch = self._epoch
        kwargs: dict[str, Any] = {"value": value,
                                  "on_delivery": functools.partial(self._on_delivery, epoch)}
        if envelope is not None:
            kwargs["headers"] = envelope.headers()
        if headers:
            kwargs["headers"] = [*kwargs.get("headers", []), *headers]
        pipeline = (envelope.pipeline if envelope is not None
                    else key.decode() if topic == topics.PIPELINES and key else None)
        if self.auth.enabled and pipeline is not None:
            mac = self.auth.tag(pipeline, topic, partition if partition >= 0 else -1,
                                envelope, key, value)
            kwargs["headers"] = [*kwargs.get("headers", []), (auth.HEADER, mac)]
        if signature is not None:  # a pipeline spec's (shared/signing.py)
            kwargs["headers"] = [*kwargs.get("headers", []), (signing.HEADER, signature)]
        if partition >= 0:
            kwargs["partition"] = partition
        if key is not None:
            kwargs["key"] = key
        while True:
            self._outstanding[epoch] = self._outstanding.get(epoch, 0) + 1
            try:
                self._producer.produce(topic, **kwargs)
                METRICS.count(messages_out=1, bytes_out=len(value or b""))
                return
            except BufferError:  # local queue full: let librdkafka send some, then retry
                self._settle(epoch)  # not sent: not outstanding
                self._producer.poll(0.1)
            except KafkaException as exc:
                self._settle(epoch)
                if exc.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    raise CodecError(f"a message of {len(value or b'')} bytes is larger than "
                                     "this producer's message.max.bytes") from exc
                raise

    def send_data(self, topic: str, data: bytes, envelope: Envelope, *,
                  partition: int) -> int:
        """Send a frame of data, as fragments when it is larger than a fragment (a Kafka
        message is a transport limit, not a data limit); returns the messages sent."""
        pieces = fragments(data, self.fragment_bytes)
        for piece, fragment in pieces:
            self.send(topic, piece, envelope if fragment is None
                      else dataclasses.replace(envelope, fragment=fragment),
                      partition=partition)
        return len(pieces)

    def _raise_failed(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            self._failed = DeliveryFailed("; ".join(errors[:5]), frozenset(self._refused))
        if self._failed is not None:
            raise self._failed

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            self._failed = self._failed or DeliveryFailed(
                f"{remaining} messages not delivered within {timeout}s")
        self._raise_failed()

    def open_partitions(self, topic_names: list[str], partitions: int, marker: Envelope,
                        attempts: int = 5) -> int:
        """Write one marker to every partition of new topics, until each is acknowledged with
        an offset; returns the attempts it took. A one-message first write cannot be
        overtaken by a later batch (the loss above), and once it is in, the partition's
        leader is serving. Readers of those topics skip the markers."""
        self.flush()  # earlier deliveries fail here, not in the loop below
        for topic in topic_names:  # learn the new partitions' leaders now: a produce to an
            self._producer.list_topics(topic, timeout=10)  # unknown topic waits ~100 ms
        attempt = 1
        while True:
            for topic in topic_names:
                for partition in range(partitions):
                    self.send(topic, b"", marker, partition=partition)
            self._producer.flush(60.0)
            if not self._errors:
                return attempt
            # Nothing else was in flight: these failures are the markers' own, and a
            # marker that did not land is simply sent again.
            if attempt == attempts:
                self._raise_failed()
            self._errors.clear()
            attempt += 1

    def poll(self) -> None:
        self._producer.poll(0)

    def mark(self) -> int:
        """Close the current epoch (everything sent so far) and return its number."""
        self._epoch += 1
        return self._epoch - 1

    def acked_through(self) -> int:
        """The highest epoch N such that every output of epochs up to N is acknowledged;
        raises DeliveryFailed if any delivery since the last check failed (nothing may
        then be committed past it). Serves pending delivery reports first."""
        self._producer.poll(0)
        self._raise_failed()
        return min(self._outstanding, default=self._epoch) - 1


def _unknown_offset(offset: int | None) -> bool:
    return offset is None or offset < 0
