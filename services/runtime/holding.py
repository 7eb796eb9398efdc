"""The shape shufflers and sinks share: they hold a pipeline's data until its end-of-stream
marker, on a topic shared by all pipelines.

A shared topic has one committed offset per partition for all pipelines, so a holder may
not commit past the first record of any pipeline it still holds (the low watermark), or a
crash would lose that data. On replay from the watermark it skips what it already emitted:
the stage's barrier set in Redis says which (pipeline, partition) pairs those are. When
the replay reaches such a pair's end marker, the role's hand-off is checked again
(`replayed_end`): a holder that died between its mark and its hand-off left the next stage
waiting, and whoever finds the stage complete sends it.

A revoked partition is treated exactly like a crashed one: its held data is dropped and
the next owner rebuilds it from the committed low watermark. Held data stays within the
role's memory budget: past it, the largest holding spills to disk (services/runtime/spill.py).
Held data of a pipeline that ended (done, failed, or forgotten) is dropped within SWEEP_S,
tombstone or not, so that it never pins the low watermark."""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from mapreduce_kafka.services.runtime.commit_policy import commit
from mapreduce_kafka.services.runtime.consuming import (
    check_consumer_error,
    consumer_lag,
    describe,
    envelope_of,
)
from mapreduce_kafka.services.runtime.failures import is_pipelines, processing_failure
from mapreduce_kafka.services.runtime.process import Runtime
from mapreduce_kafka.shared import kafka
from mapreduce_kafka.shared.barrier import Stage
from mapreduce_kafka.shared.codec import Envelope, Kind
from mapreduce_kafka.shared.metrics import METRICS
from mapreduce_kafka.shared.reassembly import Reassembler
from mapreduce_kafka.shared.spec import PipelineSpec
from mapreduce_kafka.shared.store import TERMINAL

BATCH = 500
POLL_S = 0.2
SWEEP_S = 5.0  # how often held pipelines are checked for having ended elsewhere


class Holding:
    """One held unit: a pipeline's data from one partition, since `first_offset`."""

    def __init__(self, first_offset: int, data: Any) -> None:
        self.first_offset = first_offset
        self.data: Any = data  # spill.Groups: in memory up to the budget, then on disk
        self.seen: set[tuple[int, int]] = set()
        # a reducer's counters per key it was given (the key's JSON): the last copy of each
        self.counters: dict[bytes, Any] = {}
        self.final: list[Any] = []  # a reduce task's final pairs: the last copy
        self.pieces = Reassembler()  # fragments of oversized messages not complete yet


class HoldingWorker:
    role = ""
    topic = ""
    stage: Stage
    budget_bytes = 0

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.held: dict[int, dict[Hashable, Holding]] = {}
        self.emitted: dict[int, set[Hashable]] = {}
        self.next_offset: dict[int, int] = {}
        self._swept = time.monotonic()
        self.consumer = Consumer(rt.settings.consumer_config(f"{self.role}s"))
        self.consumer.subscribe([self.topic], on_assign=self._assigned,
                                on_revoke=self._revoked, on_lost=self._revoked)

    # ---- what a role defines --------------------------------------------------------

    def hold_key(self, envelope: Envelope) -> Hashable:
        raise NotImplementedError

    def barrier_partition(self, envelope: Envelope, partition: int) -> int:
        raise NotImplementedError

    def new_holding(self, first_offset: int) -> Holding:
        raise NotImplementedError

    def absorb(self, spec: PipelineSpec, holding: Holding, envelope: Envelope,
               value: bytes) -> None:
        raise NotImplementedError

    def absorb_counters(self, holding: Holding, envelope: Envelope, value: bytes) -> None:
        """A COUNTERS message: [[key, counters], ...] (only the sink receives them)."""
        raise NotImplementedError

    def emit(self, spec: PipelineSpec, holding: Holding, envelope: Envelope,
             partition: int) -> None:
        """Write the held data downstream, durably, mark the barrier, hand off."""
        raise NotImplementedError

    def replayed_end(self, spec: PipelineSpec, envelope: Envelope, partition: int) -> None:
        """An end marker of data already emitted: hand off again if the stage is complete."""
        raise NotImplementedError

    # ---- rebalance: revoke == crash -------------------------------------------------

    def _assigned(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        METRICS.count(rebalances=1)
        for tp in parts:
            self.held[tp.partition] = {}
            self.emitted[tp.partition] = set()
        self.rt.assignment = describe(parts)
        self.rt.log.info("partitions assigned", partitions=self.rt.assignment)

    def _revoked(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        METRICS.count(rebalances=1)
        for tp in parts:
            dropped = self.held.pop(tp.partition, {})
            for holding in dropped.values():
                holding.data.discard()
            self.emitted.pop(tp.partition, None)
            self.next_offset.pop(tp.partition, None)
            if dropped:
                self.rt.log.info("held data dropped with revoked partition",
                                 partition=tp.partition, holdings=len(dropped),
                                 pipelines=sorted({self._pipeline_of(k) for k in dropped}))
        self.rt.assignment = []

    # ---- the loop -------------------------------------------------------------------

    def run(self) -> None:
        while not self.rt.stopping:
            if self.rt.view.poll():
                self._drop_ended(set(self.rt.view.entries), "pipeline finished")
                self.rt.forget_finished()
            self._sweep()
            messages = kafka.consume_ready(self.consumer, BATCH, POLL_S)
            if messages:
                self._process(messages)
                self.rt.producer.flush()
                self._commit_low_watermarks()
            self.rt.heartbeat(held=lambda: sum(len(h) for h in self.held.values()),
                              held_bytes=self._held_bytes,
                              lag=lambda: consumer_lag(self.consumer))
        self.rt.producer.flush()
        self._commit_low_watermarks()
        self.consumer.close()
        for holdings in self.held.values():
            for holding in holdings.values():
                holding.data.discard()

    def _sweep(self) -> None:
        """Drop the holdings of pipelines that ended, even if no tombstone came (a kept
        pipeline is never tombstoned)."""
        now = time.monotonic()
        if now - self._swept < SWEEP_S:
            return
        self._swept = now
        held = {self._pipeline_of(k) for holdings in self.held.values() for k in holdings}
        if held:
            states = self.rt.store.states(held)
            self._drop_ended({p for p, s in states.items() if s and s not in TERMINAL},
                             "pipeline ended elsewhere")

    def _drop_ended(self, live: set[str], why: str) -> None:
        for holdings in self.held.values():
            for key in [k for k in holdings if self._pipeline_of(k) not in live]:
                holdings.pop(key).data.discard()
                self.rt.log.info("held data dropped", pipeline=self._pipeline_of(key),
                                 reason=why)
        for emitted in self.emitted.values():
            emitted -= {k for k in emitted if self._pipeline_of(k) not in live
                        and self._pipeline_of(k) not in self.rt.view.entries}

    @staticmethod
    def _pipeline_of(key: Hashable) -> str:
        return key[0] if isinstance(key, tuple) else key  # type: ignore[return-value]

    def _held_bytes(self) -> int:
        return sum(h.data.held_bytes + h.pieces.held_bytes
                   for held in self.held.values() for h in held.values())

    def _keep_to_budget(self) -> None:
        """Spill the largest holdings until what is held in memory fits the budget."""
        holdings = [(h, key) for held in self.held.values() for key, h in held.items()]
        size = sum(h.data.held_bytes + h.pieces.held_bytes for h, _ in holdings)
        while size > self.budget_bytes and holdings:
            largest, key = max(holdings, key=lambda hk: hk[0].data.held_bytes)
            if largest.data.held_bytes == 0:
                break
            size -= largest.data.held_bytes
            path = largest.data.spill()
            METRICS.count(spills=1)
            self.rt.log.info("spilled to disk", pipeline=self._pipeline_of(key), run=path.name,
                             runs=len(largest.data.runs), budget_mb=self.budget_bytes >> 20)

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
            holding = holdings.get(key)
            spec = self.rt.spec_for(envelope)
            if spec is None:
                if holding is not None:
                    holdings.pop(key).data.discard()
                if holding is not None or envelope.kind in (Kind.RECORDS, Kind.COUNTERS):
                    self.rt.log.warning("record of an unknown or finished pipeline skipped",
                                        pipeline=envelope.pipeline, partition=partition,
                                        offset=msg.offset())
                continue
            self.rt.tasks.begin(spec.pipeline_id, kafka.where(msg), runs_user_code=False)
            try:
                self._handle(spec, holdings, key, holding, envelope, msg, partition, offset)
            except BaseException as exc:
                if not is_pipelines(exc):
                    raise  # the worker restarts; a failure in the task is charged
                self.rt.log.exception("pipeline's message could not be processed",
                                      pipeline=spec.pipeline_id)
                if key in holdings:
                    holdings.pop(key).data.discard()
                self.emitted[partition].add(key)
                self.rt.fail(spec.pipeline_id, processing_failure(self.role, exc, msg))
            self.rt.tasks.end()

    def _handle(self, spec: PipelineSpec, holdings: dict[Hashable, Holding], key: Hashable,
                holding: Holding | None, envelope: Envelope, msg: Message, partition: int,
                offset: int) -> None:
        if key in self.emitted[partition]:
            if envelope.kind is Kind.STREAM_ENDED:
                self.replayed_end(spec, envelope, partition)
            return
        if holding is None:
            barrier_partition = self.barrier_partition(envelope, partition)
            if self.rt.store.has_ended(envelope.pipeline, self.stage, barrier_partition,
                                       envelope.step):
                self.emitted[partition].add(key)  # replay of data already emitted
                if envelope.kind is Kind.STREAM_ENDED:
                    self.replayed_end(spec, envelope, partition)
                return
            holding = holdings[key] = self.new_holding(offset)
        if envelope.kind in (Kind.RECORDS, Kind.COUNTERS):
            value = kafka.value_of(msg)
            if envelope.fragment is not None:
                whole = holding.pieces.add(envelope.fragment, value, (self.topic, partition),
                                           offset, key)
                if whole is None:
                    return
                value = whole
            if envelope.kind is Kind.COUNTERS:
                self.absorb_counters(holding, envelope, value)
                return
            self.absorb(spec, holding, envelope, value)
            self._keep_to_budget()
        elif envelope.kind is Kind.STREAM_ENDED:
            self.emit(spec, holding, envelope, partition)
            holdings.pop(key).data.discard()
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
