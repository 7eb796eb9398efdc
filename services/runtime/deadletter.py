"""User-code errors: the record (or key) goes to the DEADLETTER topic with where it came
from and the traceback; the job goes on. Errors are counted in Redis as a set of
identities (frame and record index, or key), so a replay does not count twice. Past the
pipeline's --max-errors the job fails."""

from __future__ import annotations

import traceback
from typing import Any

import orjson

from mapreduce_kafka.services.runtime.process import Runtime
from mapreduce_kafka.shared import topics
from mapreduce_kafka.shared.codec import CodecError, Envelope, Kind, key_bytes
from mapreduce_kafka.shared.metrics import METRICS
from mapreduce_kafka.shared.spec import PipelineSpec

MAX_DATA_CHARS = 2000  # how much of the offending record a dead letter carries


def record(rt: Runtime, spec: PipelineSpec, role: str, identity: str, data: Any,
           exc: BaseException, source: dict[str, Any]) -> None:
    if spec.step:  # the same key or frame number in another step is another record
        identity, source = f"step{spec.step + 1}:{identity}", {**source, "step": spec.step + 1}
    letter = {
        "pipeline": spec.pipeline_id, "role": role, "identity": identity, **source,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc))[-8000:],
        "data": repr(data)[:MAX_DATA_CHARS], "worker": rt.worker_id,
    }
    rt.producer.send(topics.DEADLETTER, orjson.dumps(letter),
                     Envelope(Kind.RECORDS, spec.pipeline_id), key=spec.pipeline_id.encode())
    METRICS.count(dead_letters=1)
    count = rt.store.add_error(spec.pipeline_id, identity)
    rt.log.warning("user code raised; record dead-lettered", pipeline=spec.pipeline_id,
                   identity=identity, error=letter["error"], errors=count)
    if spec.max_errors is not None and count > spec.max_errors:
        rt.fail(spec.pipeline_id, f"{count} records failed, more than --max-errors "
                                  f"{spec.max_errors}; last: {role} raised {letter['error']}")


def key_text(key: Any) -> str:
    """A key as text for a dead letter's identity, whatever it is (even unencodable)."""
    try:
        return key_bytes(key).decode("utf-8", "replace")
    except CodecError:
        return repr(key)
