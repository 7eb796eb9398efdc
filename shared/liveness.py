"""No wait without an end: which stage a running pipeline waits on, and when to repair it.

A pipeline moves through the barriers of shared/barrier.py in FLOW order. It waits on the
first stage whose barrier is not complete. When that stage's input is complete (the stage
before it has ended everywhere) and nothing has moved for STALL_S, the hand-off into it may
have been lost (a worker died between its mark and its send, and no replay came), so the
dispatchers send it again: the end markers of the stage before, to every partition of the
waiting stage's topic. Duplicates are harmless, because every barrier is a set. A slow
stage loses nothing by an extra end marker either: it arrives after all the data sent
before the stage before it completed.

A repair does not always help (a group that never converges, a stage whose workers are all
gone): a pipeline whose inputs are complete and that shows no progress for the stall limit
(MAPREDUCE_STALL_LIMIT_S) is failed, with what it waits on as the reason, so that every job
ends. Progress is a barrier partition ending, a frame mapped, a change of state, or the
workers holding the waiting stage's input reading anything (so a stage working through a
long backlog is not failed; a busy cluster can delay the failure of a stalled job, never
cause one).

Pure: the dispatcher feeds observations and acts on the answers (services/roles/dispatcher.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mapreduce_kafka.shared import topics
from mapreduce_kafka.shared.barrier import FLOW, Stage

# A stage whose input is complete and that shows no progress for this long gets its
# hand-off re-sent. Longer than a worker's failover (the session timeout, 10 s, plus a
# restart), so that the usual repair, a replay by the partition's next owner, comes first;
# short enough that a lost hand-off costs a user seconds, not forever.
STALL_S = 20.0

FINALIZE = "finalize"  # every barrier complete; the sink has not finished the job yet


def waiting_on(ended: dict[Stage, int], totals: dict[Stage, int]) -> Stage | str | None:
    """The first stage not complete; FINALIZE when all are; None when a total is unknown.
    A pipeline without a shuffle or reduce total has no such stage (a map-only one,
    barrier.stage_totals)."""
    for stage in FLOW:
        if stage not in totals and stage in (Stage.SHUFFLE, Stage.REDUCE):
            continue
        total = totals.get(stage)
        if not total:
            return None
        if ended.get(stage, 0) < total:
            return stage
    return FINALIZE


def at_step(step: int, ended: dict[Stage, int],
            totals: dict[Stage, int]) -> tuple[dict[Stage, int], dict[Stage, int]]:
    """A later step's barriers as one pipeline's: its input is the step before, complete
    once the pipeline is at this step, so its SOURCE stage is one partition, ended."""
    if step == 0:
        return ended, totals
    return {**ended, Stage.SOURCE: 1}, {**totals, Stage.SOURCE: 1}


def describe(ended: dict[Stage, int], totals: dict[Stage, int], mapped: int = 0,
             frames: int | None = None, step: int = 0, steps: int = 1) -> str:
    """For people (`mapreduce status`): what the pipeline waits on, with the counts (and,
    in a pipeline of several steps, which step it is at)."""
    if steps > 1:
        return f"step {step + 1}/{steps}: " + describe(ended, totals, mapped, frames)
    stage = waiting_on(ended, totals)
    if stage is None:
        return "starting"
    if stage == FINALIZE:
        return "the sink to finalize the output"
    assert isinstance(stage, Stage)
    counts = f"{ended.get(stage, 0)}/{totals[stage]} partitions ended"
    if stage is Stage.SOURCE:
        return f"the source's stream ({counts})"
    if stage is Stage.MAP:
        of = f"/{frames}" if frames is not None else ""
        return f"map ({counts}, {mapped}{of} frames mapped)"
    return f"{stage.value} ({counts})"


def handoff_into(stage: Stage | str, totals: dict[Stage, int]) -> Stage | None:
    """The stage whose end-of-stream hand-off feeds `stage` (SINK's own, for FINALIZE:
    a replayed end marker makes the sink finalize), among the pipeline's stages (those
    in `totals`); None for the source's stream, which only the source can end."""
    if stage == FINALIZE:
        return Stage.SINK
    flow = [s for s in FLOW if s in totals]
    index = flow.index(stage)  # type: ignore[arg-type]
    return flow[index - 1] if index > 0 else None


def stage_input(stage: Stage | str, pipeline_id: str,
                totals: dict[Stage, int]) -> list[str]:
    """The partitions the workers of `stage` read its input from, as heartbeats name them
    (`TOPIC[p]`); [] where that input is not a topic of partitions a worker holds alone
    (the source's stream, the sink's finalizing)."""
    if stage is Stage.MAP:
        topic = topics.map_topic(pipeline_id)
    elif stage is Stage.SHUFFLE:
        topic = topics.SHUFFLE
    elif stage is Stage.REDUCE:
        topic = topics.reduce_topic(pipeline_id)
    else:
        return []
    return [f"{topic}[{p}]" for p in range(totals[stage])]


def activity_input(stage: Stage | str, pipeline_id: str, totals: dict[Stage, int],
                   output_partitions: int) -> list[str]:
    """The partitions whose readers' activity counts as progress of `stage`: its input,
    and OUTPUT for the sink (which writes the parts and then finalizes)."""
    if stage is Stage.SINK or stage == FINALIZE:
        return [f"{topics.OUTPUT}[{p}]" for p in range(output_partitions)]
    return stage_input(stage, pipeline_id, totals)


def reading(partitions: list[str], workers: Iterable[Mapping[str, str]]) -> int:
    """Messages read so far by the workers (their heartbeats) that hold any of
    `partitions`: it grows while a stage works through its input, even when none of its
    partitions has ended yet."""
    wanted = set(partitions)
    total = 0
    for worker in workers:
        if wanted.isdisjoint((worker.get("partitions") or "").split(",")):
            continue
        try:
            total += int(json.loads(worker.get("metrics") or "{}").get("messages_in", 0))
        except (ValueError, TypeError, AttributeError):
            continue  # a heartbeat without figures shows no activity
    return total


def gives_up(waiting: Stage | str | None, still_s: float, limit_s: float) -> bool:
    """Whether a pipeline that has shown no progress for `still_s` is failed: its inputs
    are complete (it waits on a stage past the source's stream, which only the source can
    end) and it has been still for the limit (0: never)."""
    return (bool(limit_s) and waiting is not None and waiting is not Stage.SOURCE
            and still_s >= limit_s)


def stall_reason(waiting: str, still_s: float, unheld_partitions: list[str]) -> str:
    """The failure reason: what it waited on (`describe`), and the partitions no worker
    held, the usual cause."""
    reason = (f"stalled: no progress for {still_s:.0f} s with its inputs complete, waiting "
              f"on {waiting}")
    if unheld_partitions:
        shown = ", ".join(unheld_partitions[:8])
        more = len(unheld_partitions) - 8
        reason += (f"; no live worker holds {shown}" + (f" and {more} more" if more > 0
                                                         else ""))
    return reason


def unheld(partitions: list[str], held: set[str]) -> list[str]:
    """The partitions no live worker reports holding. A stall with such partitions is not a
    lost hand-off: nobody reads them (a group that does not converge), and the warning
    says so, for the operator and for the tests' report."""
    return [p for p in partitions if p not in held]


@dataclass
class _Seen:
    progress: tuple[object, ...]
    since: float  # since the progress changed, or the last repair
    changed: float  # since the progress changed


class StallWatch:
    """Per pipeline, since when its progress has not changed."""

    def __init__(self, stall_s: float = STALL_S) -> None:
        self.stall_s = stall_s
        self._seen: dict[str, _Seen] = {}

    def stalled(self, pipeline_id: str, progress: tuple[object, ...], now: float) -> bool:
        """Record an observation; True when the progress has not changed for stall_s (the
        clock then restarts, so a repair is repeated at most every stall_s)."""
        seen = self._seen.get(pipeline_id)
        if seen is None or seen.progress != progress:
            self._seen[pipeline_id] = _Seen(progress, now, now)
            return False
        if now - seen.since < self.stall_s:
            return False
        seen.since = now
        return True

    def still_for(self, pipeline_id: str, now: float) -> float:
        """How long the progress last recorded has not changed (repairs do not count)."""
        seen = self._seen.get(pipeline_id)
        return now - seen.changed if seen is not None else 0.0

    def forget(self, live: set[str]) -> None:
        for pipeline_id in [p for p in self._seen if p not in live]:
            del self._seen[pipeline_id]
