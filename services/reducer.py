"""Reducer: every live REDUCE---<id> -> (key, result) to OUTPUT, tagged with the reduce
partition it came from (the part file it belongs to). One end marker per reduce partition
follows that partition's results, after they are durable."""

from __future__ import annotations

from confluent_kafka import Message

from services import deadletter
from services.pipeline_worker import PipelineTopicWorker
from shared import kafka, topics
from shared.barrier import Stage
from shared.codec import Envelope, Kind, decode_items, key_bytes, split_by_size
from shared.spec import PipelineSpec


class Reducer(PipelineTopicWorker):
    role = "reducer"
    prefix = topics.REDUCE_PREFIX

    def topic_for(self, pipeline_id: str) -> str:
        return topics.reduce_topic(pipeline_id)

    def _output_partition(self, part: int) -> int:
        return part % self.rt.output_partitions

    def on_records(self, spec: PipelineSpec, envelope: Envelope, msg: Message) -> None:
        part = kafka.partition_of(msg)
        reduce = spec.reducer
        results = []
        for key, values in decode_items(kafka.value_of(msg)):
            try:
                results.append([key, reduce(key, values)])
            except Exception as exc:  # user code: dead-letter the key, go on
                at = key_bytes(key).decode("utf-8", "replace")
                deadletter.record(self.rt, spec, "reducer", f"reducer:{at}", (key, values), exc,
                                  {"topic": msg.topic(), "partition": part,
                                   "offset": msg.offset(), "at": at})
        for data in split_by_size(results, self.rt.settings.frame_bytes):
            self.rt.producer.send(topics.OUTPUT, data,
                                  Envelope(Kind.RECORDS, spec.pipeline_id, part=part),
                                  partition=self._output_partition(part))

    def on_end(self, spec: PipelineSpec, envelope: Envelope, partition: int) -> None:
        self.rt.producer.flush()
        self.rt.store.mark_ended(spec.pipeline_id, Stage.REDUCE, partition, spec.partitions)
        self.rt.producer.send(topics.OUTPUT, b"",
                              Envelope(Kind.STREAM_ENDED, spec.pipeline_id, part=partition),
                              partition=self._output_partition(partition))
        self.rt.producer.flush()
