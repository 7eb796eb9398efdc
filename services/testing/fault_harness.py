"""Fault injection: run a job on the real broker and Redis with worker processes this
harness controls, inject faults from a seeded plan, and compare the output with the
sequential run. Every trial records its seed and plan, so a failure replays exactly:
the same seed gives the same faults at the same times against the same roles.

Fault kinds
- kill:   SIGKILL a random worker of a role, replace it after `pause` seconds;
- stop:   SIGSTOP a worker for longer than the session timeout (it is evicted, its
          partitions move), then SIGCONT it: a zombie whose late writes must be harmless;
- broker: SIGKILL the Kafka broker, restart it after `pause` seconds;
- redis:  SIGKILL Redis, restart it after `pause` seconds;
- source: SIGKILL the submitting process mid-stream: the job must fail, never finalize.

On a replicated cluster (LocalCluster(brokers=3)), the kinds of replicated_faults.py
instead of broker and redis: the leader of the job's partitions, the active controller or
the Redis primary killed and left down until the trial ends, or a rolling restart of every
broker; at most one of the broker kinds per trial, so that a quorum always remains.

Each trial runs one pipeline shape (Shape): word count, or the shapes of shapes/ that
reach paths word count does not (several chunks per shuffle partition from a set-iterating
mapper, dict and list values). Each shape has its own input and its own fault-free
baseline, against which its faults are timed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mapreduce_kafka.examples import WORDCOUNT
from mapreduce_kafka.services.client import reference, source
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.services.localcluster.processes import read_pid
from mapreduce_kafka.services.testing import replicated_faults, shapes
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.nodes import wait_exited
from mapreduce_kafka.shared import inputs, output
from mapreduce_kafka.shared.errors import PipelineFailed
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.spec import load_module, spec_from_module
from mapreduce_kafka.shared.store import Store

KINDS = ("kill", "stop", "broker", "redis", "source")
REPLICATED_KINDS = ("kill", "stop", *replicated_faults.KINDS)
ROLES = tuple(supervisor.DEFAULT_COUNTS)


@dataclass(frozen=True)
class Shape:
    """A pipeline and its input: what a trial runs."""

    name: str
    pipeline: Path
    inputs: tuple[Path, ...]


# The shapes and the share of the word count corpus each one reads (the set-based mapper
# without a combiner ships several times its input through the shuffle).
SHAPES = {"wordcount": (WORDCOUNT, 1.0),
          "distinct_prefixes": (shapes.DISTINCT_PREFIXES, 0.15),
          "nested_values": (shapes.NESTED_VALUES, 0.4),
          "three_steps": (shapes.THREE_STEPS, 0.3),
          "hooks": (shapes.HOOKS, 0.3)}


def shapes_for(base: Path, megabytes: float, names: tuple[str, ...] = tuple(SHAPES),
               ) -> dict[str, Shape]:
    """Each named shape with a corpus of its share of `megabytes` under `base`."""
    return {name: Shape(name, SHAPES[name][0],
                        tuple(make_corpus(base / name, megabytes * SHAPES[name][1])))
            for name in names}


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the input was submitted
    kind: str
    role: str = ""
    pause: float = 0.0  # down time before restart (kill/broker/redis) or extra stop time


SOURCE_SHARE = 0.1  # of trials whose fault is the source dying (it ends the job at once)


def plan(seed: int, faults: int, horizon: float, kinds: tuple[str, ...] = KINDS) -> list[Fault]:
    """A random plan: `faults` faults at random moments in [0.5, horizon] seconds, or (in
    a SOURCE_SHARE of trials, when allowed) the source dying mid-stream alone."""
    rng = random.Random(seed)
    if "source" in kinds and rng.random() < SOURCE_SHARE:
        return [Fault(0.0, "source")]
    kinds = tuple(k for k in kinds if k != "source")
    chosen = _one_node_down_at_a_time([rng.choice(kinds) for _ in range(faults)])
    return sorted(
        (Fault(round(rng.uniform(0.5, horizon), 2), kind,
               rng.choice(ROLES) if kind in ("kill", "stop") else "",
               round(rng.uniform(0.0, 3.0), 2))
         for kind in chosen), key=lambda f: f.at)


def _one_node_down_at_a_time(chosen: list[str]) -> list[str]:
    """A second broker fault (or a second Redis primary kill) in one trial becomes a worker
    kill: two brokers of three down stop every write (min.insync.replicas=2), two Redis
    nodes of three leave no replica to wait for. That is a quorum lost, not a fault a
    replicated cluster is built to survive."""
    seen: set[str] = set()
    kept = []
    for kind in chosen:
        group = ("broker" if kind in replicated_faults.BROKER_KINDS
                 else "primary" if kind == "primary" else kind)
        if group in ("broker", "primary") and group in seen:
            kind = "kill"
        seen.add(group)
        kept.append(kind)
    return kept


@dataclass
class TrialResult:
    seed: int
    plan: list[dict[str, Any]]
    shape: str = "wordcount"
    injected: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # job ended before them
    state: str = ""
    expected_state: str = "done"
    duration_s: float = 0.0  # the whole trial, restoring the pool included
    job_s: float = 0.0  # from submission to the end: the clock the faults' `at` runs on
    keys: int = 0
    missing: int = 0
    duplicated: int = 0
    different: int = 0
    unexpected: int = 0
    examples: dict[str, list[Any]] = field(default_factory=dict)  # to diagnose a mismatch
    error: str = ""

    @property
    def ok(self) -> bool:
        return (self.state == self.expected_state and not self.error and not
                (self.missing or self.duplicated or self.different or self.unexpected))


class Harness:
    def __init__(self, settings: Settings, cluster: LocalCluster | None, workdir: Path,
                 shapes: dict[str, Shape], log: Any = print) -> None:
        self.settings = settings
        self.cluster = cluster
        self.workdir = workdir
        self.shapes = shapes
        self.log = log
        self.store = Store(settings.redis_url)
        self.pipeline_id = ""  # the running trial's job
        self._expected: dict[str, list[tuple[Any, Any]]] = {}

    def expected(self, shape: Shape) -> list[tuple[Any, Any]]:
        """The sequential result of a shape, computed once."""
        if shape.name not in self._expected:
            spec = spec_from_module(load_module(shape.pipeline), pipeline_id="oracle",
                                    fmt="text", partitions=4, output_dir="-",
                                    source_partitions=4, where=shape.pipeline.name)
            self._expected[shape.name] = reference.run_sequential(
                spec, inputs.input_files(list(shape.inputs)))
        return self._expected[shape.name]

    def baseline(self, shape: Shape | None = None, runs: int = 2) -> float:
        """Seconds from submission to the end of the fastest of `runs` fault-free jobs of a
        shape (the first may be cold). Faults are planned against it: fixed seconds stop
        landing as the job gets faster. Raises if a fault-free job is not exact."""
        shape = shape or next(iter(self.shapes.values()))
        durations = []
        for seed in range(1, runs + 1):
            result = self.run(seed=-seed, faults=[], shape=shape)
            if not result.ok:
                raise AssertionError(f"a fault-free run is not exact: {result}")
            durations.append(result.job_s)
        return min(durations)

    # ---- one trial -------------------------------------------------------------------

    def run(self, seed: int, faults: list[Fault], timeout: float = 300,
            shape: Shape | None = None) -> TrialResult:
        shape = shape or next(iter(self.shapes.values()))
        result = TrialResult(seed, [asdict(f) for f in faults], shape.name)
        self.rng = random.Random(seed)  # which worker of a role is hit: replayable too
        supervisor.scale(self.settings, supervisor.DEFAULT_COUNTS)
        out = self.workdir / f"trial-{seed}-{time.monotonic_ns()}"
        started = time.monotonic()
        try:
            if faults and faults[0].kind == "source":
                result.expected_state = "failed"
                self._dead_source_trial(result, out, shape)
            else:
                self._trial(result, faults, out, timeout, shape)
        except Exception as exc:  # a trial that breaks is a failed trial, with its reason
            result.error = f"{type(exc).__name__}: {exc}"
        result.duration_s = round(time.monotonic() - started, 2)
        self._restore()
        self.log(f"trial seed={seed} shape={shape.name} state={result.state} ok={result.ok} "
                 f"{result.duration_s}s faults={[f['kind'] for f in result.injected]} "
                 f"{result.error}")
        return result

    def _trial(self, result: TrialResult, faults: list[Fault], out: Path, timeout: float,
               shape: Shape) -> None:
        job = source.Job(shape.pipeline, list(shape.inputs), out, partitions=4)
        source.prepare(job, self.settings)
        self.pipeline_id = job.pipeline_id  # the replicated faults aim at its partitions
        source.submit(job, self.settings)
        submitted = time.monotonic()
        done = threading.Event()
        injector = threading.Thread(target=self._inject, args=(faults, result, done),
                                    daemon=True)
        injector.start()
        try:
            status = source.wait(self.settings, job.pipeline_id, lambda s: None,
                                 timeout=timeout)
            result.state = status["state"]
        except PipelineFailed as exc:
            # an injector's own failure (recorded first) is the reason worth reading
            result.state = "failed"
            result.error = "; ".join(e for e in (result.error, str(exc)) if e)
        finally:
            result.job_s = round(time.monotonic() - submitted, 2)
            done.set()
            injector.join()
        if result.state == "done":
            comparison = reference.compare(self.expected(shape), output.read_output(out))
            result.keys = comparison.actual_keys
            result.missing = len(comparison.missing)
            result.duplicated = len(comparison.duplicated)
            result.different = len(comparison.different)
            result.unexpected = len(comparison.unexpected)
            result.examples = {name: values[:5] for name, values in (
                ("missing", comparison.missing), ("duplicated", comparison.duplicated),
                ("different", comparison.different), ("unexpected", comparison.unexpected),
            ) if values}

    def _dead_source_trial(self, result: TrialResult, out: Path, shape: Shape) -> None:
        pipeline_id = f"fault-source-{result.seed}-{os.getpid()}-{time.monotonic_ns()}"
        env = {**os.environ, **self.settings.env(), "MAPREDUCE_SOURCE_TTL_S": "3"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "mapreduce_kafka.services.cli", "submit", str(shape.pipeline),
             *[a for p in shape.inputs for a in ("-i", str(p))], "-o", str(out),
             "--id", pipeline_id], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not self.store.pipeline(pipeline_id) and time.monotonic() < deadline:
            time.sleep(0.01)  # watching another process: poll for its first write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        result.injected.append(asdict(Fault(0.0, "source")))
        if "frames" in self.store.pipeline(pipeline_id):
            result.error = "the source finished before it was killed: the trial proves nothing"
            return
        try:
            source.wait(self.settings, pipeline_id, lambda s: None, timeout=120)
            result.state = "done"
        except PipelineFailed as exc:
            result.state = self.store.pipeline(pipeline_id).get("state", "")
            if "source stopped mid-stream" not in str(exc):
                result.error = str(exc)
        if output.is_complete(out):
            result.error = "a job whose source died was finalized"

    # ---- faults ----------------------------------------------------------------------

    def _inject(self, faults: list[Fault], result: TrialResult, done: threading.Event) -> None:
        start = time.monotonic()
        for fault in faults:
            if done.wait(max(0.0, start + fault.at - time.monotonic())):
                result.skipped.extend(asdict(f) for f in faults[faults.index(fault):])
                return
            # when it hit, not when its pause and restart were over: what a test compares
            # with how long the job runs
            landed = round(time.monotonic() - start, 2)
            try:
                injected = self._apply(fault, done)
            except Exception as exc:  # record it: an injector that failed proves nothing
                result.error = f"injecting {fault}: {type(exc).__name__}: {exc}"
                return
            if injected:
                result.injected.append({**asdict(fault), "at": landed})

    def _apply(self, fault: Fault, done: threading.Event) -> bool:
        if fault.kind == "kill":
            worker = self._signal(fault.role, signal.SIGKILL)
            if worker is None:
                return False
            # As with the broker below: a worker with threads and memory to free takes a
            # moment to die, and scaling before it has finds it running and starts none
            # (a sink killed so stayed down, and its job with it).
            if not wait_exited(worker.pid, 30):
                raise RuntimeError(f"{fault.role} pid {worker.pid} still alive 30 s after "
                                   "SIGKILL")
            done.wait(fault.pause)
            supervisor.scale(self.settings, supervisor.DEFAULT_COUNTS)
            return True
        if fault.kind == "stop":
            worker = self._signal(fault.role, signal.SIGSTOP)
            if worker is None:
                return False
            # Past the session timeout: the group evicts it and its partitions move.
            time.sleep(self.settings.session_timeout_ms / 1000 + 2 + fault.pause)
            os.kill(worker.pid, signal.SIGCONT)
            self.log(f"  SIGCONT {fault.role} pid {worker.pid}")
            return True
        if fault.kind in replicated_faults.FAULTS:
            if self.cluster is None or not self.cluster.replicated:
                return False
            self.log("  " + replicated_faults.FAULTS[fault.kind](
                self.cluster, self.settings, self.pipeline_id))
            return True
        if fault.kind in ("broker", "redis"):
            if self.cluster is None:
                return False
            name = "kafka" if fault.kind == "broker" else "redis"
            pid = read_pid(self.cluster.root / f"{name}.pid")
            if pid is None:
                return False
            os.kill(pid, signal.SIGKILL)
            self.log(f"  SIGKILL {name} pid {pid}")
            # A JVM takes a moment to die: restarting before it has would find it "running"
            # and not start it (seen once in 30 trials: the broker then stayed down).
            if not wait_exited(pid, 30):
                raise RuntimeError(f"{name} pid {pid} still alive 30 s after SIGKILL")
            time.sleep(fault.pause)
            self.cluster.start()
            self.log(f"  {name} restarted")
            return True
        raise ValueError(f"unknown fault kind {fault.kind!r}")

    def _signal(self, role: str, sig: signal.Signals) -> supervisor.WorkerProcess | None:
        """Send `sig` to a random live worker of `role`; None if there is none."""
        worker = self._pick(role)
        if worker is not None:
            os.kill(worker.pid, sig)
            self.log(f"  {sig.name} {role} pid {worker.pid}")
        return worker

    def _pick(self, role: str) -> supervisor.WorkerProcess | None:
        candidates = [w for w in supervisor.running(self.settings.home) if w.role == role]
        return self.rng.choice(sorted(candidates, key=lambda w: w.index)) if candidates else None

    def _restore(self) -> None:
        """Leave the system as the next trial expects it: cluster up, every worker running
        (none stopped), pool at its default size."""
        if self.cluster is not None and self.cluster.replicated:
            replicated_faults.restore(self.cluster)
        elif self.cluster is not None:
            self.cluster.start()
        for worker in supervisor.running(self.settings.home):
            try:
                os.kill(worker.pid, signal.SIGCONT)
            except ProcessLookupError:
                continue
        supervisor.scale(self.settings, supervisor.DEFAULT_COUNTS)
