"""Reducer: every live REDUCE---<id> -> what the reducer gave for each key to OUTPUT, tagged
with the reduce partition it came from (the part file it belongs to). One end marker per
reduce partition follows that partition's results, after they are durable.

A reducer that returns sends `[key, result]` per key. One that yields sends a *unit* per
key: `[key, [[out_key, value], ...]]`, the pairs it yielded for that key. Either way the
key it was given is the identity: a key lives in one reduce partition, so a second result
or unit for it in the sink is a replay, whatever keys the reducer yielded.

What the reducer counted (increment_counter) travels the same way, per key, in a COUNTERS
message after the key's results: the sink keeps one count per key, as it keeps one result.

A pipeline with reducer_init or reducer_final runs each reduce partition as one task, from
its start, on a copy of the code of its own (services/runtime/reduce_tasks.py); what
reducer_final yields goes to the sink as the part's final unit, after its keys.

A key's values may have come in fragments (a hot key); they are whole again before the
reducer sees them (services/runtime/pipeline_worker.py). A result that is not a JSON value (NaN, a
set, an object) is dead-lettered with its key, like a reducer that raises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
from confluent_kafka import Message

from mapreduce_kafka.services.runtime import deadletter
from mapreduce_kafka.services.runtime.pipeline_worker import PipelineTopicWorker
from mapreduce_kafka.services.runtime.process import Runtime
from mapreduce_kafka.services.runtime.reduce_tasks import ReduceTask, ReduceTasks
from mapreduce_kafka.shared import kafka, task_context, topics
from mapreduce_kafka.shared.barrier import Stage
from mapreduce_kafka.shared.codec import (
    TASK_FINAL,
    Envelope,
    Kind,
    decode_items,
    encode_checked,
)
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

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.tasks = ReduceTasks()

    def topic_for(self, pipeline_id: str) -> str:
        return topics.reduce_topic(pipeline_id)

    def held_offsets(self) -> dict[tuple[str, int], int]:
        return self.tasks.held_offsets()

    def partitions_gone(self, which: Callable[[tuple[str, int]], bool]) -> None:
        dropped = self.tasks.drop(which)
        if dropped:
            self.rt.log.info("reduce tasks dropped with their partitions: their next owner "
                             "runs them again from their start", tasks=dropped)

    def data_arrived(self, spec: PipelineSpec, envelope: Envelope, msg: Message) -> None:
        if spec.reduce_tasks:
            topic, partition, offset = kafka.position_of(msg)
            self._task(spec, envelope, (topic, partition), offset)

    def _task(self, spec: PipelineSpec, envelope: Envelope, where: tuple[str, int],
              offset: int) -> ReduceTask:
        """The open task of a reduce partition, begun here (reducer_init on a private copy
        of the code) if it is not open yet."""
        task = self.tasks.get(spec.pipeline_id, spec.step, where[1])
        if task is None:
            private = self.rt.view.private_copy(spec.pipeline_id)
            private = (private or spec).at_step(spec.step)
            with spec.task() as counting:
                if private.reducer_init is not None:
                    private.reducer_init()  # raises: the pipeline fails (no task without it)
            task = ReduceTask(private, where, offset, counters=counting.take())
            self.tasks.add(spec.pipeline_id, spec.step, where[1], task)
            self.rt.log.info("reduce task begun", pipeline=spec.pipeline_id, step=spec.step,
                             partition=where[1], offset=offset)
        return task

    def _output_partition(self, part: int) -> int:
        return part % self.rt.output_partitions

    def on_records(self, spec: PipelineSpec, envelope: Envelope, value: bytes,
                   msg: Message) -> None:
        part = kafka.partition_of(msg)
        where = {"topic": msg.topic(), "partition": part, "offset": msg.offset()}
        reduce_task = None
        if spec.reduce_tasks:  # opened by data_arrived, at the message's first fragment
            reduce_task = self.tasks.get(spec.pipeline_id, spec.step, part)
            assert reduce_task is not None
            spec = reduce_task.spec
        # a returning reducer's result travels as [key, value]; a yielding one's as a unit
        reducer = spec.reducer
        assert reducer is not None
        if spec.reducer_yields or spec.sort_values:
            reduce = spec.reduce_key if spec.reducer_yields else (
                lambda key, values: reducer(key, spec.values_for(values)))
        else:
            reduce = reducer
        results: list[Any] = []
        counted: list[Any] = []  # [key, its counters] for the keys whose reducer counted
        keys = 0
        with spec.task() as task:
            for key, values in decode_items(value):
                if reduce_task is not None and not reduce_task.first_time(orjson.dumps(key)):
                    continue  # a shuffler's replay: this task reduced the key already
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

    def _end_task(self, spec: PipelineSpec, partition: int) -> None:
        """A reduce task's end: what reducer_final yields (and what the task's hooks
        counted) to the sink as the part's final unit; the task closes."""
        topic = topics.reduce_topic(spec.pipeline_id)
        task = self.tasks.pop(spec.pipeline_id, spec.step, partition)
        if task is None:
            if self.rt.store.has_ended(spec.pipeline_id, Stage.REDUCE, partition, spec.step):
                return  # an end marker sent again: the task ended, its final unit is durable
            task = self._task_without_records(spec, topic, partition)
        where = {"topic": topic, "partition": partition, "at": "final"}

        def on_error(role: str, at: object, data: object, exc: BaseException) -> None:
            deadletter.record(self.rt, spec, role, f"{role}:final:{partition}", data, exc, where)

        with spec.task() as counting:
            pairs = task.spec.reduce_final(on_error)
            counted = task_context.merge(task.counters, counting.take())
        data, pairs, bad = encode_checked(pairs)
        for (key, value), reason in bad:
            deadletter.record(self.rt, spec, "reducer", f"reducer:final:{partition}:"
                              f"{deadletter.key_text(key)}", (key, value),
                              ValueError(f"reducer_final's pair {reason}"), where)
        final = Envelope(Kind.RECORDS, spec.pipeline_id, part=partition, step=spec.step,
                         chunk=TASK_FINAL)
        self.rt.producer.send_data(topics.OUTPUT, data, final,
                                   partition=self._output_partition(partition))
        if counted:
            self.rt.producer.send_data(topics.OUTPUT, orjson.dumps(counted),
                                       replace(final, kind=Kind.COUNTERS),
                                       partition=self._output_partition(partition))
        self.rt.log.info("reduce task ended", pipeline=spec.pipeline_id, step=spec.step,
                         partition=partition, keys=len(task.keys), final_pairs=len(pairs))

    def _task_without_records(self, spec: PipelineSpec, topic: str,
                              partition: int) -> ReduceTask:
        """The task of a partition that had no keys: begun at its end."""
        self._task(spec, Envelope(Kind.STREAM_ENDED, spec.pipeline_id), (topic, partition), 0)
        task = self.tasks.pop(spec.pipeline_id, spec.step, partition)
        assert task is not None
        return task

    def on_end(self, spec: PipelineSpec, envelope: Envelope, partition: int) -> None:
        if spec.reduce_tasks:
            self._end_task(spec, partition)
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

