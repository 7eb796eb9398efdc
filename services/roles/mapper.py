"""Mapper: every live MAP---<id> -> (key, values) groups to SHUFFLE, partition by key.

Each input frame's output is combined (when the pipeline has a combiner) and tagged with
the frame's source number and a chunk number: a replayed frame produces the same tags, and
the shuffler drops what it has already seen. That is only right if a replay cuts the same
chunks, whatever order the mapper yielded its pairs in (a mapper that iterates a set yields
them in the process's hash order): so a partition's groups that need several chunks are
sorted by key first (`shuffle_frames`, shared/shuffle.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, Message

from mapreduce_kafka.services.runtime import deadletter
from mapreduce_kafka.services.runtime.pipeline_worker import PipelineTopicWorker
from mapreduce_kafka.services.runtime.process import Runtime
from mapreduce_kafka.shared import kafka, task_context, topics
from mapreduce_kafka.shared.barrier import Stage
from mapreduce_kafka.shared.codec import (
    Envelope,
    Kind,
    Split,
    TopicRange,
    count_lines,
    decode_records,
    encode_checked,
    split_by_size,
)
from mapreduce_kafka.shared.crashpoints import crash_point
from mapreduce_kafka.shared.errors import InputGone
from mapreduce_kafka.shared.inputs import confined, read_split, split_size, topic_range_pieces
from mapreduce_kafka.shared.metrics import METRICS
from mapreduce_kafka.shared.shuffle import shuffle_frames
from mapreduce_kafka.shared.spec import ErrorHook, PipelineSpec
from mapreduce_kafka.shared.store.counters import task_field
from mapreduce_kafka.shared.task_context import FileOrigin, Origin


def origin_of(envelope: Envelope, fmt: str) -> Origin | None:
    """Where a frame sent through Kafka starts in its file (None: a later step's frame)."""
    if not envelope.origin:
        return None
    path, offset = orjson.loads(envelope.origin)
    return FileOrigin(path, offset, fmt)


def _tagged(on_error: ErrorHook, piece: int) -> ErrorHook:
    """on_error for a later piece of a frame: record indexes restart in each piece."""
    return lambda role, at, data, exc: on_error(role, f"{piece}/{at}" if role == "mapper"
                                                else at, data, exc)


class Mapper(PipelineTopicWorker):
    role = "mapper"
    prefix = topics.MAP_PREFIX
    point_batch_produced = "mapper.batch_produced"
    point_batch_durable = "mapper.batch_durable"

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.mapped: dict[str, list[int]] = defaultdict(list)
        # Frames this process mapped, per (pipeline, partition): logged at the partition's
        # end, so that a fault run can tell at which stage a frame went missing.
        self.frames_seen: dict[tuple[str, int], set[int]] = defaultdict(set)
        self._ranges: Consumer | None = None  # reads input topic ranges (assigned, no group)

    def topic_for(self, pipeline_id: str) -> str:
        return topics.map_topic(pipeline_id)

    def on_records(self, spec: PipelineSpec, envelope: Envelope, value: bytes,
                   msg: Message) -> None:
        where = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                 "frame": envelope.seq}

        def on_error(role: str, at: object, data: object, exc: BaseException) -> None:
            at = at if role == "mapper" else deadletter.key_text(at)
            deadletter.record(self.rt, spec, role, f"{role}:{envelope.seq}:{at}", data, exc,
                              {**where, "at": at})

        def on_bad_record(offset: int, data: bytes, why: str) -> None:
            deadletter.record(self.rt, spec, "mapper", f"input:{envelope.seq}:{offset}", data,
                              ValueError(why), {**where, "at": offset})

        with spec.task() as task:
            if spec.map_only:
                self._map_only(spec, envelope, value, msg, on_error, on_bad_record, where)
            else:
                self._map_to_shuffle(spec, envelope, value, msg, on_error, on_bad_record,
                                     where)
            counted = task.take()
        # the frame's counters, by its number: a replay of the frame writes them again,
        # before its offset can be committed (written early, they are only overwritten)
        self.rt.store.record_counters(spec.pipeline_id, task_field("m", spec.step, envelope.seq),
                                      counted)

    def _map_to_shuffle(self, spec: PipelineSpec, envelope: Envelope, value: bytes,
                        msg: Message, on_error: ErrorHook,
                        on_bad_record: Callable[[int, bytes, str], None],
                        where: dict[str, Any]) -> None:
        """A frame's groups to the shufflers, combined, tagged (frame, chunk)."""
        # Chunks are numbered per shuffle partition across the frame's pieces (a compressed
        # split or a topic range is mapped a piece at a time): the same on a replay.
        chunks = [0] * self.rt.shuffle_partitions
        for piece, frame in enumerate(self._mapped_frames(spec, envelope, value,
                                                          on_bad_record)):
            tag = f"{envelope.seq}" if piece == 0 else f"{envelope.seq}.{piece}"

            groups = spec.map_data(frame, lambda data: decode_records(data, spec.record_format),
                                   _tagged(on_error, piece) if piece else on_error)
            METRICS.count(records_in=count_lines(frame), records_out=len(groups))
            if spec.pipeline_id in self.rt.failed:
                return  # --max-errors exceeded
            frames, bad = shuffle_frames(groups, self.rt.shuffle_partitions,
                                         self.rt.settings.frame_bytes)
            for key, values, reason in bad:
                at = deadletter.key_text(key)
                deadletter.record(self.rt, spec, "mapper", f"encode:{tag}:{at}",
                                  (key, values), ValueError(reason), {**where, "at": at})
            cut = [0] * self.rt.shuffle_partitions
            for partition, chunk, data in frames:
                self.rt.producer.send_data(
                    topics.SHUFFLE, data,
                    Envelope(Kind.RECORDS, spec.pipeline_id, seq=envelope.seq,
                             chunk=chunks[partition] + chunk, step=spec.step),
                    partition=partition)
                cut[partition] = max(cut[partition], chunk + 1)
            chunks = [before + now for before, now in zip(chunks, cut, strict=True)]
        self._mapped(spec, envelope, kafka.partition_of(msg))

    def _map_only(self, spec: PipelineSpec, envelope: Envelope, value: bytes, msg: Message,
                  on_error: ErrorHook, on_bad_record: Callable[[int, bytes, str], None],
                  where: dict[str, Any]) -> None:
        """A map-only pipeline: the frame's pairs, in the order the mapper yielded them, go
        to the sink as units `[[frame, piece, chunk], pairs]`, in the part of the map
        partition they came from. The identity is the same on a replay (the same input, cut
        the same way), so the sink keeps one copy."""
        part = kafka.partition_of(msg)
        limit = self.rt.settings.frame_bytes
        for piece, frame in enumerate(self._mapped_frames(spec, envelope, value,
                                                          on_bad_record)):
            pairs = spec.map_pairs(frame, lambda data: decode_records(data, spec.record_format),
                                   _tagged(on_error, piece) if piece else on_error)
            METRICS.count(records_in=count_lines(frame), records_out=len(pairs))
            if spec.pipeline_id in self.rt.failed:
                return  # --max-errors exceeded
            data, pairs, bad = encode_checked(pairs)
            for (key, pair_value), reason in bad:
                at = deadletter.key_text(key)
                deadletter.record(self.rt, spec, "mapper", f"encode:{envelope.seq}.{piece}:{at}",
                                  (key, pair_value), ValueError(reason), {**where, "at": at})
            if not pairs:
                continue
            for chunk, encoded in enumerate(split_by_size(pairs, limit, data)):
                unit = b"[[[%d,%d,%d],%s]]" % (envelope.seq, piece, chunk, encoded)
                self.rt.producer.send_data(topics.OUTPUT, unit,
                                           Envelope(Kind.RECORDS, spec.pipeline_id, part=part,
                                                    step=spec.step),
                                           partition=part % self.rt.output_partitions)
        self._mapped(spec, envelope, part)

    def _mapped(self, spec: PipelineSpec, envelope: Envelope, partition: int) -> None:
        """Progress: the input frames mapped (a later step's frames are not input)."""
        if spec.step == 0:
            self.mapped[spec.pipeline_id].append(envelope.seq)
        self.frames_seen[(spec.pipeline_id, partition)].add(envelope.seq)

    def _mapped_frames(self, spec: PipelineSpec, envelope: Envelope, value: bytes,
                       on_bad: Callable[[int, bytes, str], None]) -> Iterator[bytes]:
        """The frames of `_frames`, the task told where each comes from (input_context)
        before it is mapped."""
        task = task_context.current()
        for frame, origin in self._frames(spec, envelope, value, on_bad):
            if task is not None:
                task.reading(frame, origin)
            yield frame

    def _frames(self, spec: PipelineSpec, envelope: Envelope, value: bytes,
                on_bad: Callable[[int, bytes, str], None]
                ) -> Iterator[tuple[bytes, Origin | None]]:
        """The frames an input message stands for, each with where it comes from: itself,
        the split it names (read from its file, CodecError if it changed), or the records
        of a topic range, cut in pieces of the spec's split size."""
        size = split_size(spec.split_bytes, self.rt.settings.split_bytes)
        if envelope.kind is Kind.SPLIT:
            split = Split.decode(value)
            confined(split, spec.input_files, self.rt.settings.input_roots)
            for offset, frame in read_split(split, size):
                yield frame, FileOrigin(split.path, offset, spec.fmt)
        elif envelope.kind is Kind.TOPIC_RANGE:
            if self._ranges is None:
                config = self.rt.settings.consumer_config("mapreduce-input-ranges")
                config["enable.partition.eof"] = True  # read_range stops at the range's end
                self._ranges = Consumer(config)
            span = TopicRange.decode(value)
            try:
                yield from topic_range_pieces(self._ranges, span, spec.fmt, size, on_bad)
            except KafkaException as exc:
                if kafka.input_gone(exc) or kafka.topic_missing(self.rt.admin, span.topic):
                    raise InputGone(f"input topic {span.topic} cannot be read: "
                                    f"{exc.args[0].str()}") from exc
                raise  # an outage: the worker restarts and reads the range again
        else:
            yield value, origin_of(envelope, spec.fmt)

    def on_end(self, spec: PipelineSpec, envelope: Envelope, partition: int) -> None:
        self.rt.producer.flush()  # mark only what is durable
        seen = self.frames_seen.pop((spec.pipeline_id, partition), set())
        self.rt.log.info("map partition ended", pipeline=spec.pipeline_id, partition=partition,
                         frames_mapped_here=len(seen), first=min(seen, default=None))
        complete = self.rt.store.mark_ended(spec.pipeline_id, Stage.MAP, partition,
                                            spec.partitions, spec.step)
        if spec.map_only:  # the partition's part is complete: the sink may write it
            crash_point("mapper.after_part_mark", spec.pipeline_id)
            self.rt.producer.send(topics.OUTPUT, b"",
                                  Envelope(Kind.STREAM_ENDED, spec.pipeline_id, part=partition,
                                           step=spec.step),
                                  partition=partition % self.rt.output_partitions)
            self.rt.producer.flush()
            crash_point("mapper.after_output_handoff", spec.pipeline_id)
            return
        if complete:
            crash_point("mapper.after_map_mark", spec.pipeline_id)
            self.rt.log.info("map stage ended", pipeline=spec.pipeline_id, step=spec.step)
            for shuffle_partition in range(self.rt.shuffle_partitions):
                self.rt.producer.send(topics.SHUFFLE, b"",
                                      Envelope(Kind.STREAM_ENDED, spec.pipeline_id, step=spec.step),
                                      partition=shuffle_partition)
            self.rt.producer.flush()
            crash_point("mapper.after_shuffle_handoff", spec.pipeline_id)

    def batch_payload(self) -> dict[str, list[int]]:
        mapped, self.mapped = dict(self.mapped), defaultdict(list)
        return mapped

    def after_durable(self, payloads: list[dict[str, list[int]]]) -> None:
        for pipeline_id in {p for payload in payloads for p in payload}:
            self.rt.store.add_mapped(pipeline_id, [seq for payload in payloads
                                                   for seq in payload.get(pipeline_id, ())])

    def _forget_finished(self) -> None:
        super()._forget_finished()
        live = set(self.rt.view.entries)
        for where in [w for w in self.frames_seen if w[0] not in live]:
            del self.frames_seen[where]

