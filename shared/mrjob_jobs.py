"""mrjob's `MRJob` classes as pipelines: a module that defines one runs unchanged.

On the submitter, the class is built with the arguments given after `--` (its
`configure_args`: passthru and file arguments), its steps are read (`steps()`) and checked,
and what cannot run here is refused in one line. Each step becomes a streaming step
(shared/streaming_steps.py): its stages are mrjob's own code, or commands (`*_cmd`,
`*_pre_filter`). On the workers, each task builds the class again from the same arguments,
as a Hadoop task does, and runs it through mrjob's own task methods (`map_pairs`,
`combine_pairs`, `reduce_pairs`) with the protocols the job picks (`pick_protocols`), so
that what a step reads and writes is what mrjob's runners give it:
- a map task is an input frame: a fresh job object per frame, mapper_init and
  mapper_final around it;
- a reduce task is a reduce partition when the reducer has hooks, otherwise a key;
- a task runs in the job's shipped files' directory (FILES, `add_file_arg`) with the job
  configuration in its environment (`jobconf_from_env`: the job's JOBCONF, the input
  file of a map task, whether the task maps);
- `increment_counter` and `set_status` write Hadoop's reporter lines to the job's stderr,
  which the framework reads (streaming.Reporter).

mrjob is needed where such a job is submitted and on the workers
(`pip install 'mapreduce-kafka[mrjob]'`); it is imported only for such a job."""

from __future__ import annotations

import functools
import itertools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from mapreduce_kafka.shared import task_context
from mapreduce_kafka.shared.errors import PipelineDefinitionError
from mapreduce_kafka.shared.spec import PipelineCode
from mapreduce_kafka.shared.streaming import Reporter
from mapreduce_kafka.shared.streaming_steps import Stage, StreamingStep, streaming_code
from mapreduce_kafka.shared.user_code import reraise_unless_users

# mrjob's step classes that run something other than a streaming step, and why not here
_OTHER_STEPS = {
    "JarStep": "runs a Java jar on Hadoop",
    "SparkStep": "runs on Spark",
    "SparkJarStep": "runs a jar on Spark",
    "SparkScriptStep": "runs a script on Spark",
}


def job_class_in(module: ModuleType) -> type | None:
    """The MRJob subclass a module defines (None when it defines none, or mrjob was not
    imported by it)."""
    job_module = sys.modules.get("mrjob.job")
    if job_module is None:
        return None
    base = job_module.MRJob
    found = [value for value in vars(module).values()
             if isinstance(value, type) and issubclass(value, base) and value is not base
             and value.__module__ == module.__name__]
    if len(found) > 1:
        names = ", ".join(sorted(cls.__name__ for cls in found))
        raise PipelineDefinitionError(f"{module.__file__} defines several MRJob classes "
                                      f"({names}): keep one job per file")
    return found[0] if found else None


def mrjob_code(job_class: type, args: list[str], name: str,
               module: ModuleType) -> PipelineCode:
    """The pipeline an MRJob class makes with these arguments (those after `--`)."""
    where = f"mrjob job {job_class.__name__} ({name})"
    try:
        job = job_class(args=list(args))
    except ValueError as exc:  # mrjob's argument parser, told to raise instead of exiting
        raise PipelineDefinitionError(f"{where}: its arguments {args}: {exc}") from exc
    except BaseException as exc:  # the job's own __init__ or configure_args
        reraise_unless_users(exc)
        raise PipelineDefinitionError(f"{where} failed to start: "
                                      f"{type(exc).__name__}: {exc}") from exc
    refused = refusal(job)
    if refused:
        raise PipelineDefinitionError(f"{where}: {refused}")
    try:
        mr_steps = job.steps()
    except Exception as exc:  # the job's own code, or MRStep refusing its arguments
        raise PipelineDefinitionError(f"{where}: steps() raised {type(exc).__name__}: "
                                      f"{exc}") from exc
    steps = streaming_steps(mr_steps, bool(job.sort_values()), where)
    files, task_args = shipped_files(job, where)
    step_conf = tuple(dict(getattr(step, "_steps", {}).get("jobconf") or {})
                      for step in mr_steps)
    script = MRJobScript(job_class, tuple(task_args), dict(job.jobconf()), step_conf)
    return replace(streaming_code(name, steps, script, files or None), modules=(module,))


def refusal(job: Any) -> str | None:
    """What in the job this framework cannot run, as one sentence; None if nothing."""
    checks = (
        (job.hadoop_input_format(), "HADOOP_INPUT_FORMAT (a Hadoop input format class)"),
        (job.hadoop_output_format(), "HADOOP_OUTPUT_FORMAT (a Hadoop output format class)"),
        (job.partitioner(), "PARTITIONER (a Hadoop partitioner class)"),
        (job.libjars(), "LIBJARS (jars for Hadoop)"),
        (job.archives(), "ARCHIVES (archives unpacked on Hadoop's nodes)"),
        (job.dirs(), "DIRS (directories archived for Hadoop's nodes)"),
    )
    for value, feature in checks:
        if value:
            return f"{feature} is not supported: the job runs on Kafka, not Hadoop"
    if job.options.args:
        return (f"input paths after -- ({' '.join(job.options.args)}): give the input "
                "with --input")
    for action in job.arg_parser._actions:
        dest = action.dest
        if dest in ("args", "help") or dest in job._passthru_arg_dests \
                or dest in job._file_arg_dests:
            continue
        if getattr(job.options, dest, None) != job.arg_parser.get_default(dest):
            switch = "/".join(action.option_strings) or dest
            return (f"mrjob's option {switch} is for mrjob's own runners (local, Hadoop, "
                    "EMR, Dataproc, Spark): not supported here")
    return None


def streaming_steps(mr_steps: list[Any], sort_values: bool, where: str) -> list[StreamingStep]:
    """mrjob's steps as streaming steps, each checked."""
    if not mr_steps:
        raise PipelineDefinitionError(f"{where} defines no steps: give it a mapper, a "
                                      "reducer, or steps()")
    steps = []
    for index, step in enumerate(mr_steps):
        kind = type(step).__name__
        if kind in _OTHER_STEPS:
            raise PipelineDefinitionError(f"{where}: step {index + 1} is a {kind}, which "
                                          f"{_OTHER_STEPS[kind]}: not supported here")
        if kind != "MRStep":
            raise PipelineDefinitionError(f"{where}: step {index + 1} is a {kind}, not an "
                                          "MRStep")
        description = step.description(index)
        if step["mapper_raw"] and index > 0:
            raise PipelineDefinitionError(f"{where}: step {index + 1} has mapper_raw, which "
                                          "reads input files: the first step only")
        reducer = _stage(description.get("reducer"))
        steps.append(StreamingStep(
            mapper=_stage(description.get("mapper")),
            combiner=_stage(description.get("combiner")),
            reducer=reducer,
            sort_values=sort_values,
            reducer_hooks=reducer is not None and reducer.command is None and bool(
                step["reducer_init"] or step["reducer_final"])))
    return steps


def _stage(description: dict[str, Any] | None) -> Stage | None:
    """A substep of mrjob's step description as a stage."""
    if description is None:
        return None
    if description["type"] == "command":
        return Stage(command=description["command"])
    return Stage(pre_filter=description.get("pre_filter"))


def shipped_files(job: Any, where: str) -> tuple[dict[str, bytes], list[str]]:
    """The files the job ships (FILES, and each `add_file_arg` given) by the name a task
    opens them with, and the arguments a task is built with (a file argument's value
    replaced by that name, as mrjob's runners do)."""
    files: dict[str, bytes] = {}

    def ship(path: str, name: str | None) -> str:
        name = name or os.path.basename(path)
        try:
            data = Path(os.path.expanduser(path)).read_bytes()
        except OSError as exc:
            raise PipelineDefinitionError(f"{where}: cannot read its file {path}: "
                                          f"{exc.strerror or exc}") from exc
        if files.get(name, data) != data:
            raise PipelineDefinitionError(f"{where}: two different files are named {name!r} "
                                          "in its working directory")
        files[name] = data
        return name

    for entry in job.files():
        path, _, name = entry.partition("#")
        ship(path, name or None)
    task_args: list[str] = []
    for arg in job._non_option_kwargs()["extra_args"]:
        if isinstance(arg, dict):  # a file argument: {"type", "path", "name"}
            task_args.append(ship(arg["path"], arg.get("name")))
        else:
            task_args.append(arg)
    return files, task_args


@functools.lru_cache(maxsize=256)
def env_names(name: str) -> tuple[str, ...]:
    """The environment variables a job configuration name is read from: its own and those
    of the other Hadoop versions' names for it (mrjob's table), dots as underscores."""
    from mrjob.compat import translate_jobconf_for_all_versions

    return tuple(variant.replace(".", "_")
                 for variant in translate_jobconf_for_all_versions(name))


def task_conf(role: str, task: task_context.Task | None, directory: Path | None,
              length: int | None) -> dict[str, str]:
    """The job configuration mrjob's local runners give a task, as far as it is known
    here: the job, whether the task maps, the map task's input file and piece, the
    working directory and the files in it."""
    conf = {"mapreduce.task.ismap": "true" if role == "mapper" else "false"}
    if task is not None and task.job:
        conf["mapreduce.job.id"] = task.job
    if directory is not None:
        conf["mapreduce.job.local.dir"] = str(directory)
        conf["mapreduce.job.cache.local.files"] = ",".join(
            str(directory / name) for name in sorted(task.files.contents)) if (
                task is not None and task.files) else ""
    if role == "mapper" and task is not None:
        where = task.input_context()
        if where.path is not None:
            conf["mapreduce.map.input.file"] = "file://" + os.path.abspath(where.path)
            conf["mapreduce.map.input.start"] = str(where.offset or 0)
            if length is not None:
                conf["mapreduce.map.input.length"] = str(length)
    return conf


@dataclass
class MRJobScript:
    """The job's own code on a worker, as streaming_steps.Script. Pickled with the spec
    (the class by value, with its module); the job object a reducer keeps is built on
    the worker, one per copy of the spec (a reduce task's private copy has its own)."""

    job_class: type
    args: tuple[str, ...]
    jobconf: dict[str, Any]
    step_jobconf: tuple[dict[str, Any], ...]
    _reducer_job: Any = field(default=None, repr=False)
    _reducing_steps: dict[int, tuple[Any, Any, Any]] = field(default_factory=dict, repr=False)
    # a reduce task's environment, the same for every key of a step: made once per step
    _reducer_env: dict[int, dict[str, str]] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:  # a job object is the worker's own
        return {**self.__dict__, "_reducer_job": None, "_reducing_steps": {},
                "_reducer_env": {}}

    def fresh(self) -> Any:
        """A new job object, as a task starts with; its stderr is the framework's."""
        job = self.job_class(args=list(self.args))
        job._stderr = Reporter()
        return job

    @contextmanager
    def task(self, role: str, step: int, length: int | None = None) -> Iterator[None]:
        """A task's environment: its job configuration as environment variables (what
        `jobconf_from_env` reads), in the shipped files' directory. `length`: a map
        task's input bytes."""
        task = task_context.current()
        directory = task.files.directory() if task is not None and task.files else None
        env = self._reducer_env.get(step) if role != "mapper" else None
        if env is None:
            conf = {**self.jobconf, **self.step_jobconf[step],
                    **task_conf(role, task, directory, length)}
            env = {variable: str(value) for name, value in conf.items()
                   for variable in env_names(name)}
            if role != "mapper":
                self._reducer_env[step] = env
        saved = {name: os.environ.get(name) for name in env}
        cwd = os.getcwd() if directory is not None else None
        os.environ.update(env)
        try:
            if directory is not None:
                os.chdir(directory)
            yield
        finally:
            if cwd is not None:
                os.chdir(cwd)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def map(self, step: int, lines: list[bytes]) -> list[bytes]:
        job = self.fresh()
        read, write = job.pick_protocols(step, "mapper")
        pairs: Iterator[Any] = (read(line) for line in lines)
        if job.steps()[step]["mapper_raw"]:
            where = task_context.input_context()
            if where.path is None:
                raise ValueError("mapper_raw reads whole input files: give files as the "
                                 "input, not a topic")
            if where.offset:
                return []  # the file's first frame maps the whole file
            job.options.args = [where.path, "file://" + os.path.abspath(where.path)]
            pairs = iter(())
        return [write(key, value) for key, value in job.map_pairs(pairs, step)]

    def combine(self, step: int, lines: list[bytes]) -> list[bytes]:
        job = self.fresh()
        read, write = job.pick_protocols(step, "combiner")
        return [write(key, value)
                for key, value in job.combine_pairs((read(line) for line in lines), step)]

    def reduce_task(self, step: int, lines: list[bytes]) -> list[bytes]:
        job = self.fresh()
        read, write = job.pick_protocols(step, "reducer")
        return [write(key, value)
                for key, value in job.reduce_pairs((read(line) for line in lines), step)]

    def reduce_key(self, step: int, lines: list[bytes]) -> list[bytes]:
        read, write, reducer = self._reducing(step)
        out = []
        for key, group in itertools.groupby(map(read, lines), key=lambda pair: pair[0]):
            for k, v in reducer(key, (value for _, value in group)) or ():
                out.append(write(k, v))
        return out

    def reducer_init(self, step: int) -> list[bytes]:
        self._reducer_job, self._reducing_steps = None, {}  # a reduce task: a new job object
        return self._hook(step, "reducer_init")

    def reducer_final(self, step: int) -> list[bytes]:
        return self._hook(step, "reducer_final")

    def _hook(self, step: int, name: str) -> list[bytes]:
        job = self._reducer()
        hook = job.steps()[step][name]
        if hook is None:
            return []
        _, write = job.pick_protocols(step, "reducer")
        return [write(key, value) for key, value in hook() or ()]

    def _reducer(self) -> Any:
        if self._reducer_job is None:
            self._reducer_job = self.fresh()
        return self._reducer_job

    def _reducing(self, step: int) -> tuple[Any, Any, Any]:
        """The reducer job object's protocols and reducer for a step, found once per job
        object (mrjob builds its steps again on each call: a cost per key)."""
        found = self._reducing_steps.get(step)
        if found is None:
            job = self._reducer()
            read, write = job.pick_protocols(step, "reducer")
            found = self._reducing_steps[step] = (read, write, job.steps()[step]["reducer"])
        return found
