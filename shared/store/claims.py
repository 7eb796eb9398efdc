"""Names a live pipeline holds alone: its id as Kafka sees it, and its output.

Kafka treats `.` and `_` alike in topic names, so pipelines `etl.1` and `etl_1` would
need colliding topics (MAP---etl.1, MAP---etl_1), and two jobs writing one output
directory or topic would take each other's results. A pipeline claims these names when it
is registered (atomically, in the registration script), and releases them when it reaches
a terminal state: a claim held by a pipeline that is no longer active is free (a release
lost with its Redis write cannot block a name forever)."""

from __future__ import annotations

from mapreduce_kafka.shared import output
from mapreduce_kafka.shared.store import keys

ID, DIRECTORY, TOPIC = "id", "dir", "topic"


def kafka_name(name: str) -> str:
    """A topic name as Kafka compares names for collisions."""
    return name.replace(".", "_")


def id_claim(pipeline_id: str) -> str:
    return keys.claim(ID, kafka_name(pipeline_id))


def output_claim(output_dir: str) -> str:
    """`output_dir` as check_output returns it: an absolute path, or kafka:TOPIC."""
    if output.is_topic(output_dir):
        return keys.claim(TOPIC, kafka_name(output.topic_of(output_dir)))
    return keys.claim(DIRECTORY, output_dir)


def pipeline_claims(pipeline_id: str, output_dir: str) -> list[str]:
    return [id_claim(pipeline_id), output_claim(output_dir)]


class ClaimHeld(Exception):
    """A name is held by another live pipeline: `kind` (ID, DIRECTORY or TOPIC), `name`."""

    def __init__(self, key: str, holder: str) -> None:
        self.key, self.holder = key, holder
        self.kind, self.name = key.split(":", 3)[2:]
        super().__init__(f"{self.kind} {self.name!r} is held by pipeline {holder!r}")
