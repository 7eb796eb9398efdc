"""Ending a pipeline, from whichever process sees the end: the first terminal state wins.

Ending is three durable steps: the terminal state (which also puts the pipeline on the
`finishing` list), the tombstone of its spec (workers drop it, the dispatchers delete its
topics), then dropping its coordination keys (which takes it off the list). A kept
pipeline (--keep) is tombstoned too, so that no worker holds a consumer for it; its topics
and keys stay. Whoever ends a pipeline records the terminal state; only dispatchers
tombstone and clean up (`cleanup`, idempotent), for every pipeline on the list: so no
other role needs to write PIPELINES (docs/security.md), and a crash anywhere in between is
finished by the next dispatcher pass."""

from __future__ import annotations

import structlog

from mapreduce_kafka.services.runtime.producer import OutputProducer
from mapreduce_kafka.shared import spec_parts, topics
from mapreduce_kafka.shared.crashpoints import crash_point
from mapreduce_kafka.shared.store import TERMINAL, Store

log = structlog.get_logger("lifecycle")


def finish(store: Store, producer: OutputProducer | None, pipeline_id: str, state: str,
           reason: str = "", *, force: bool = False) -> str:
    """Record the terminal state; a dispatcher (one that passes its `producer`) also cleans
    up at once. Returns the state that holds: an earlier
    terminal state, or `finalizing` when a failure came after the sink claimed a complete
    output (`force`: the sink failing it itself)."""
    held = store.finish_pipeline(pipeline_id, state, reason, force=force)
    if held not in TERMINAL:
        log.info("failure refused: the output is complete and being finalized",
                 pipeline=pipeline_id, reason=reason)
        return held
    log.info("pipeline finished", pipeline=pipeline_id, state=held, reason=reason or None)
    crash_point("lifecycle.after_terminal", pipeline_id)
    if producer is not None:
        cleanup(store, producer, pipeline_id)
    return held


def cleanup(store: Store, producer: OutputProducer, pipeline_id: str) -> None:
    """Tombstone the spec, then drop the coordination keys (a kept pipeline's stay).
    Idempotent."""
    parts = int(store.pipeline(pipeline_id).get("spec_parts") or 0)
    for index in range(parts):  # a large spec's parts (shared/spec_parts.py)
        producer.send(topics.PIPELINES, None,
                      key=spec_parts.part_key(pipeline_id, index).encode())
    producer.send(topics.PIPELINES, None, key=pipeline_id.encode())
    producer.flush()
    crash_point("lifecycle.after_tombstone", pipeline_id)
    store.forget_pipeline(pipeline_id)
