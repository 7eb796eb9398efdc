"""The shape shufflers and sinks share: they hold a pipeline's data in memory until its
end-of-stream marker, on a topic shared by all pipelines.

A shared topic has one committed offset per partition for all pipelines, so a holder may
not commit past the first record of any pipeline it still holds (the low watermark), or a
crash would lose that data. On replay from the watermark it skips what it already emitted:
the stage's barrier set in Redis says which (pipeline, partition) pairs those are.

A revoked partition is treated exactly like a crashed one: its held data is dropped and
the next owner rebuilds it from the committed low watermark."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from services.runtime import (
    Runtime,
    check_consumer_error,
    commit,
    consumer_lag,
    describe,
    envelope_of,
)
from shared import kafka
from shared.barrier import Stage
from shared.codec import Envelope, Kind
from shared.spec import PipelineSpec

BATCH = 500
POLL_S = 0.2


class Holding:
    """One held unit: a pipeline's data from one partition, since `first_offset`."""

    def __init__(self, first_offset: int, data: Any = None) -> None:
        self.first_offset = first_offset
        self.data: Any = {} if data is None else data
        self.seen: set[tuple[int, int]] = set()


class HoldingWorker:
    role = ""
    topic = ""
    stage: Stage

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.held: dict[int, dict[Hashable, Holding]] = {}
        self.emitted: dict[int, set[Hashable]] = {}
        self.next_offset: dict[int, int] = {}
        self.consumer = Consumer(rt.settings.consumer_config(f"{self.role}s"))
        self.consumer.subscribe([self.topic], on_assign=self._assigned,
                                on_revoke=self._revoked, on_lost=self._revoked)

    # ---- what a role defines --------------------------------------------------------

    def hold_key(self, envelope: Envelope) -> Hashable:
        raise NotImplementedError

    def barrier_partition(self, envelope: Envelope, partition: int) -> int:
        raise NotImplementedError

    def absorb(self, spec: PipelineSpec, holding: Holding, envelope: Envelope,
               msg: Message) -> None:
        raise NotImplementedError

    def emit(self, spec: PipelineSpec, holding: Holding, envelope: Envelope,
             partition: int) -> None:
        """Write the held data downstream, durably, then mark the barrier."""
        raise NotImplementedError

    def new_holding(self, first_offset: int) -> Holding:
        return Holding(first_offset)

    def release(self, holding: Holding) -> None:
        """A holding is dropped (emitted, revoked, finished elsewhere): free what it owns
        beyond memory."""

    # ---- rebalance: revoke == crash -------------------------------------------------

    def _assigned(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        for tp in parts:
            self.held[tp.partition] = {}
            self.emitted[tp.partition] = set()
        self.rt.assignment = describe(parts)
        self.rt.log.info("partitions assigned", partitions=self.rt.assignment)

    def _revoked(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        for tp in parts:
            dropped = self.held.pop(tp.partition, {})
            for holding in dropped.values():
                self.release(holding)
            self.emitted.pop(tp.partition, None)
            self.next_offset.pop(tp.partition, None)
            if dropped:
                self.rt.log.info("held data dropped with revoked partition",
                                 partition=tp.partition, holdings=len(dropped))
        self.rt.assignment = []

    # ---- the loop -------------------------------------------------------------------

    def run(self) -> None:
        while not self.rt.stopping:
            if self.rt.view.poll():
                self._drop_finished()
            messages = kafka.consume_ready(self.consumer, BATCH, POLL_S)
            if messages:
                self._process(messages)
                self.rt.producer.flush()
                self._commit_low_watermarks()
            self.rt.heartbeat(held=lambda: sum(len(h) for h in self.held.values()),
                              lag=lambda: consumer_lag(self.consumer))
        self.rt.producer.flush()
        self._commit_low_watermarks()
        self.consumer.close()
        for holdings in self.held.values():
            for holding in holdings.values():
                self.release(holding)

    def _drop_finished(self) -> None:
        live = set(self.rt.view.entries)
        for holdings in self.held.values():
            for key in [k for k in holdings if self._pipeline_of(k) not in live]:
                self.release(holdings.pop(key))

    @staticmethod
    def _pipeline_of(key: Hashable) -> str:
        return key[0] if isinstance(key, tuple) else key  # type: ignore[return-value]

    def _process(self, messages: list[Message]) -> None:
        for msg in messages:
            error = msg.error()
            if error is not None:  # before the partition: a client-wide error has none
                check_consumer_error(self.rt.log, error)
                continue
            _, partition, offset = kafka.position_of(msg)
            holdings = self.held.get(partition)
            if holdings is None:
                continue  # revoked while the batch was in hand
            self.next_offset[partition] = offset + 1
            envelope = envelope_of(self.rt, msg)
            if envelope is None:
                continue
            key = self.hold_key(envelope)
            if key in self.emitted[partition]:
                continue
            holding = holdings.get(key)
            spec = self.rt.spec(envelope.pipeline)
            if spec is None:
                if holding is not None:
                    self.release(holdings.pop(key))
                if holding is not None or envelope.kind is Kind.RECORDS:
                    self.rt.log.warning("record of an unknown or finished pipeline skipped",
                                        pipeline=envelope.pipeline, partition=partition,
                                        offset=msg.offset())
                continue
            if holding is None:
                barrier_partition = self.barrier_partition(envelope, partition)
                if self.rt.store.has_ended(envelope.pipeline, self.stage, barrier_partition):
                    self.emitted[partition].add(key)  # replay of data already emitted
                    continue
                holding = holdings[key] = self.new_holding(offset)
            if envelope.kind is Kind.RECORDS:
                self.absorb(spec, holding, envelope, msg)
            elif envelope.kind is Kind.STREAM_ENDED:
                self.emit(spec, holding, envelope, partition)
                self.release(holdings.pop(key))
                self.emitted[partition].add(key)

    def _commit_low_watermarks(self) -> None:
        offsets = []
        for partition, next_offset in self.next_offset.items():
            holdings = self.held.get(partition)
            if holdings is None:
                continue
            low = min((h.first_offset for h in holdings.values()), default=next_offset)
            offsets.append(TopicPartition(self.topic, partition, low))
        commit(self.consumer, offsets)
