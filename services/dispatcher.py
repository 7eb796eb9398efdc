"""Dispatcher: makes announced pipelines ready and forwards their records.

On an announcement it creates MAP---<id> and REDUCE---<id> (idempotent; several
dispatchers may race), waits until every partition has a leader, writes a first marker to
every partition (OutputProducer.open_partitions), then re-publishes the spec as READY:
mappers and reducers subscribe only to READY pipelines. It forwards each source frame to
MAP---<id> and, once every SOURCE partition has ended for a pipeline (a barrier set), sends
one end marker to every MAP---<id> partition. On a tombstone it deletes the pipeline's
topics."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Message, TopicPartition

from services.runtime import Runtime, commit, consumer_lag, describe, envelope_of
from shared import kafka, topics
from shared.barrier import Stage
from shared.codec import Envelope, Kind
from shared.store import TERMINAL

# Frames per loop (a frame is up to 256 KB): the view of PIPELINES is read between loops,
# so a smaller batch lets a new pipeline's topics be created sooner while another pipeline
# streams; 32 frames still amortize the flush and commit round trips.
BATCH = 32
POLL_S = 0.2
WATCH_SOURCES_S = 2.0  # how often to look for pipelines whose source died mid-stream


class Dispatcher:
    role = "dispatcher"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.made_ready: set[str] = set()
        self.consumer = Consumer(rt.settings.consumer_config("dispatchers"))
        self.consumer.subscribe([topics.SOURCE], on_assign=self._assigned)
        self.forwarded = 0
        self.streams_complete: set[str] = set()
        self._watched = 0.0

    def _assigned(self, _c: Consumer, parts: list[TopicPartition]) -> None:
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
                self._process(messages)
                self.rt.producer.flush()
                commit(self.consumer)
            self._watch_sources()
            self.rt.heartbeat(forwarded=self.forwarded, lag=lambda: consumer_lag(self.consumer))
        self.consumer.close()

    def _watch_sources(self) -> None:
        """A pipeline whose source stopped heart-beating before ending its stream can never
        complete: fail it (it is never finalized with partial input)."""
        now = time.monotonic()
        if now - self._watched < WATCH_SOURCES_S:
            return
        self._watched = now
        # From Redis, not from PIPELINES: a source can die before it announces anything.
        for pipeline_id in self.rt.store.active_pipeline_ids():
            if pipeline_id in self.streams_complete or pipeline_id in self.rt.failed:
                continue
            status = self.rt.store.pipeline(pipeline_id)
            if "frames" in status or status.get("state") in TERMINAL:
                self.streams_complete.add(pipeline_id)
            elif not self.rt.store.source_alive(pipeline_id):
                self.rt.fail(pipeline_id, "source stopped mid-stream: its heartbeat expired "
                                          "before it ended the stream; the input is incomplete")

    def _pipelines_changed(self, changed: set[str]) -> None:
        gone = [pid for pid in changed if pid not in self.rt.view.entries]
        kafka.delete_topics(self.rt.admin, [t for pid in gone for t in
                                            (topics.map_topic(pid), topics.reduce_topic(pid))])
        for pid in gone:
            self.made_ready.discard(pid)
        for pid in changed - set(gone):
            self._ensure_ready(pid)

    def _ensure_ready(self, pipeline_id: str) -> None:
        entry = self.rt.view.entries.get(pipeline_id)
        if entry is None or pipeline_id in self.made_ready or self.rt.spec(pipeline_id) is None:
            return
        if not entry.ready:
            started = time.monotonic()
            self.rt.log.info("pipeline announced", pipeline=pipeline_id)
            kafka.ensure_topics(self.rt.admin,
                                kafka.pipeline_topics(pipeline_id, entry.spec.partitions))  # type: ignore[union-attr]
            created = time.monotonic()
            self._open_partitions(pipeline_id, entry.spec.partitions)  # type: ignore[union-attr]
            self.rt.producer.send(topics.PIPELINES, entry.raw,
                                  Envelope(Kind.READY, pipeline_id), key=pipeline_id.encode(),
                                  signature=entry.signature)
            self.rt.producer.flush()
            self.rt.store.update_pipeline(pipeline_id, state="running")
            self.rt.log.info("pipeline ready", pipeline=pipeline_id,
                             partitions=entry.spec.partitions,  # type: ignore[union-attr]
                             create_s=round(created - started, 3),
                             open_s=round(time.monotonic() - created, 3))
        self.made_ready.add(pipeline_id)

    def _open_partitions(self, pipeline_id: str, partitions: int) -> None:
        attempts = self.rt.producer.open_partitions(
            [topics.map_topic(pipeline_id), topics.reduce_topic(pipeline_id)], partitions,
            Envelope(Kind.READY, pipeline_id))
        if attempts > 1:
            self.rt.log.warning("opening new partitions took retries", pipeline=pipeline_id,
                                attempts=attempts)

    def _process(self, messages: list[Message]) -> None:
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
            map_topic = topics.map_topic(pipeline_id)
            if envelope.kind in (Kind.RECORDS, Kind.SPLIT):
                self.rt.producer.send(map_topic, msg.value(), envelope,
                                      partition=envelope.seq % spec.partitions)
                self.forwarded += 1
            elif envelope.kind is Kind.STREAM_ENDED:
                self.rt.producer.flush()  # mark only what is durable
                if self.rt.store.mark_ended(pipeline_id, Stage.SOURCE, kafka.partition_of(msg),
                                            spec.source_partitions):
                    self.rt.log.info("source stream ended", pipeline=pipeline_id)
                    for partition in range(spec.partitions):
                        self.rt.producer.send(map_topic, b"",
                                              Envelope(Kind.STREAM_ENDED, pipeline_id),
                                              partition=partition)
                    self.rt.producer.flush()
