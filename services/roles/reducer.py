"""Reducer: every live REDUCE---<id> -> what the reducer gave for each key to OUTPUT, tagged
with the reduce partition it came from (the part file it belongs to). One end marker per
reduce partition follows that partition's results, after they are durable.

A reducer that returns sends `[key, result]` per key. One that yields sends a *unit* per
key: `[key, [[out_key, value], ...]]`, the pairs it yielded for that key. Either way the
key it was given is the identity: a key lives in one reduce partition, so a second result
or unit for it in the sink is a replay, whatever keys the reducer yielded.

What the reducer counted (increment_counter) travels the same way, per key, in a COUNTERS
message after the key's results: the sink keeps one count per key, as it keeps one result.

A key's values may have come in fragments (a hot key); they are whole again before the
reducer sees them (services/runtime/pipeline_worker.py). A result that is not a JSON value (NaN, a
set, an object) is dead-lettered with its key, like a reducer that raises."""

from __future__ import annotations

from typing import Any

import orjson
from confluent_kafka import Message

from mapreduce_kafka.services.runtime import deadletter
from mapreduce_kafka.services.runtime.pipeline_worker import PipelineTopicWorker
from mapreduce_kafka.shared import kafka, task_context, topics
from mapreduce_kafka.shared.barrier import Stage
from mapreduce_kafka.shared.codec import Envelope, Kind, decode_items, encode_checked
from mapreduce_kafka.shared.codec import split_by_size as split_items
from mapreduce_kafka.shared.crashpoints import crash_point
from mapreduce_kafka.shared.metrics import METRICS
from mapreduce_kafka.shared.spec import PipelineSpec
from mapreduce_kafka.shared.user_code import reraise_unless_users


class Reducer(PipelineTopicWorker):
    role = "reducer"
    prefix = topics.REDUCE_PREFIX
    point_batch_produced = "reducer.batch_produced"
    point_batch_durable = "reducer.batch_durable"

    def topic_for(self, pipeline_id: str) -> str:
        return topics.reduce_topic(pipeline_id)

    def _output_partition(self, part: int) -> int:
        return part % self.rt.output_partitions

    def on_records(self, spec: PipelineSpec, envelope: Envelope, value: bytes,
                   msg: Message) -> None:
        part = kafka.partition_of(msg)
        where = {"topic": msg.topic(), "partition": part, "offset": msg.offset()}
        # a returning reducer's result travels as [key, value]; a yielding one's as a unit
        reduce = spec.reduce_key if spec.reducer_yields else spec.reducer
        assert reduce is not None
        results: list[Any] = []
        counted: list[Any] = []  # [key, its counters] for the keys whose reducer counted
        keys = 0
        with task_context.running(spec.params) as task:
            for key, values in decode_items(value):
                keys += 1
                try:
                    results.append([key, reduce(key, values)])
                except BaseException as exc:  # user code: dead-letter the key, go on
                    reraise_unless_users(exc)
                    at = deadletter.key_text(key)
                    deadletter.record(self.rt, spec, "reducer", f"reducer:{at}", (key, values),
                                      exc, {**where, "at": at})
                if task.counters:
                    counted.append([key, task.take()])
        data, results, bad = encode_checked(results)
        METRICS.count(records_in=keys, records_out=sum(len(pairs) for _, pairs in results)
                      if spec.reducer_yields else len(results))
        for (key, result), reason in bad:
            at = deadletter.key_text(key)
            deadletter.record(self.rt, spec, "reducer", f"reducer:{at}", (key, result),
                              ValueError(f"the reducer's result {reason}"), {**where, "at": at})
        limit = self.rt.settings.frame_bytes
        frames = [data] if len(data) <= limit else list(split_items(results, limit))
        for frame in frames:
            if frame != b"[]":
                self.rt.producer.send_data(topics.OUTPUT, frame,
                                           Envelope(Kind.RECORDS, spec.pipeline_id, part=part,
                                                    step=spec.step),
                                           partition=self._output_partition(part))
        if counted:
            self.rt.producer.send_data(topics.OUTPUT, orjson.dumps(counted),
                                       Envelope(Kind.COUNTERS, spec.pipeline_id, part=part,
                                                step=spec.step),
                                       partition=self._output_partition(part))

    def on_end(self, spec: PipelineSpec, envelope: Envelope, partition: int) -> None:
        self.rt.producer.flush()
        self.rt.store.mark_ended(spec.pipeline_id, Stage.REDUCE, partition, spec.partitions,
                                 spec.step)
        crash_point("reducer.after_reduce_mark", spec.pipeline_id)
        self.rt.producer.send(topics.OUTPUT, b"",
                              Envelope(Kind.STREAM_ENDED, spec.pipeline_id, part=partition,
                                       step=spec.step),
                              partition=self._output_partition(partition))
        self.rt.producer.flush()
        crash_point("reducer.after_output_handoff", spec.pipeline_id)

