"""Ending a pipeline, from whichever process sees the end: the first terminal state wins."""

from __future__ import annotations

import structlog

from services.producer import OutputProducer
from shared import topics
from shared.store import Store

log = structlog.get_logger("lifecycle")


def finish(store: Store, producer: OutputProducer, pipeline_id: str, state: str,
           reason: str = "", *, keep: bool = False) -> str:
    """Record the terminal state, then (unless kept) tombstone the spec so that workers drop
    the pipeline and the dispatcher deletes its topics, and drop its coordination keys."""
    held = store.finish_pipeline(pipeline_id, state, reason)
    log.info("pipeline finished", pipeline=pipeline_id, state=held, reason=reason or None)
    if not keep:
        producer.send(topics.PIPELINES, None, key=pipeline_id.encode())
        producer.flush()
        store.forget_pipeline(pipeline_id)
    return held


def user_error_reason(role: str, exc: BaseException, where: str) -> str:
    return f"{role} raised {type(exc).__name__}: {exc} ({where})"
