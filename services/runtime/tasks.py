"""The failure budget (as Spark's spark.task.maxFailures): a worker's current task, the
watchdog that bounds its time, and the charge its pipeline pays when the worker goes down
in it.

A task is one message of one pipeline in a worker's hands: a frame, a split, a topic range,
a group of keys, an end marker. Only tasks that run the pipeline's code (mappers',
reducers') are timed. A worker that fails in a task (an error past every guard:
out of memory, say) or whose task overruns its time limit (user code that never returns)
restarts, and the next owner of that message meets it again. So each such event charges
the pipeline, durably, with the reason and the message's position; a pipeline charged
`max_task_failures` times fails with the last reason and is skipped by every worker from
then on. No worker restarts more than that many times because of one pipeline.

Outages are not charged (the broker or Redis unreachable, a crash point): they are no
pipeline's doing, and restarting is the cure. Pure except `charge`, which writes Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from mapreduce_kafka.services.runtime import lifecycle
from mapreduce_kafka.shared.store import Store

log = structlog.get_logger("tasks")

WATCH_S = 0.5  # how often the watchdog looks: a task overruns its limit by at most this


@dataclass(frozen=True)
class Task:
    pipeline_id: str
    where: str  # topic[partition]@offset: the message, for the reason and the charge
    started: float  # time.monotonic()
    limit_s: float  # 0: no limit


def overran(task: Task, now: float) -> bool:
    return task.limit_s > 0 and now - task.started > task.limit_s


def exhausted(charges: int, budget: int) -> bool:
    """Whether this many charges fail the pipeline (0 charges: it is no longer active)."""
    return charges >= budget > 0


class Tasks:
    """What the worker's one serving thread is working on; read by the watchdog's thread.
    One attribute written per message: cheap enough for the hot path."""

    def __init__(self, default_limit_s: float) -> None:
        self.default_limit_s = default_limit_s
        self.current: Task | None = None

    def begin(self, pipeline_id: str, where: str, job_limit_s: float = 0.0, *,
              runs_user_code: bool = True) -> None:
        """A task starts: timed (by the job's limit, else the default) only when it runs
        the pipeline's code. The framework's own work (a shuffler merging a partition, a
        sink writing its parts) takes as long as the data is big, and is not timed."""
        limit_s = (job_limit_s or self.default_limit_s) if runs_user_code else 0.0
        self.current = Task(pipeline_id, where, time.monotonic(), limit_s)

    def end(self) -> None:
        self.current = None


def charge(store: Store, task: Task, reason: str, budget: int) -> bool:
    """Charge the task's pipeline; fail it once its budget is spent. Whether it failed."""
    charges = store.charge(task.pipeline_id, reason, task.where)
    log.error("pipeline charged for a worker failure", pipeline=task.pipeline_id,
              at=task.where, reason=reason, charges=charges, budget=budget)
    if not exhausted(charges, budget):
        return False
    lifecycle.finish(store, None, task.pipeline_id, "failed",
                     f"{reason} (at {task.where}; {charges} times, the failure budget)")
    return True


class Watchdog:
    """A daemon thread that calls `on_overrun(task)` once, when the current task has run
    past its limit. The serving thread is stuck in it, so `on_overrun` must end the
    process (services/worker.py charges the pipeline and restarts)."""

    def __init__(self, tasks: Tasks, on_overrun: Callable[[Task], None]) -> None:
        self._tasks = tasks
        self._on_overrun = on_overrun
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="task-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_S):
            task = self._tasks.current
            if task is not None and overran(task, time.monotonic()):
                self._on_overrun(task)
                return
