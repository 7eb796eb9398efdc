"""Every Redis key the store uses, named in one place (all under ``mr:``):

  mr:pipelines                  set of pipeline ids, for `status`
  mr:active                     set of pipeline ids not yet done or failed
  mr:finishing                  sorted set (by end time) of pipelines done or failed whose
                                cleanup (tombstone, keys) is not finished: see lifecycle
  mr:staging                    pipelines whose sink created a staging directory
  mr:pipeline:<id>              hash: state, reason, output, partitions, frames, times
                                (submitted, ready, sent, completed.<stage>, finished)
  mr:ended:<id>:<stage>[:<step>] set of partitions that ended at that stage (the barrier;
                                of step 0, or of a later step of a pipeline of several)
  mr:mapped:<id>                set of source frame numbers mapped (progress, idempotent)
  mr:errors:<id>                set of identities of records or keys that failed
  mr:counters:<id>              hash: a task's counters (JSON) by the task's identity, set
                                once per task, so that a replay overwrites (counters.py)
  mr:source:<id>                the source's liveness: set while it runs (expires)
  mr:worker:<worker-id>         hash: role, host, pid, partitions, last_seen (expires)
  mr:claim:<kind>:<name>        the live pipeline holding a name alone (claims.py)
"""

from __future__ import annotations

from mapreduce_kafka.shared.barrier import Stage

PIPELINES = "mr:pipelines"
ACTIVE = "mr:active"
FINISHING = "mr:finishing"
STAGING = "mr:staging"
WORKER_PATTERN = "mr:worker:*"


def pipeline(pipeline_id: str) -> str:
    return f"mr:pipeline:{pipeline_id}"


def ended(pipeline_id: str, stage: Stage, step: int = 0) -> str:
    suffix = f":{step}" if step else ""  # step 0's name is the one-step pipeline's
    return f"mr:ended:{pipeline_id}:{stage.value}{suffix}"


def mapped(pipeline_id: str) -> str:
    return f"mr:mapped:{pipeline_id}"


def errors(pipeline_id: str) -> str:
    return f"mr:errors:{pipeline_id}"


def counters(pipeline_id: str) -> str:
    return f"mr:counters:{pipeline_id}"


def source(pipeline_id: str) -> str:
    return f"mr:source:{pipeline_id}"


def worker(worker_id: str) -> str:
    return f"mr:worker:{worker_id}"


def claim(kind: str, name: str) -> str:
    return f"mr:claim:{kind}:{name}"


def worker_id(key: str) -> str:
    """The worker id in a key `worker` made."""
    return key.split(":", 2)[2]


def coordination(pipeline_id: str, steps: int = 1) -> list[str]:
    """A pipeline's keys besides its status hash: dropped once it has finished."""
    return [*(ended(pipeline_id, stage, step) for step in range(steps) for stage in Stage),
            mapped(pipeline_id), errors(pipeline_id), counters(pipeline_id), source(pipeline_id)]
