"""Shuffler: the fixed SHUFFLE topic -> per key, all values, to REDUCE---<id> once every
map partition of the pipeline has ended. Needs no user code, so it never resubscribes.

Replays are dropped by the (frame number, chunk) tag each mapper output carries."""

from __future__ import annotations

from collections.abc import Hashable

from confluent_kafka import Message

from services.holding import Holding, HoldingWorker
from shared import topics
from shared.barrier import Stage
from shared.codec import Envelope, Kind, decode_items, partition_for, split_by_size
from shared.spec import PipelineSpec


class Shuffler(HoldingWorker):
    role = "shuffler"
    topic = topics.SHUFFLE
    stage = Stage.SHUFFLE

    def hold_key(self, envelope: Envelope) -> Hashable:
        return envelope.pipeline

    def barrier_partition(self, envelope: Envelope, partition: int) -> int:
        return partition

    def absorb(self, holding: Holding, envelope: Envelope, msg: Message) -> None:
        tag = (envelope.seq, envelope.chunk)
        if tag in holding.seen:
            return  # a mapper replayed this frame
        holding.seen.add(tag)
        groups = holding.data
        for key, values in decode_items(msg.value()):
            bucket = groups.get(key)
            if bucket is None:
                groups[key] = values
            else:
                bucket.extend(values)

    def emit(self, spec: PipelineSpec, holding: Holding, envelope: Envelope,
             partition: int) -> None:
        pipeline_id = spec.pipeline_id
        reduce_topic = topics.reduce_topic(pipeline_id)
        buckets: list[list[list[object]]] = [[] for _ in range(spec.partitions)]
        for key, values in holding.data.items():
            buckets[partition_for(key, spec.partitions)].append([key, values])
        for reduce_partition, items in enumerate(buckets):
            if items:
                for data in split_by_size(items, self.rt.settings.frame_bytes):
                    self.rt.producer.send(reduce_topic, data,
                                          Envelope(Kind.RECORDS, pipeline_id),
                                          partition=reduce_partition)
        self.rt.producer.flush()  # mark only what is durable
        frames = {seq for seq, _ in holding.seen}
        self.rt.log.info("shuffle partition emitted", pipeline=pipeline_id, partition=partition,
                         frames=len(frames), keys=len(holding.data),
                         first_offset=holding.first_offset)
        if self.rt.store.mark_ended(pipeline_id, Stage.SHUFFLE, partition,
                                    self.rt.shuffle_partitions):
            self.rt.log.info("shuffle stage ended", pipeline=pipeline_id)
            for reduce_partition in range(spec.partitions):
                self.rt.producer.send(reduce_topic, b"", Envelope(Kind.STREAM_ENDED, pipeline_id),
                                      partition=reduce_partition)
            self.rt.producer.flush()
