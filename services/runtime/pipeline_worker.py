"""The shape mappers and reducers share: consume every live per-pipeline topic of the role,
resubscribing through the state machine when pipelines come and go; per batch, process,
then commit once its outputs are durable.

Batches overlap with their deliveries: while one batch's outputs travel to the broker the
next is processed, and a batch's offsets are committed when the producer has every output
up to it acknowledged (services/runtime/commit_queue.py). Waiting for each batch's flush and commit
in turn left the mappers idle about 30% of the time (py-spy, README). Before partitions
move (a resubscription, a revocation, a stop) everything is flushed and committed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from mapreduce_kafka.services.runtime.commit_policy import commit, commit_refused
from mapreduce_kafka.services.runtime.commit_queue import CommitQueue, PendingBatch, next_offsets
from mapreduce_kafka.services.runtime.consuming import consumer_lag, describe, envelope_of
from mapreduce_kafka.services.runtime.failures import is_pipelines, processing_failure
from mapreduce_kafka.services.runtime.process import Runtime
from mapreduce_kafka.services.runtime.resubscriber import build_strategy
from mapreduce_kafka.shared import kafka, topics
from mapreduce_kafka.shared.codec import INPUT_KINDS, Envelope, Kind
from mapreduce_kafka.shared.crashpoints import crash_point
from mapreduce_kafka.shared.metrics import METRICS
from mapreduce_kafka.shared.reassembly import Reassembler, clamp
from mapreduce_kafka.shared.resubscribe_strategies import consumer_overrides
from mapreduce_kafka.shared.spec import PipelineSpec

# A batch is sized to take about this long. Longer amortizes the flush and commit round
# trips better; shorter bounds how late a stop, a new pipeline or a commit is seen (a mapper
# frame can take 0.1-0.2 s of user code, so a fixed count of frames would not do).
BATCH_BUDGET_S = 0.25
# With a consumer per pipeline (group-per-pipeline) each gets a batch in every round: this
# shorter budget bounds how long one pipeline's batch holds up another's (a new pipeline's
# first records, its consumer's callbacks) and how late a new pipeline is seen at all.
SHARED_BATCH_BUDGET_S = 0.05
MAX_BATCH = 500
POLL_S = 0.2  # consume() wait when idle: bounds how late a stop or a new pipeline is seen
# After a pipeline change, keep reading announcements until none arrives for this long, so
# that a burst costs one rebalance; bounded so that a steady stream cannot starve us.
COALESCE_S = 0.05
COALESCE_MAX_S = 1.0
# Batches whose outputs may be in flight at once; past this, wait for their deliveries
# (the producer's queue is bounded too, see Settings.producer_config).
MAX_PENDING_BATCHES = 4


def drains_on_revoke(strategy_drains: bool, guarantees: set[str]) -> bool:
    """Whether a revocation flushes every output and commits before the partitions move.
    A strategy that does not (group-per-pipeline) leaves what was processed and not yet
    acknowledged to the next owner, whose replay is dropped downstream, except in an
    at-least-once pipeline, which counts a replay again: a rebalance with nothing failed
    (a worker joining a pipeline's group) would change its result."""
    return strategy_drains or "at-least-once" in guarantees


class PipelineTopicWorker:
    role = ""
    prefix = ""  # MAP--- or REDUCE---: the regex strategy subscribes to ^<prefix>.*
    # crash points (shared/crashpoints.py): a batch's outputs sent / durable, not committed
    point_batch_produced = ""
    point_batch_durable = ""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.processed = 0
        # per consumer: adapted to the batch budget from the measured cost per message (a
        # pipeline of cheap messages must not size another pipeline's batches)
        self.batch_sizes: dict[int, int] = {}
        self.assigned: set[str] = set()
        self.awaiting_first: set[str] = set()  # assigned partitions not yet read from
        self.pending = CommitQueue()  # processed batches whose outputs are in flight
        self.pieces = Reassembler()  # fragments of oversized messages not complete yet
        self.strategy = build_strategy(rt.settings.resubscribe, self.prefix,
                                       self._make_consumer, self._drain, self._forget_topic,
                                       self._subscribe, rt.settings.pipeline_consumers)

    # ---- what a role defines --------------------------------------------------------

    def topic_for(self, pipeline_id: str) -> str:
        raise NotImplementedError

    def on_records(self, spec: PipelineSpec, envelope: Envelope, value: bytes,
                   msg: Message) -> None:
        """A frame of data (reassembled when it came in fragments; `msg` is its last)."""
        raise NotImplementedError

    def on_end(self, spec: PipelineSpec, envelope: Envelope, partition: int) -> None:
        raise NotImplementedError

    def batch_payload(self) -> Any:
        """What the role noted while processing a batch, handed to after_durable() once the
        batch's outputs are durable (None: nothing)."""
        return None

    def after_durable(self, payloads: list[Any]) -> None:
        """Called with the payloads of batches whose outputs became durable, before their
        offsets are committed."""

    def data_arrived(self, spec: PipelineSpec, envelope: Envelope, msg: Message) -> None:
        """Every message of data, a fragment too, before it is reassembled: where a task
        that must be replayed whole begins (services/roles/reducer.py)."""

    def held_offsets(self) -> dict[tuple[str, int], int]:
        """Per (topic, partition), an offset not to commit past yet (a task still open)."""
        return {}

    def partitions_gone(self, which: Callable[[tuple[str, int]], bool]) -> None:
        """Partitions this worker no longer reads (revoked, lost, or their pipeline
        ended): whatever the role holds for them is dropped."""

    # ---- the loop -------------------------------------------------------------------

    def wanted(self) -> tuple[str, ...]:
        """The topics of the live pipelines, in the order they were announced."""
        ready = self.rt.view.ready_ids() - self.rt.failed
        return tuple(self.topic_for(p) for p in self.rt.view.entries if p in ready)

    def run(self) -> None:
        self._follow(self.wanted(), "startup")
        idle = False
        while not self.rt.stopping:
            consumers = self.strategy.consumers()
            changed = self.rt.view.poll(timeout=0.0 if consumers else POLL_S)
            if changed:
                if self.strategy.coalesce:
                    changed |= self._settle()
                self._forget_finished()
                self._follow(self.wanted(), f"pipelines changed: {','.join(sorted(changed))}")
                consumers = self.strategy.consumers()
            if consumers:
                # A round: one batch from each consumer (a pipeline each, with
                # group-per-pipeline), so no pipeline's backlog delays another's by more than
                # a batch, and every consumer's callbacks are served every round. After a
                # round that found nothing, each waits its share of POLL_S.
                budget = SHARED_BATCH_BUDGET_S if self.strategy.fair_share else BATCH_BUDGET_S
                wait = POLL_S / len(consumers) if idle else 0.0
                idle = True
                for consumer in consumers:
                    if self._batch(consumer, wait, budget):
                        idle = False
                self._commit_durable(wait=len(self.pending) > MAX_PENDING_BATCHES)
            self.rt.heartbeat(processed=self.processed,
                              lag=lambda: sum(map(consumer_lag, self.strategy.consumers())))
        self.strategy.close()

    def _follow(self, wanted: tuple[str, ...], reason: str) -> None:
        """Hand the strategy the topics to follow now, timed (a resubscription)."""
        started = time.monotonic()
        self.strategy.topics_changed(wanted, reason)
        METRICS.count(resubscriptions=1, resubscription_seconds=time.monotonic() - started)

    def _batch(self, consumer: Consumer, wait: float, budget: float) -> bool:
        """Process one batch from a consumer; whether there was one."""
        size = self.batch_sizes.get(id(consumer), 1)
        messages = kafka.consume_ready(consumer, size, wait)
        if not messages:
            return False
        started = time.monotonic()
        self._process(messages)
        offsets = next_offsets(kafka.position_of(m) for m in messages if m.error() is None)
        crash_point(self.point_batch_produced, *self._pipelines_of(offsets))
        held = self.pieces.first_offsets()
        for where, offset in self.held_offsets().items():
            held[where] = min(offset, held.get(where, offset))
        self.pending.add(PendingBatch(self.rt.producer.mark(), clamp(offsets, held),
                                      self.batch_payload()))
        self.batch_sizes[id(consumer)] = _adapted(size, len(messages),
                                                  time.monotonic() - started, budget)
        if len(self.batch_sizes) > 4 * len(self.strategy.consumers()) + 8:
            live = {id(c) for c in self.strategy.consumers()}  # closed consumers' sizes
            self.batch_sizes = {k: v for k, v in self.batch_sizes.items() if k in live}
        return True

    def _pipelines_of(self, offsets: dict[tuple[str, int], int]) -> list[str]:
        return sorted({topic[len(self.prefix):] for topic, _ in offsets})

    def _forget_finished(self) -> None:
        live = set(self.rt.view.entries)
        self.pieces.drop(lambda owner, _where: owner not in live)
        self.partitions_gone(lambda where: where[0][len(self.prefix):] not in live)
        self.rt.forget_finished()

    def _settle(self) -> set[str]:
        changed: set[str] = set()
        deadline = time.monotonic() + COALESCE_MAX_S
        while time.monotonic() < deadline:
            more = self.rt.view.poll(timeout=COALESCE_S)
            if not more:
                break
            changed |= more
        return changed

    def _make_consumer(self, topic: str | None = None) -> Consumer:
        """A consumer in the role's group for its strategy, or with a topic, in its
        pipeline's own group."""
        settings = self.rt.settings
        if topic is None:
            # One shared group per strategy, never one group for all: workers of two
            # strategies in one group (a strategy changed by restarting workers) mix
            # assignors or group protocols, and the broker then refuses the newcomers
            # (INCONSISTENT_GROUP_PROTOCOL; GROUP_ID_NOT_FOUND while it cannot convert a
            # classic group holding a dead member), or converts the group online, a path
            # with known assignment bugs in Kafka 4.1 (KAFKA-21582, KAFKA-21684). A new
            # group reads running pipelines from their start: a replay, dropped downstream.
            group = f"{self.role}s-{settings.resubscribe}"
        else:
            group = f"{self.role}s.{topic[len(self.prefix):]}"
        return Consumer(settings.consumer_config(
            group, on_commit=_on_commit,
            **consumer_overrides(settings.resubscribe)))  # type: ignore[arg-type]

    def _forget_topic(self, topic: str) -> None:
        """A pipeline that ended: what is pending of it is never committed or completed."""
        self.pending.forget_topic(topic)
        self.pieces.drop(lambda _owner, where: where[0] == topic)
        self.partitions_gone(lambda where: where[0] == topic)
        # its consumer is closed without a revocation: the partitions go from the heartbeat
        gone = {p for p in self.assigned if p.rpartition("[")[0] == topic}
        self.assigned -= gone
        self.awaiting_first -= gone
        self.rt.assignment = sorted(self.assigned)

    def _subscribe(self, consumer: Consumer, topic_list: list[str]) -> None:
        # Incremental (cooperative, KIP-848) or whole (eager): a set handles both.
        def assigned(_c: Consumer, parts: list[Any]) -> None:
            METRICS.count(rebalances=1)
            self.assigned |= set(describe(parts))
            self.awaiting_first |= set(describe(parts))
            self.rt.assignment = sorted(self.assigned)
            self.rt.log.info("partitions assigned", partitions=describe(parts),
                             pipelines=topics.pipelines_of(describe(parts)))
            if parts:
                self.strategy.on_assigned({p.topic for p in parts})

        def revoked(_c: Consumer, parts: list[Any]) -> None:
            if self.strategy.is_closing(_c):
                return  # an ended pipeline's consumer closing on its own thread
            if drains_on_revoke(self.strategy.drain_on_revoke, self._guarantees(parts)):
                self._drain()  # what was processed from them is committed before they move
            else:  # commit what is durable; the next owner replays the rest
                self._commit_durable(wait=False)
                self.pending.forget({(p.topic, p.partition) for p in parts})
            self._unassigned(parts, "partitions revoked")

        def lost(_c: Consumer, parts: list[Any]) -> None:
            if self.strategy.is_closing(_c):
                return
            # Already someone else's: committing them would fail; their next owner replays
            # from the last commit, and the replay is dropped downstream.
            self.pending.forget({(p.topic, p.partition) for p in parts})
            self._unassigned(parts, "partitions lost")

        consumer.subscribe(topic_list, on_assign=assigned, on_revoke=revoked, on_lost=lost)

    def _guarantees(self, parts: list[Any]) -> set[str]:
        """The guarantees of the pipelines these partitions belong to, as far as this
        worker knows them (it reads nothing inside a rebalance callback)."""
        specs = (self.rt.view.known_spec(p) for p in topics.pipelines_of(describe(parts)))
        return {spec.guarantee for spec in specs if spec is not None}

    def _unassigned(self, parts: list[Any], event: str) -> None:
        METRICS.count(rebalances=1)
        gone = {(p.topic, p.partition) for p in parts}
        self.pieces.drop(lambda _owner, where: where in gone)  # the next owner re-reads them
        self.partitions_gone(lambda where: where in gone)
        self.assigned -= set(describe(parts))
        self.awaiting_first -= set(describe(parts))
        self.rt.assignment = sorted(self.assigned)
        self.rt.log.info(event, partitions=describe(parts),
                         pipelines=topics.pipelines_of(describe(parts)))

    def _drain(self) -> None:
        """Every output durable, then every processed offset committed."""
        self._commit_durable(wait=True)

    def _commit_durable(self, wait: bool) -> None:
        """Commit the batches whose outputs are all acknowledged (with `wait`, all of them,
        synchronously). Outputs durable, then offsets committed: never the other way round.
        A failed delivery raises here, before anything past it is committed."""
        if wait:
            self.rt.producer.flush()
        settled = self.pending.settle(self.rt.producer.acked_through())
        if settled.payloads:
            self.after_durable(settled.payloads)
        if not settled.offsets:
            return
        crash_point(self.point_batch_durable, *self._pipelines_of(settled.offsets))
        # each offset to the consumer of its pipeline's group (one for most strategies)
        by_consumer: dict[int, tuple[Consumer, list[TopicPartition]]] = {}
        for (topic, partition), offset in settled.offsets.items():
            consumer = self.strategy.consumer_for(topic)
            if consumer is not None:  # else its pipeline ended and its consumer closed
                by_consumer.setdefault(id(consumer), (consumer, []))[1].append(
                    TopicPartition(topic, partition, offset))
        for consumer, offsets in by_consumer.values():
            commit(consumer, offsets, asynchronous=not wait)

    def _process(self, messages: list[Message]) -> None:
        counts: dict[str, int] = {}
        for msg in messages:
            if self.awaiting_first and msg.error() is None:
                self._first_after_assignment(msg)  # before a record is skipped as forged
            envelope = envelope_of(self.rt, msg)
            if envelope is None:
                continue
            spec = self.rt.spec_for(envelope)
            if spec is None:  # finished, failed, or never announced: nothing to do with it
                self.rt.log.warning("record of an unknown or finished pipeline skipped",
                                    pipeline=envelope.pipeline, topic=msg.topic(),
                                    partition=msg.partition(), offset=msg.offset())
                continue
            self.processed += 1
            self.rt.tasks.begin(spec.pipeline_id, kafka.where(msg), spec.task_timeout_s)
            try:
                if envelope.kind in INPUT_KINDS:
                    self.data_arrived(spec, envelope, msg)
                    value = self._whole_value(envelope, msg)
                    if value is not None:
                        counts[envelope.pipeline] = counts.get(envelope.pipeline, 0) + 1
                        self.on_records(spec, envelope, value, msg)
                elif envelope.kind is Kind.STREAM_ENDED:
                    self._log_progress(counts)  # before the end can move on and end the job
                    counts = {}
                    # pieces of a message whose sender died mid-way: never completed now
                    self._drop_pieces(spec.pipeline_id, kafka.position_of(msg)[:2])
                    self.on_end(spec, envelope, kafka.partition_of(msg))
                # Kind.READY: the marker the dispatcher opens each new partition with
            except BaseException as exc:
                if not is_pipelines(exc):
                    raise  # the worker restarts; a failure in the task is charged
                self.rt.log.exception("pipeline's message could not be processed",
                                      pipeline=spec.pipeline_id)
                self.rt.fail(spec.pipeline_id, processing_failure(self.role, exc, msg))
            self.rt.tasks.end()
        self._log_progress(counts)

    def _first_after_assignment(self, msg: Message) -> None:
        """Where a newly assigned partition starts reading: at its committed offset, or at
        0 for a group that never committed. Later means records were deleted before they
        were processed (retention, delete-records) and the consumer skipped to the log's
        start: the pipeline's result would lack them, so it fails, loudly."""
        topic, partition, offset = kafka.position_of(msg)
        where = f"{topic}[{partition}]"
        if where not in self.awaiting_first:
            return
        self.awaiting_first.discard(where)
        pipeline_id = topic[len(self.prefix):]
        self.rt.log.info("first record after assignment", partition=where, offset=offset,
                         pipeline=pipeline_id)
        consumer = self.strategy.consumer_for(topic)
        if offset == 0 or consumer is None:
            return
        committed = consumer.committed([TopicPartition(topic, partition)], timeout=10)[0]
        lost = skipped(offset, committed.offset)
        if lost is not None:
            self.rt.fail(pipeline_id, f"records {lost[0]}..{lost[1] - 1} of {where} were "
                                      "deleted before they were processed (retention or "
                                      "delete-records): the result would lack them")

    def _drop_pieces(self, pipeline_id: str, where: tuple[str, int]) -> None:
        self.pieces.drop(lambda owner, at: owner == pipeline_id and at == where)

    def _whole_value(self, envelope: Envelope, msg: Message) -> bytes | None:
        """The message's value, or for a fragment the whole value once its last piece is
        in (None until then)."""
        value = kafka.value_of(msg)
        if envelope.fragment is None:
            return value
        topic, partition, offset = kafka.position_of(msg)
        return self.pieces.add(envelope.fragment, value, (topic, partition), offset,
                               envelope.pipeline)

    def _log_progress(self, counts: dict[str, int]) -> None:
        """One event per batch: frames processed per pipeline (the rebalance benchmark
        reads progress from these)."""
        if counts:
            self.rt.log.debug("batch", counts=counts)


def skipped(first: int, committed: int) -> tuple[int, int] | None:
    """The offsets [start, end) a consumer skipped when the first record it read after an
    assignment is at `first` and its group had committed `committed` (negative: never)."""
    expected = committed if committed >= 0 else 0
    return (expected, first) if first > expected else None


def _adapted(size: int, count: int, elapsed: float, budget: float) -> int:
    """The next batch size: what fits the budget at the measured cost per message, grown
    gently (a burst of cheap end markers must not make the next batch huge)."""
    per_message = max(elapsed / count, 1e-5)
    return max(1, min(MAX_BATCH, int(budget / per_message), size * 2))


def _on_commit(error: KafkaError | None, _partitions: list[TopicPartition]) -> None:
    """The result of an asynchronous commit (librdkafka reports synchronous ones here too,
    and those raise on their own): a harmless refusal is logged, anything else surfaces."""
    if error is None or error.code() == KafkaError._NO_OFFSET or commit_refused(error):
        return
    raise KafkaException(error)
