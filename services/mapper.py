"""Mapper: every live MAP---<id> -> (key, values) groups to SHUFFLE, partition by key.

Each input frame's output is combined (when the pipeline has a combiner) and tagged with
the frame's source number and a chunk number: a replayed frame produces the same tags, and
the shuffler drops what it has already seen."""

from __future__ import annotations

from collections import defaultdict

from confluent_kafka import Message

from services import deadletter
from services.pipeline_worker import PipelineTopicWorker
from services.runtime import Runtime
from shared import kafka, topics
from shared.barrier import Stage
from shared.codec import (
    Envelope,
    Kind,
    Split,
    decode_records,
    key_bytes,
    partition_for,
    split_by_size,
)
from shared.spec import PipelineSpec


class Mapper(PipelineTopicWorker):
    role = "mapper"
    prefix = topics.MAP_PREFIX

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.mapped: dict[str, list[int]] = defaultdict(list)
        # Frames this process mapped, per (pipeline, partition): logged at the partition's
        # end, so that a fault run can tell at which stage a frame went missing.
        self.frames_seen: dict[tuple[str, int], set[int]] = defaultdict(set)

    def topic_for(self, pipeline_id: str) -> str:
        return topics.map_topic(pipeline_id)

    def on_records(self, spec: PipelineSpec, envelope: Envelope, msg: Message) -> None:
        def on_error(role: str, where: object, data: object, exc: BaseException) -> None:
            at = where if role == "mapper" else key_bytes(where).decode("utf-8", "replace")
            deadletter.record(self.rt, spec, role, f"{role}:{envelope.seq}:{at}", data, exc,
                              {"topic": msg.topic(), "partition": msg.partition(),
                               "offset": msg.offset(), "frame": envelope.seq, "at": at})

        frame = kafka.value_of(msg)
        if envelope.kind is Kind.SPLIT:
            frame = Split.decode(frame).read()  # CodecError fails the pipeline, loudly
            if not frame.endswith(b"\n"):
                frame += b"\n"  # a file's last line without one
        groups = spec.map_data(frame, lambda data: decode_records(data, spec.fmt), on_error)
        if spec.pipeline_id in self.rt.failed:
            return  # --max-errors exceeded
        shuffle_partitions = self.rt.shuffle_partitions
        buckets: list[list[list[object]]] = [[] for _ in range(shuffle_partitions)]
        for key, values in groups.items():
            buckets[partition_for(key, shuffle_partitions)].append([key, values])
        for partition, items in enumerate(buckets):
            if not items:
                continue
            for chunk, data in enumerate(split_by_size(items, self.rt.settings.frame_bytes)):
                self.rt.producer.send(
                    topics.SHUFFLE, data,
                    Envelope(Kind.RECORDS, spec.pipeline_id, seq=envelope.seq, chunk=chunk),
                    partition=partition)
        self.mapped[spec.pipeline_id].append(envelope.seq)
        self.frames_seen[(spec.pipeline_id, kafka.partition_of(msg))].add(envelope.seq)

    def on_end(self, spec: PipelineSpec, envelope: Envelope, partition: int) -> None:
        self.rt.producer.flush()  # mark only what is durable
        seen = self.frames_seen.pop((spec.pipeline_id, partition), set())
        self.rt.log.info("map partition ended", pipeline=spec.pipeline_id, partition=partition,
                         frames_mapped_here=len(seen), first=min(seen, default=None))
        if self.rt.store.mark_ended(spec.pipeline_id, Stage.MAP, partition, spec.partitions):
            self.rt.log.info("map stage ended", pipeline=spec.pipeline_id)
            for shuffle_partition in range(self.rt.shuffle_partitions):
                self.rt.producer.send(topics.SHUFFLE, b"",
                                      Envelope(Kind.STREAM_ENDED, spec.pipeline_id),
                                      partition=shuffle_partition)
            self.rt.producer.flush()

    def batch_payload(self) -> dict[str, list[int]]:
        mapped, self.mapped = dict(self.mapped), defaultdict(list)
        return mapped

    def after_durable(self, payloads: list[dict[str, list[int]]]) -> None:
        for pipeline_id in {p for payload in payloads for p in payload}:
            self.rt.store.add_mapped(pipeline_id, [seq for payload in payloads
                                                   for seq in payload.get(pipeline_id, ())])
