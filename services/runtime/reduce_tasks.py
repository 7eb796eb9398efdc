"""Reduce partitions run as whole tasks, for pipelines with `reducer_init`/`reducer_final`.

Such a pipeline's reducer keeps state across the keys of a partition, and its
`reducer_final` yields pairs that depend on all of them. A replay must then re-run the
whole partition, never a tail of it:

- **its own code**: each task runs on a private copy of the spec, unpickled again, so two
  partitions of one pipeline in one worker do not share the hooks' state (module globals);
- **its offsets held**: nothing of the partition is committed past the task's first record
  until its end marker is processed, so a worker that dies mid-task leaves the whole
  partition to be read again (`held_offsets`, clamped like fragments' offsets);
- **each key once**: a key a shuffler sent twice (its replay) is reduced once per task;
- **dropped with the partition**: a revoked or lost partition's task is dropped, and its
  next owner starts it again from the held offset.

The final pairs go to the sink as the part's *final* unit, one per task, which a replayed
task replaces (docs/pipelines.md, "Hooks")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mapreduce_kafka.shared.spec import PipelineSpec
from mapreduce_kafka.shared.task_context import Counters

Where = tuple[str, int]  # (topic, partition)


@dataclass
class ReduceTask:
    spec: PipelineSpec  # a private copy: the hooks' state is this task's alone
    where: Where
    first_offset: int
    keys: set[bytes] = field(default_factory=set)  # keys reduced, as JSON
    counters: Counters = field(default_factory=dict)  # what reducer_init counted

    def first_time(self, key_json: bytes) -> bool:
        """Whether a key is new to this task (a shuffler's replay sends it again)."""
        if key_json in self.keys:
            return False
        self.keys.add(key_json)
        return True


class ReduceTasks:
    """The open tasks of one reducer, by (pipeline, step, partition)."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, int, int], ReduceTask] = {}

    def get(self, pipeline_id: str, step: int, partition: int) -> ReduceTask | None:
        return self.open.get((pipeline_id, step, partition))

    def add(self, pipeline_id: str, step: int, partition: int, task: ReduceTask) -> None:
        self.open[(pipeline_id, step, partition)] = task

    def pop(self, pipeline_id: str, step: int, partition: int) -> ReduceTask | None:
        return self.open.pop((pipeline_id, step, partition), None)

    def held_offsets(self) -> dict[Where, int]:
        """Per partition, the first offset of a task still open: not to be committed past."""
        held: dict[Where, int] = {}
        for task in self.open.values():
            held[task.where] = min(task.first_offset, held.get(task.where, task.first_offset))
        return held

    def drop(self, which: Callable[[Where], bool]) -> int:
        """Drop the tasks of the partitions `which` selects; how many."""
        gone = [key for key, task in self.open.items() if which(task.where)]
        for key in gone:
            del self.open[key]
        return len(gone)
