"""Shuffler: the fixed SHUFFLE topic -> per key, all values, to REDUCE---<id> once every
map partition of the pipeline has ended. Needs no user code, so it never resubscribes.

Replays are dropped by the (frame number, chunk) tag each mapper output carries. Held
groups stay within the worker's memory budget (`--shuffle-memory`): past it, the largest
holding is spilled to disk as a sorted run, and runs are merged when it is emitted. A hot
key's values larger than a Kafka message travel to the reducer as fragments."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mapreduce_kafka.services.runtime import deadletter
from mapreduce_kafka.services.runtime.holding import Holding, HoldingWorker
from mapreduce_kafka.services.runtime.process import Runtime
from mapreduce_kafka.services.runtime.spill import Groups, fresh_spill_dir
from mapreduce_kafka.shared import topics
from mapreduce_kafka.shared.barrier import Stage
from mapreduce_kafka.shared.codec import Envelope, Kind, decode_items, split_by_size
from mapreduce_kafka.shared.crashpoints import crash_point
from mapreduce_kafka.shared.errors import KeyTooLarge
from mapreduce_kafka.shared.spec import PipelineSpec


def accepts(seen: set[tuple[int, int]], tag: tuple[int, int], guarantee: str) -> bool:
    """Whether mapper output with this (frame, chunk) tag is absorbed; records the tag. Under
    exactly-once a tag seen before is a frame a mapper replayed after a fault: dropped."""
    if tag in seen and guarantee == "exactly-once":
        return False
    seen.add(tag)
    return True


class Shuffler(HoldingWorker):
    role = "shuffler"
    topic = topics.SHUFFLE
    stage = Stage.SHUFFLE

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.budget_bytes = rt.settings.shuffle_memory_mb * 1024 * 1024
        self.spill_dir = fresh_spill_dir(rt.settings.home / "spill", rt.worker_id)

    def new_holding(self, first_offset: int) -> Holding:
        return Holding(first_offset, Groups(self.spill_dir))

    def hold_key(self, envelope: Envelope) -> tuple[str, int]:
        return (envelope.pipeline, envelope.step)

    def barrier_partition(self, envelope: Envelope, partition: int) -> int:
        return partition

    def absorb(self, spec: PipelineSpec, holding: Holding, envelope: Envelope,
               value: bytes) -> None:
        if not accepts(holding.seen, (envelope.seq, envelope.chunk), spec.guarantee):
            return
        holding.data.add(decode_items(value), len(value))

    def emit(self, spec: PipelineSpec, holding: Holding, envelope: Envelope,
             partition: int) -> None:
        pipeline_id = spec.pipeline_id
        groups: Groups = holding.data
        keys = self._send_groups(spec, groups.merged())
        self.rt.producer.flush()  # mark only what is durable
        crash_point("shuffler.after_emit", pipeline_id)
        frames = {seq for seq, _ in holding.seen}
        self.rt.log.info("shuffle partition emitted", pipeline=pipeline_id, partition=partition,
                         frames=len(frames), keys=keys, spilled_runs=len(groups.runs),
                         first_offset=holding.first_offset)
        complete = self.rt.store.mark_ended(pipeline_id, Stage.SHUFFLE, partition,
                                            self.rt.shuffle_partitions, spec.step)
        if complete:
            crash_point("shuffler.after_shuffle_mark", pipeline_id)
            self.rt.log.info("shuffle stage ended", pipeline=pipeline_id)
            self._hand_off(spec)

    def replayed_end(self, spec: PipelineSpec, envelope: Envelope, partition: int) -> None:
        if self.rt.store.stage_complete(spec.pipeline_id, Stage.SHUFFLE,
                                        self.rt.shuffle_partitions, spec.step):
            self.rt.log.info("shuffle stage found complete on a replayed end marker: "
                             "hand-off sent again", pipeline=spec.pipeline_id,
                             partition=partition)
            self._hand_off(spec)

    def _hand_off(self, spec: PipelineSpec) -> None:
        reduce_topic = topics.reduce_topic(spec.pipeline_id)
        for reduce_partition in range(spec.partitions):
            self.rt.producer.send(reduce_topic, b"",
                                  Envelope(Kind.STREAM_ENDED, spec.pipeline_id, step=spec.step),
                                  partition=reduce_partition)
        self.rt.producer.flush()
        crash_point("shuffler.after_reduce_handoff", spec.pipeline_id)

    def _send_groups(self, spec: PipelineSpec, groups: Iterable[tuple[Any, list[Any]]]) -> int:
        """Stream groups to their reduce partitions, a frame at a time: merged runs never
        have to fit in memory at once."""
        reduce_topic = topics.reduce_topic(spec.pipeline_id)
        limit = self.rt.settings.frame_bytes
        key_limit = self.rt.settings.key_memory_mb << 20
        pending: list[list[list[Any]]] = [[] for _ in range(spec.partitions)]
        pending_values = [0] * spec.partitions
        sent = 0

        def send(reduce_partition: int) -> None:
            nonlocal sent
            for data in split_by_size(pending[reduce_partition], limit):
                if len(data) > key_limit:  # a single key's values (larger frames are split)
                    key = pending[reduce_partition][0][0]
                    raise KeyTooLarge(
                        f"key {deadletter.key_text(key)[:80]} has "
                        f"{len(data) / 2**20:.1f} MB of values, "
                        f"over the {key_limit >> 20} MB one key may hold "
                        f"(MAPREDUCE_KEY_MEMORY_MB)")
                self.rt.producer.send_data(reduce_topic, data,
                                           Envelope(Kind.RECORDS, spec.pipeline_id, step=spec.step),
                                           partition=reduce_partition)
                sent += 1
                if sent == 1:
                    crash_point("shuffler.mid_emit", spec.pipeline_id)
            pending[reduce_partition] = []
            pending_values[reduce_partition] = 0

        keys = 0
        for key, values in groups:
            keys += 1
            reduce_partition = spec.partition_of(key)  # the user's partitioner's, if any
            pending[reduce_partition].append([key, values])
            # about 16 bytes per key or value on the wire: send about a frame at a time
            pending_values[reduce_partition] += 1 + len(values)
            if pending_values[reduce_partition] * 16 >= limit:
                send(reduce_partition)
        for reduce_partition, items in enumerate(pending):
            if items:
                send(reduce_partition)
        return keys
