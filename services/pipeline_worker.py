"""The shape mappers and reducers share: consume every live per-pipeline topic of the role,
resubscribing through the state machine when pipelines come and go; per batch, process,
make outputs durable (flush), then commit."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message

from services import lifecycle
from services.resubscriber import ReconnectStrategy
from services.runtime import Runtime, commit, describe
from shared.barrier import Stage
from shared.codec import CodecError, Envelope, Kind
from shared.spec import PipelineSpec

BATCH = 500  # messages per consume(): amortizes the flush and commit round trips
POLL_S = 0.2  # consume() wait when idle: bounds how late a stop or a new pipeline is seen
# After a pipeline change, keep reading announcements until none arrives for this long, so
# that a burst costs one rebalance; bounded so that a steady stream cannot starve us.
COALESCE_S = 0.1
COALESCE_MAX_S = 1.0


class PipelineTopicWorker:
    role = ""
    stage: Stage

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.processed = 0
        self.strategy = ReconnectStrategy(self._make_consumer, self._drain, self._subscribe)

    # ---- what a role defines --------------------------------------------------------

    def topic_for(self, pipeline_id: str) -> str:
        raise NotImplementedError

    def on_records(self, spec: PipelineSpec, envelope: Envelope, msg: Message) -> None:
        raise NotImplementedError

    def on_end(self, spec: PipelineSpec, envelope: Envelope, partition: int) -> None:
        raise NotImplementedError

    def after_batch(self) -> None:
        """Called after outputs are durable and before the commit."""

    # ---- the loop -------------------------------------------------------------------

    def wanted(self) -> frozenset[str]:
        return frozenset(self.topic_for(p) for p in self.rt.view.ready_ids() - self.rt.failed)

    def run(self) -> None:
        self.strategy.topics_changed(self.wanted(), "startup")
        while not self.rt.stopping:
            consumer = self.strategy.consumer
            changed = self.rt.view.poll(timeout=0.0 if consumer else POLL_S)
            if changed:
                changed |= self._settle()
                self.strategy.topics_changed(self.wanted(),
                                             f"pipelines changed: {','.join(sorted(changed))}")
                consumer = self.strategy.consumer
            if consumer is not None:
                messages = consumer.consume(num_messages=BATCH, timeout=POLL_S)
                if messages:
                    self._process(messages)
                    self._drain()
            self.rt.heartbeat(processed=self.processed)
        self.strategy.close()

    def _settle(self) -> set[str]:
        changed: set[str] = set()
        deadline = time.monotonic() + COALESCE_MAX_S
        while time.monotonic() < deadline:
            more = self.rt.view.poll(timeout=COALESCE_S)
            if not more:
                break
            changed |= more
        return changed

    def _make_consumer(self) -> Consumer:
        return Consumer(self.rt.settings.consumer_config(f"{self.role}s"))

    def _subscribe(self, consumer: Consumer, topic_list: list[str]) -> None:
        def assigned(_c: Consumer, parts: list[Any]) -> None:
            self.rt.assignment = describe(parts)
            self.rt.log.info("partitions assigned", partitions=self.rt.assignment)

        def revoked(_c: Consumer, parts: list[Any]) -> None:
            self.rt.log.info("partitions revoked", partitions=describe(parts))
            self.rt.assignment = []

        consumer.subscribe(topic_list, on_assign=assigned, on_revoke=revoked)

    def _drain(self) -> None:
        """Outputs durable, then offsets committed: never the other way round."""
        self.rt.producer.flush()
        self.after_batch()
        if self.strategy.consumer is not None:
            commit(self.strategy.consumer)

    def _process(self, messages: list[Message]) -> None:
        for msg in messages:
            error = msg.error()
            if error is not None:
                if error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._PARTITION_EOF):
                    self.rt.log.debug("topic gone", error=error.str())  # deleted after finishing
                else:
                    self.rt.log.warning("consumer error", error=error.str())
                continue
            try:
                envelope = Envelope.from_headers(msg.headers())
            except CodecError as exc:
                self.rt.log.error("undecodable message skipped", topic=msg.topic(),
                                  partition=msg.partition(), offset=msg.offset(), error=str(exc))
                continue
            spec = self.rt.spec(envelope.pipeline)
            if spec is None:
                continue  # finished, failed, or never announced: nothing to do with it
            self.processed += 1
            if envelope.kind is Kind.RECORDS:
                try:
                    self.on_records(spec, envelope, msg)
                except CodecError as exc:  # a frame that cannot become records or messages
                    self.rt.fail(spec.pipeline_id, lifecycle.user_error_reason(
                        self.role, exc, f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"))
            elif envelope.kind is Kind.STREAM_ENDED:
                self.on_end(spec, envelope, msg.partition())
