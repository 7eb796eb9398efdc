"""Sink: OUTPUT -> the job's output directory, complete or not at all.

Results are held per (pipeline, reduce partition) and de-duplicated by key (a key lives in
exactly one reduce partition, so a second result for it is a replay). On that partition's
end marker its part file is written durably; when every part exists the job is finalized
(rename, then `_SUCCESS`) and the pipeline is marked done."""

from __future__ import annotations

from collections.abc import Hashable

from confluent_kafka import Message

from services import lifecycle, output
from services.holding import Holding, HoldingWorker
from shared import kafka, topics
from shared.barrier import Stage
from shared.codec import Envelope, decode_items
from shared.spec import PipelineSpec
from shared.store import TERMINAL


class Sink(HoldingWorker):
    role = "sink"
    topic = topics.OUTPUT
    stage = Stage.SINK

    def hold_key(self, envelope: Envelope) -> Hashable:
        return (envelope.pipeline, envelope.part)

    def barrier_partition(self, envelope: Envelope, partition: int) -> int:
        return envelope.part

    def absorb(self, spec: PipelineSpec, holding: Holding, envelope: Envelope,
               msg: Message) -> None:
        holding.data.update(decode_items(kafka.value_of(msg)))

    def emit(self, spec: PipelineSpec, holding: Holding, envelope: Envelope,
             partition: int) -> None:
        pipeline_id = spec.pipeline_id
        store = self.rt.store
        if (store.has_ended(pipeline_id, Stage.SINK, envelope.part)
                or store.pipeline(pipeline_id).get("state") in TERMINAL):
            return  # a zombie's late copy: another sink already wrote this part
        staging = output.staging_dir(spec.output_dir, pipeline_id)
        output.write_part(staging, envelope.part, output.sorted_items(holding.data))
        self.rt.store.update_pipeline(pipeline_id, **{f"keys.{envelope.part}": len(holding.data)})
        if self.rt.store.mark_ended(pipeline_id, Stage.SINK, envelope.part, spec.partitions):
            output.finalize(staging, spec.output_dir)
            self.rt.log.info("output finalized", pipeline=pipeline_id, output=spec.output_dir)
            lifecycle.finish(self.rt.store, self.rt.producer, pipeline_id, "done", keep=spec.keep)
