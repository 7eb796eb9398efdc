"""mrjob's own runners as the oracle for mrjob jobs run here: a job run by mrjob's inline
runner (its local runner when a step has a command, which the inline runner cannot run),
its output lines and its counters (summed over steps, as `mapreduce status` shows them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mapreduce_kafka.shared import task_context
from mapreduce_kafka.shared.mrjob_jobs import job_class_in
from mapreduce_kafka.shared.spec import load_module


@dataclass(frozen=True)
class MRJobRun:
    lines: list[bytes]  # every output line, sorted (parts differ in number, not content)
    counters: task_context.Counters


def run_with_mrjob(script: Path, inputs: Sequence[Path], job_args: Sequence[str] = (),
                   runner: str = "inline") -> MRJobRun:
    job_class = job_class_in(load_module(script))
    assert job_class is not None, f"{script} defines no MRJob class"
    job = job_class(args=["-r", runner, "--no-conf", *map(str, inputs), *job_args])
    with job.make_runner() as mr_runner:
        mr_runner.run()
        data = b"".join(mr_runner.cat_output())
        counters = task_context.total(list(mr_runner.counters()))
    return MRJobRun(sorted(data.splitlines()), counters)
