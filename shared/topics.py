"""Topic names and pipeline-id validation.

Fixed topics are shared by every pipeline; each pipeline gets its own MAP---<id> and
REDUCE---<id> so that its offsets are its own (see DESIGN-NOTES, "Per-pipeline topics").
"""

import re

from mapreduce_kafka.shared.errors import InvalidPipelineId

PIPELINES = "PIPELINES"  # compacted, keyed by pipeline id: the specs every worker reads whole
SOURCE = "SOURCE"  # source -> dispatcher: record frames and end-of-stream markers
SHUFFLE = "SHUFFLE"  # mapper -> shuffler, partitioned by a stable hash of the key
OUTPUT = "OUTPUT"  # reducer -> sink
DEADLETTER = "DEADLETTER"  # records and keys whose user code raised, with the traceback

SEPARATOR = "---"
MAP_PREFIX = "MAP" + SEPARATOR
REDUCE_PREFIX = "REDUCE" + SEPARATOR

_LEGAL = re.compile(r"[A-Za-z0-9._-]+")
_MAX_TOPIC = 249
MAX_PIPELINE_ID = _MAX_TOPIC - len(REDUCE_PREFIX)


def validate_pipeline_id(pipeline_id: str) -> str:
    """Return the id unchanged, or raise InvalidPipelineId saying what is wrong with it."""
    if not pipeline_id:
        raise InvalidPipelineId("pipeline id is empty")
    if not _LEGAL.fullmatch(pipeline_id):
        bad = sorted({c for c in pipeline_id if not _LEGAL.fullmatch(c)})
        raise InvalidPipelineId(
            f"pipeline id {pipeline_id!r} has characters not allowed in a Kafka topic name: "
            f"{''.join(bad)!r} (allowed: letters, digits, '.', '_', '-')"
        )
    if SEPARATOR in pipeline_id:
        raise InvalidPipelineId(
            f"pipeline id {pipeline_id!r} contains {SEPARATOR!r}, which is reserved as the "
            "separator in MAP---<id> / REDUCE---<id>"
        )
    if len(pipeline_id) > MAX_PIPELINE_ID:
        raise InvalidPipelineId(
            f"pipeline id is {len(pipeline_id)} characters; at most {MAX_PIPELINE_ID} fit "
            "in a topic name"
        )
    if pipeline_id in {".", ".."}:
        raise InvalidPipelineId(f"pipeline id {pipeline_id!r} is not a valid topic name")
    return pipeline_id


def validate_topic_name(name: str) -> str:
    """A name Kafka accepts for a topic (an input or output topic a user names)."""
    if not name or len(name) > _MAX_TOPIC or name in {".", ".."} or not _LEGAL.fullmatch(name):
        raise InvalidPipelineId(f"{name!r} is not a Kafka topic name (letters, digits, '.', "
                                f"'_', '-'; at most {_MAX_TOPIC} characters)")
    return name


def map_topic(pipeline_id: str) -> str:
    return MAP_PREFIX + pipeline_id


def reduce_topic(pipeline_id: str) -> str:
    return REDUCE_PREFIX + pipeline_id


def pipeline_of(topic: str) -> str | None:
    """The pipeline a MAP---<id> or REDUCE---<id> topic belongs to (None for the others)."""
    for prefix in (MAP_PREFIX, REDUCE_PREFIX):
        if topic.startswith(prefix):
            return topic[len(prefix):]
    return None


def pipelines_of(partitions: list[str]) -> list[str]:
    """The pipelines of partitions named TOPIC[N] (for log events: grep finds an id)."""
    return sorted({p for p in (pipeline_of(name.rpartition("[")[0]) for name in partitions)
                   if p is not None})

