"""A pipeline file, whatever it holds: the framework's functions or steps, or an mrjob
`MRJob` class (shared/mrjob_jobs.py), which takes its own arguments (those given after
`--` on the command line)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mapreduce_kafka.shared import mrjob_jobs, task_context
from mapreduce_kafka.shared.errors import PipelineDefinitionError
from mapreduce_kafka.shared.spec import PipelineCode, checked_params


def load_code(path: str | Path, params: Mapping[str, str] | None = None,
              job_args: Sequence[str] = ()) -> PipelineCode:
    """The code of the pipeline at `path`; `job_args`, an mrjob job's arguments."""
    code = PipelineCode.from_file(path, params)
    module = code.modules[0]
    job_class = mrjob_jobs.job_class_in(module)
    if job_class is None:
        if job_args:
            raise PipelineDefinitionError(
                f"{path}: the arguments after -- ({' '.join(job_args)}) are an mrjob job's "
                "own, and this file defines no MRJob class (use --param NAME=VALUE)")
        return code
    with task_context.running(checked_params(params)):
        return mrjob_jobs.mrjob_code(job_class, list(job_args), code.name, module)
