"""Sink: OUTPUT -> the job's output directory, complete or not at all.

Results come as `[key, result]` from a reducer that returns, and as units,
`[identity, [[key, value], ...]]`, where keys may repeat: a yielding reducer's pairs for
the key it was given, or a map-only mapper's pairs for one (frame, piece, chunk) of its
input. A reduce task's final pairs (reducer_final) come once per part, after its keys, a
replay's copy replacing the first. They are held per (pipeline, step, part), in memory up
to the sink's budget and in sorted runs on disk past it, and de-duplicated by key or
identity (a key lives in exactly one reduce partition, a frame in one map partition, so a
second copy is a replay). A part file holds them in key or identity order. On that
partition's end marker its part file is written durably and the SINK barrier is marked.
Whoever finds the barrier
complete, on the first pass or on a replayed end marker, finalizes: it claims the pipeline
(state `finalizing`: a failure can no longer override a complete output), renames the
staging directory to the output, writes `_SUCCESS`, and records the pipeline done. Each
step is idempotent, so a crash anywhere is repaired by the replay.

An output the sink cannot write (a read-only or missing directory, a full disk) fails the
pipeline with the reason, and its staging directory is removed once it has failed."""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from mapreduce_kafka.services.runtime import lifecycle
from mapreduce_kafka.services.runtime.holding import Holding, HoldingWorker
from mapreduce_kafka.services.runtime.process import Runtime
from mapreduce_kafka.services.runtime.spill import Groups, fresh_spill_dir
from mapreduce_kafka.shared import output, task_context, topics
from mapreduce_kafka.shared.barrier import Stage
from mapreduce_kafka.shared.codec import (
    TASK_FINAL,
    Envelope,
    Kind,
    decode_items,
    key_order,
    pair_frames,
    step_frame_seq,
)
from mapreduce_kafka.shared.crashpoints import crash_point
from mapreduce_kafka.shared.metrics import METRICS
from mapreduce_kafka.shared.spec import PipelineSpec
from mapreduce_kafka.shared.store import FINALIZING, TERMINAL
from mapreduce_kafka.shared.store.counters import task_field

# a reduce task's own counters, held beside its keys' (never a key's JSON)
FINAL = b"final"
STAGING_SWEEP_S = 10.0  # how often staging directories of failed pipelines are looked for


class Sink(HoldingWorker):
    role = "sink"
    topic = topics.OUTPUT
    stage = Stage.SINK

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.budget_bytes = rt.settings.sink_memory_mb * 1024 * 1024
        self.spill_dir = fresh_spill_dir(rt.settings.home / "spill", rt.worker_id)
        self._staging_swept = 0.0

    def new_holding(self, first_offset: int) -> Holding:
        return Holding(first_offset, Groups(self.spill_dir, order=key_order))

    def hold_key(self, envelope: Envelope) -> tuple[str, int, int]:
        return (envelope.pipeline, envelope.step, envelope.part)

    def barrier_partition(self, envelope: Envelope, partition: int) -> int:
        return envelope.part

    def absorb(self, spec: PipelineSpec, holding: Holding, envelope: Envelope,
               value: bytes) -> None:
        if envelope.chunk == TASK_FINAL:  # what reducer_final yielded: after the part's keys
            holding.final = decode_items(value)
            return
        # units ([identity, pairs]) where keys may repeat, else [key, result]: either way
        # held under the identity, a replay's copy after the first
        items = [(identity, [result]) for identity, result in decode_items(value)]
        METRICS.count(records_in=len(items))
        holding.data.add(items, len(value))

    def absorb_counters(self, holding: Holding, envelope: Envelope, value: bytes) -> None:
        # per key, like its result: a replay's copy replaces the first
        if envelope.chunk == TASK_FINAL:  # a reduce task's own counts (its hooks')
            holding.counters[FINAL] = orjson.loads(value)
            return
        for key, counters in orjson.loads(value):
            holding.counters[orjson.dumps(key)] = counters

    def _record_counters(self, spec: PipelineSpec, holding: Holding, part: int) -> None:
        """The part's counters (its reducer's, one copy per key), before the part is marked:
        written per part, so that a replayed part writes the same field again."""
        if holding.counters:
            self.rt.store.record_counters(
                spec.pipeline_id, task_field("r", spec.step, part),
                task_context.total(list(holding.counters.values())))

    def emit(self, spec: PipelineSpec, holding: Holding, envelope: Envelope,
             partition: int) -> None:
        pipeline_id = spec.pipeline_id
        store = self.rt.store
        if (store.has_ended(pipeline_id, Stage.SINK, envelope.part, spec.step)
                or store.pipeline(pipeline_id).get("state") in TERMINAL):
            return  # a zombie's late copy: another sink already wrote this part
        # the last copy of each: any earlier one is a replay's (the same pairs or result)
        latest: Iterable[tuple[Any, Any]] = (
            ((key, value) for _unit, copies in holding.data.ordered()
             for key, value in copies[-1]) if spec.sends_units
            else ((key, results[-1]) for key, results in holding.data.ordered()))
        latest = itertools.chain(latest, holding.final)
        self._record_counters(spec, holding, envelope.part)
        if not spec.last_step:
            self._feed_next_step(spec, envelope.part, latest)
            return
        if output.is_topic(spec.output_dir):
            keys = self._produce_part(spec, envelope.part, latest)
        else:
            store.add_staging(pipeline_id)
            try:
                keys = output.write_part(output.staging_dir(spec.output_dir, pipeline_id),
                                         envelope.part, latest, spec.output_format)
            except OSError as exc:
                self._cannot_write(spec, exc)
                return
        crash_point("sink.after_part_written", pipeline_id)
        METRICS.count(records_out=keys)
        store.update_pipeline(pipeline_id, **{f"keys.{envelope.part}": str(keys)})
        complete = store.mark_ended(pipeline_id, Stage.SINK, envelope.part, spec.partitions,
                                    spec.step)
        if complete:
            crash_point("sink.after_sink_mark", pipeline_id)
            self._finalize(spec)

    def replayed_end(self, spec: PipelineSpec, envelope: Envelope, partition: int) -> None:
        if not spec.last_step:
            if self.rt.store.stage_complete(spec.pipeline_id, Stage.SINK, spec.partitions,
                                            spec.step):
                self.rt.log.info("step found complete on a replayed end marker: the next "
                                 "step's end markers sent again", pipeline=spec.pipeline_id,
                                 step=spec.step)
                self._start_next_step(spec)
            return
        if (self.rt.store.stage_complete(spec.pipeline_id, Stage.SINK, spec.partitions,
                                         spec.step)
                and self.rt.store.pipeline(spec.pipeline_id).get("state") not in TERMINAL):
            self.rt.log.info("sink stage found complete on a replayed end marker: "
                             "finalizing", pipeline=spec.pipeline_id)
            self._finalize(spec)

    def _feed_next_step(self, spec: PipelineSpec, part: int,
                        pairs: Iterable[tuple[Any, Any]]) -> None:
        """A step before the last: its part's pairs become the next step's input frames
        in MAP---<id>, numbered by (part, index) so that a replay of the part makes the
        same frames with the same numbers; then the part is marked, and whoever completes
        the step's barrier ends the next step's input (see _start_next_step)."""
        pipeline_id, limit = spec.pipeline_id, self.rt.settings.split_bytes
        map_topic = topics.map_topic(pipeline_id)
        frames = 0
        for index, frame in enumerate(pair_frames(pairs, limit)):
            seq = step_frame_seq(part, index)
            self.rt.producer.send_data(map_topic, frame,
                                       Envelope(Kind.RECORDS, pipeline_id, seq=seq,
                                                step=spec.step + 1),
                                       partition=seq % spec.partitions)
            frames += 1
        self.rt.producer.flush()  # mark only what is durable
        crash_point("sink.after_step_part_sent", pipeline_id)
        self.rt.log.info("step part handed to the next step", pipeline=pipeline_id,
                         step=spec.step, part=part, frames=frames)
        if self.rt.store.mark_ended(pipeline_id, Stage.SINK, part, spec.partitions,
                                    spec.step):
            crash_point("sink.after_step_mark", pipeline_id)
            self._start_next_step(spec)

    def _start_next_step(self, spec: PipelineSpec) -> None:
        """Every part of a step is in the next step's input: end it, on every partition."""
        end = Envelope(Kind.STREAM_ENDED, spec.pipeline_id, step=spec.step + 1)
        for partition in range(spec.partitions):
            self.rt.producer.send(topics.map_topic(spec.pipeline_id), b"", end,
                                  partition=partition)
        self.rt.producer.flush()
        crash_point("sink.after_step_handoff", spec.pipeline_id)
        self.rt.log.info("step ended: the next one begins", pipeline=spec.pipeline_id,
                         step=spec.step)

    def _finalize(self, spec: PipelineSpec) -> None:
        pipeline_id = spec.pipeline_id
        claim = self.rt.store.claim_finalizing(pipeline_id)
        if claim != FINALIZING:
            self.rt.log.info("not finalized: the pipeline has ended", pipeline=pipeline_id,
                             state=claim)
            return
        crash_point("sink.after_claim", pipeline_id)
        if output.is_topic(spec.output_dir):
            self._produce_success(spec)
        else:
            staging = output.staging_dir(spec.output_dir, pipeline_id)
            try:
                output.finalize(staging, spec.output_dir, pipeline_id,
                                after_rename=lambda: crash_point("sink.after_rename",
                                                                 pipeline_id))
            except OSError as exc:
                self._cannot_write(spec, exc, force=True)
                return
            except output.ForeignOutput as exc:
                self._fail(spec, str(exc), force=True)
                return
        crash_point("sink.after_success", pipeline_id)
        self.rt.store.remove_staging(pipeline_id)
        self.rt.log.info("output finalized", pipeline=pipeline_id, output=spec.output_dir)
        lifecycle.finish(self.rt.store, None, pipeline_id, "done", force=True)

    def _produce_part(self, spec: PipelineSpec, part: int,
                      results: Iterable[tuple[Any, Any]]) -> int:
        """A part's results as records of the output topic, durable before the part is
        marked (see shared/output.py)."""
        topic, headers = output.topic_of(spec.output_dir), [("mr-p", spec.pipeline_id.encode())]
        count = 0
        repeats = spec.keys_may_repeat
        for key, value in results:
            at = (part, count) if repeats else None
            self.rt.producer.send(topic, orjson.dumps(value),
                                  key=output.topic_key(spec.pipeline_id, key, at),
                                  headers=headers)
            count += 1
        self.rt.producer.flush()
        return count

    def _produce_success(self, spec: PipelineSpec) -> None:
        """The topic's _SUCCESS: after every part, names the pipeline and its key count."""
        status = self.rt.store.pipeline(spec.pipeline_id)
        keys = sum(int(v) for k, v in status.items() if k.startswith("keys."))
        self.rt.producer.send(output.topic_of(spec.output_dir),
                              orjson.dumps({"pipeline": spec.pipeline_id, "keys": keys}),
                              key=output.success_key(spec.pipeline_id),
                              headers=[("mr-p", spec.pipeline_id.encode())])
        self.rt.producer.flush()

    def _cannot_write(self, spec: PipelineSpec, exc: OSError, force: bool = False) -> None:
        self._fail(spec, f"the sink cannot write the output {spec.output_dir}: "
                         f"{exc.strerror or exc} ({getattr(exc, 'filename', None) or 'output'})",
                   force)

    def _fail(self, spec: PipelineSpec, reason: str, force: bool = False) -> None:
        """Fail the pipeline (`force`: over the sink's own finalizing claim) and remove
        its staging directory."""
        self.rt.log.error("pipeline failed", pipeline=spec.pipeline_id, reason=reason)
        self.rt.failed.add(spec.pipeline_id)
        lifecycle.finish(self.rt.store, None, spec.pipeline_id, "failed", reason, force=force)
        self._remove_staging(spec.pipeline_id, spec.output_dir)

    def run(self) -> None:
        self._sweep_staging()
        super().run()

    def _sweep(self) -> None:
        super()._sweep()
        if time.monotonic() - self._staging_swept >= STAGING_SWEEP_S:
            self._sweep_staging()

    def _sweep_staging(self) -> None:
        """Remove the staging directories of pipelines that failed (the sink that wrote
        their parts may have died since)."""
        self._staging_swept = time.monotonic()
        ids = self.rt.store.staging_ids()
        for pipeline_id, state in self.rt.store.states(ids).items():
            if state == "failed" or not state:
                status = self.rt.store.pipeline(pipeline_id)
                self._remove_staging(pipeline_id, status.get("output"))

    def _remove_staging(self, pipeline_id: str, output_dir: str | None) -> None:
        if output_dir:
            staging = output.staging_dir(output_dir, pipeline_id)
            shutil.rmtree(staging, ignore_errors=True)
            if Path(staging).exists():  # on another host's disk, or not ours to remove
                self.rt.log.warning("staging directory of a failed pipeline not removed",
                                    pipeline=pipeline_id, staging=str(staging))
        self.rt.store.remove_staging(pipeline_id)
