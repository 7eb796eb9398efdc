"""Dispatcher: makes announced pipelines ready, forwards their records, and keeps every
running pipeline moving.

On an announcement it creates MAP---<id> and REDUCE---<id> (idempotent; several
dispatchers may race), waits until every partition has a leader, writes a first marker to
every partition (OutputProducer.open_partitions), records the pipeline running, then
re-publishes the spec as READY: mappers and reducers subscribe only to READY pipelines. It
forwards each source frame to MAP---<id> and, once every SOURCE partition has ended for a
pipeline (a barrier set), sends one end marker to every MAP---<id> partition. On a
tombstone it deletes the pipeline's topics (unless the pipeline was submitted with --keep).

Every WATCH_S it also looks after the pipelines no single worker can: one whose source died
mid-stream is failed; one that stopped moving while its inputs are complete gets the lost
hand-off sent again (shared/liveness.py), and is failed once it made no progress for the
stall limit (MAPREDUCE_STALL_LIMIT_S); one that ended is cleaned up: its spec
tombstoned, its keys dropped (services/runtime/lifecycle.py; only dispatchers do it)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from mapreduce_kafka.services.runtime import lifecycle
from mapreduce_kafka.services.runtime.commit_policy import commit
from mapreduce_kafka.services.runtime.consuming import consumer_lag, describe, envelope_of
from mapreduce_kafka.services.runtime.process import Runtime
from mapreduce_kafka.shared import kafka, liveness, topics
from mapreduce_kafka.shared.barrier import Stage, stage_totals
from mapreduce_kafka.shared.codec import INPUT_KINDS, Envelope, Kind
from mapreduce_kafka.shared.crashpoints import crash_point
from mapreduce_kafka.shared.metrics import METRICS
from mapreduce_kafka.shared.spec import PipelineSpec
from mapreduce_kafka.shared.store import TERMINAL, Store
from mapreduce_kafka.shared.topic_refusals import permanent_refusal

# Frames per loop (a frame is up to 256 KB): the view of PIPELINES is read between loops,
# so a smaller batch lets a new pipeline's topics be created sooner while another pipeline
# streams; 32 frames still amortize the flush and commit round trips.
BATCH = 32
POLL_S = 0.2
WATCH_S = 2.0  # how often to look after running and ending pipelines (see the docstring)
# A complete stream whose announcement never reached the dispatcher's view in this long: the
# announcement was flushed before the first record, so it is not merely late.
UNANNOUNCED_S = 30.0


def source_died(store: Store, pipeline_id: str, status: Mapping[str, str]) -> bool:
    """Whether the pipeline's source died before its stream was complete; `status` is the
    pipeline's status, read before. A source records its frame count and then clears its
    liveness key, so a key gone since `status` was read may mean that the stream completed
    in between: the status is read again before the source is taken for dead."""
    if "frames" in status or store.source_alive(pipeline_id):
        return False
    return "frames" not in store.pipeline(pipeline_id)


class Dispatcher:
    role = "dispatcher"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.made_ready: set[str] = set()
        self.consumer = Consumer(rt.settings.consumer_config("dispatchers"))
        self.consumer.subscribe([topics.SOURCE], on_assign=self._assigned)
        self.forwarded = 0
        self.streams_complete: set[str] = set()
        self.stalls = liveness.StallWatch()
        self._watched = 0.0

    def _assigned(self, _c: Consumer, parts: list[TopicPartition]) -> None:
        METRICS.count(rebalances=1)
        self.rt.assignment = describe(parts)
        self.rt.log.info("partitions assigned", partitions=self.rt.assignment)

    def run(self) -> None:
        self._pipelines_changed(set(self.rt.view.entries) | self.rt.view.finished)
        while not self.rt.stopping:
            changed = self.rt.view.poll()
            if changed:
                self._pipelines_changed(changed)
            messages = kafka.consume_ready(self.consumer, BATCH, POLL_S)
            if messages:
                pipelines = self._process(messages)
                crash_point("dispatcher.batch_forwarded", *pipelines)
                self.rt.producer.flush()
                crash_point("dispatcher.batch_durable", *pipelines)
                commit(self.consumer)
            self._watch()
            self.rt.heartbeat(forwarded=self.forwarded, lag=lambda: consumer_lag(self.consumer))
        self.consumer.close()

    # ---- looking after pipelines -----------------------------------------------------

    def _watch(self) -> None:
        now = time.monotonic()
        if now - self._watched < WATCH_S:
            return
        self._watched = now
        active = self.rt.store.active_pipeline_ids()
        workers = functools.cache(self.rt.store.workers)  # their heartbeats, once a pass
        for pipeline_id in active:
            if pipeline_id not in self.rt.failed:
                self._watch_pipeline(pipeline_id, now, workers)
        self.stalls.forget(set(active))
        self.streams_complete &= set(active)
        for pipeline_id in self.rt.store.finishing(older_than_s=0):
            self.rt.log.info("cleaning up an ended pipeline", pipeline=pipeline_id)
            lifecycle.cleanup(self.rt.store, self.rt.producer, pipeline_id)

    def _watch_pipeline(self, pipeline_id: str, now: float,
                        workers: Callable[[], list[dict[str, str]]]) -> None:
        # From Redis, not from PIPELINES: a source can die before it announces anything.
        status = self.rt.store.pipeline(pipeline_id)
        if status.get("state") in TERMINAL:
            return
        if pipeline_id not in self.streams_complete:
            if source_died(self.rt.store, pipeline_id, status):
                self.rt.fail(pipeline_id, "source stopped mid-stream: its heartbeat expired "
                                          "before it ended the stream; the input is incomplete")
                return
            if "frames" in status:
                self.streams_complete.add(pipeline_id)
        if self._unannounced(pipeline_id, status):
            return
        whole = self.rt.view.known_spec(pipeline_id)
        if whole is None or pipeline_id not in self.made_ready:
            return
        step = self.rt.store.current_step(pipeline_id, whole.step_count, whole.partitions)
        spec = whole.at_step(step)
        counts = self.rt.store.ended_counts(pipeline_id, step)
        mapped = self.rt.store.ended_counts(pipeline_id)["mapped"] if step else counts["mapped"]
        ended, totals = liveness.at_step(
            step, {stage: counts[stage.value] for stage in self._totals(spec)},
            self._totals(spec))
        waiting = liveness.waiting_on(ended, totals)
        reading = 0
        if waiting is not None and waiting is not Stage.SOURCE:
            reading = liveness.reading(liveness.activity_input(
                waiting, pipeline_id, totals, self.rt.output_partitions), workers())
        progress = (step, *ended.values(), mapped, status.get("state"), reading)
        repair = self.stalls.stalled(pipeline_id, progress, now)
        still_s = self.stalls.still_for(pipeline_id, now)
        if liveness.gives_up(waiting, still_s, self.rt.settings.stall_limit_s):
            assert waiting is not None
            frames = int(status["frames"]) if "frames" in status else None
            self.rt.fail(pipeline_id, liveness.stall_reason(
                liveness.describe(ended, totals, mapped, frames, step, spec.step_count),
                still_s,
                liveness.unheld(liveness.stage_input(waiting, pipeline_id, totals),
                                self.rt.store.held_partitions())))
            return
        if not repair:
            return
        # every stage before the one it waits on is complete: its hand-off may have been lost
        source = liveness.handoff_into(waiting, totals) if waiting is not None else None
        if source is not None and waiting is not None:
            unheld = liveness.unheld(liveness.stage_input(waiting, pipeline_id, totals),
                                     self.rt.store.held_partitions())
            self.rt.log.warning("pipeline stalled with its inputs complete: hand-off sent "
                                "again", pipeline=pipeline_id,
                                stage=waiting.value if isinstance(waiting, Stage) else waiting,
                                stalled_s=self.stalls.stall_s, unheld=unheld)
            self._resend_handoff(spec, source)

    def _unannounced(self, pipeline_id: str, status: dict[str, str]) -> bool:
        """A pipeline whose stream is complete but that has no announcement here: its spec
        was refused (its tag or signature did not verify, or it was a replay), or never
        came. The source sent it before its first record, so it will not come now."""
        if pipeline_id in self.rt.view.entries or "frames" not in status:
            return False
        refused = self.rt.view.refused.get(pipeline_id)
        waited = time.time() - float(status.get("submitted") or time.time())
        if refused is None and waited < UNANNOUNCED_S:
            return False
        self.rt.fail(pipeline_id, f"its announcement was refused: {refused}" if refused
                     else f"no announcement of it arrived in {UNANNOUNCED_S:.0f} s")
        return True

    def _totals(self, spec: PipelineSpec) -> dict[Stage, int]:
        return stage_totals(source=spec.source_partitions, partitions=spec.partitions,
                            shuffle=self.rt.shuffle_partitions, map_only=spec.map_only)

    def _resend_handoff(self, spec: PipelineSpec, stage: Stage) -> None:
        """The end markers `stage` sends downstream once it is complete (of the step
        `spec` stands for; a later step's SOURCE is the step before it, whose sinks end
        its input)."""
        pid = spec.pipeline_id
        end = Envelope(Kind.STREAM_ENDED, pid, step=spec.step)
        if stage is Stage.SOURCE:
            for partition in range(spec.partitions):
                self.rt.producer.send(topics.map_topic(pid), b"", end, partition=partition)
        elif stage is Stage.MAP and not spec.map_only:
            for partition in range(self.rt.shuffle_partitions):
                self.rt.producer.send(topics.SHUFFLE, b"", end, partition=partition)
        elif stage is Stage.SHUFFLE:
            for partition in range(spec.partitions):
                self.rt.producer.send(topics.reduce_topic(pid), b"", end, partition=partition)
        else:  # REDUCE or a map-only MAP (into the sink), SINK (it finalizes on a replay)
            for part in range(spec.partitions):
                self.rt.producer.send(topics.OUTPUT, b"",
                                      Envelope(Kind.STREAM_ENDED, pid, part=part,
                                               step=spec.step),
                                      partition=part % self.rt.output_partitions)
        self.rt.producer.flush()

    # ---- announcements and records ---------------------------------------------------

    def _pipelines_changed(self, changed: set[str]) -> None:
        gone = [pid for pid in changed if pid not in self.rt.view.entries]
        # a kept pipeline (--keep) is tombstoned like any other, but its topics stay
        kept = self.rt.store.kept(gone) if gone else set()
        kafka.delete_topics(self.rt.admin, [t for pid in gone if pid not in kept for t in
                                            (topics.map_topic(pid), topics.reduce_topic(pid))])
        for pid in gone:
            self.made_ready.discard(pid)
        for pid in changed - set(gone):
            self._ensure_ready(pid)
        self.rt.forget_finished()

    def _ensure_ready(self, pipeline_id: str) -> None:
        entry = self.rt.view.entries.get(pipeline_id)
        if entry is None or pipeline_id in self.made_ready or self.rt.spec(pipeline_id) is None:
            return
        assert entry.spec is not None
        if not entry.ready:
            # a failure past this point that is no outage is charged to the pipeline
            self.rt.tasks.begin(pipeline_id, "its topics being made ready",
                                runs_user_code=False)
            started = time.monotonic()
            self.rt.log.info("pipeline announced", pipeline=pipeline_id)
            try:
                kafka.ensure_topics(self.rt.admin,
                                    kafka.pipeline_topics(pipeline_id, entry.spec.partitions),
                                    replication_factor=self.rt.settings.replication_factor)
            except KafkaException as exc:
                reason = permanent_refusal(exc)
                if reason is None:
                    raise  # brokers down or slow: the worker restarts and tries again
                self.rt.fail(pipeline_id, reason)  # a retry would be refused the same way
                self.rt.tasks.end()
                return
            crash_point("dispatcher.after_topics_created", pipeline_id)
            created = time.monotonic()
            self._open_partitions(pipeline_id, entry.spec.partitions)
            self.rt.store.update_pipeline(pipeline_id, if_state="submitted", state="running",
                                          ready=time.time())
            crash_point("dispatcher.before_ready", pipeline_id)
            self.rt.producer.send(topics.PIPELINES, entry.raw,
                                  Envelope(Kind.READY, pipeline_id), key=pipeline_id.encode(),
                                  signature=entry.signature)
            self.rt.producer.flush()
            self.rt.log.info("pipeline ready", pipeline=pipeline_id,
                             partitions=entry.spec.partitions,
                             create_s=round(created - started, 3),
                             open_s=round(time.monotonic() - created, 3))
            self.rt.tasks.end()
        self.made_ready.add(pipeline_id)

    def _open_partitions(self, pipeline_id: str, partitions: int) -> None:
        attempts = self.rt.producer.open_partitions(
            [topics.map_topic(pipeline_id), topics.reduce_topic(pipeline_id)], partitions,
            Envelope(Kind.READY, pipeline_id))
        if attempts > 1:
            self.rt.log.warning("opening new partitions took retries", pipeline=pipeline_id,
                                attempts=attempts)

    def _process(self, messages: list[Message]) -> set[str]:
        """Forward a batch; returns the pipelines it had records of."""
        pipelines: set[str] = set()
        for msg in messages:
            envelope = envelope_of(self.rt, msg)
            if envelope is None:
                continue
            pipeline_id = envelope.pipeline
            spec = self.rt.spec(pipeline_id)
            if spec is None:
                self.rt.log.warning("record of an unknown or finished pipeline skipped",
                                    pipeline=pipeline_id, partition=msg.partition(),
                                    offset=msg.offset(), kind=envelope.kind.value)
                continue
            self._ensure_ready(pipeline_id)
            pipelines.add(pipeline_id)
            map_topic = topics.map_topic(pipeline_id)
            if envelope.kind in INPUT_KINDS:
                self.rt.producer.send(map_topic, msg.value(), envelope,
                                      partition=envelope.seq % spec.partitions)
                self.forwarded += 1
            elif envelope.kind is Kind.STREAM_ENDED:
                self.rt.producer.flush()  # mark only what is durable
                complete = self.rt.store.mark_ended(pipeline_id, Stage.SOURCE,
                                                    kafka.partition_of(msg),
                                                    spec.source_partitions)
                if complete:
                    crash_point("dispatcher.after_source_mark", pipeline_id)
                    self.rt.log.info("source stream ended", pipeline=pipeline_id)
                    for partition in range(spec.partitions):
                        self.rt.producer.send(map_topic, b"",
                                              Envelope(Kind.STREAM_ENDED, pipeline_id),
                                              partition=partition)
                    self.rt.producer.flush()
                    crash_point("dispatcher.after_map_handoff", pipeline_id)
        return pipelines
