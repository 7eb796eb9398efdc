"""The crash-point suite: for every declared crash point (shared/crashpoints.py), jobs of
several shapes run at once while the worker that reaches the point first for each of
them dies there (SIGKILL) and is restarted, as a supervisor would. Every job must end with
the exact sequential result, and its ending must be complete (topics deleted, keys
dropped). At the source's points, before the stream is complete, the job must end failed
instead, and never be finalized. A source that dies after its end markers are durable but
before it records its stream complete leaves a race with the dead-source watchdog: the job
ends done with the exact result if it is finalized first, else failed and not finalized.

The shapes: word count (map_chunk and a combiner), a set-based mapper without a combiner
whose frames make several chunks per shuffle partition, one with dict and list values,
array keys and a combiner, a map-only pipeline, and three steps (a word count, a map-only
step, a re-keying reducer and a combiner that yield), and one with hooks per task, a
partitioner and sorted values, whose reducer_final output is right only if every reduce
task runs whole, and an mrjob job of two steps with every hook, its own protocols, a
shipped file and counters: each runs at the points its path reaches (NOT_AT and
DEFAULT_STRATEGY_ONLY say where a shape adds nothing). The map-only, three-step, hooks and
mrjob shapes count (increment_counter) in mappers, a map-only step, reducers and a
reducer_final: their counters must be exact too."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from mapreduce_kafka.services.client import reference, source
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing import shapes
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import crashpoints, output, topics
from mapreduce_kafka.shared.errors import PipelineFailed
from mapreduce_kafka.shared.resubscribe_strategies import DEFAULT_STRATEGY
from mapreduce_kafka.shared.store import Store
from tests import REPO
from tests.integration import jobs

pytestmark = [pytest.mark.integration, pytest.mark.crashpoints]

SHAPES = {
    "wordcount": (jobs.WORDCOUNT, 2.0, 4),
    "distinct_prefixes": (shapes.DISTINCT_PREFIXES, 2.5, 2),
    "nested_values": (shapes.NESTED_VALUES, 1.0, 2),
    "map_only": (shapes.MAP_ONLY, 1.0, 3),
    "three_steps": (shapes.THREE_STEPS, 1.0, 2),
    "hooks": (shapes.HOOKS, 1.0, 2),
    "mrjob": (shapes.MRJOB, 1.0, 2),
}
# The paths each shape's jobs take, where a point is not on every job's path: through the
# shuffle and the reducers, a map-only step's hand-off to the sink, a sink's hand-off from
# one step to the next.
PATHS = {"reducing": ("shuffler.", "reducer.", "mapper.after_map_mark",
                      "mapper.after_shuffle_handoff"),
         "map_only": ("mapper.after_part_mark", "mapper.after_output_handoff"),
         "steps": ("sink.after_step_",)}
SHAPE_PATHS = {"wordcount": {"reducing"}, "distinct_prefixes": {"reducing"},
               "nested_values": {"reducing"}, "map_only": {"map_only"},
               "three_steps": {"reducing", "map_only", "steps"}, "hooks": {"reducing"},
               "mrjob": {"reducing", "steps"}}


# Where a shape proves nothing the others do not: the hooks shape's mapper hooks give
# output that is a frame's like any other (the mrjob shape's map tasks have hooks too); and
# under the strategies that are not the default, which change only how mappers and
# reducers follow pipelines, the shapes with hooks add nothing to the other four.
NOT_AT = {"hooks": ("mapper.",)}
DEFAULT_STRATEGY_ONLY = {"hooks", "mrjob"}


def shapes_reaching(point: str, strategy: str = DEFAULT_STRATEGY
                    ) -> dict[str, tuple[Path, float, int]]:
    """The shapes whose jobs pass the point (and run there under the strategy)."""
    return {name: shape for name, shape in SHAPES.items()
            if all(path in SHAPE_PATHS[name] for path, prefixes in PATHS.items()
                   if point.startswith(prefixes))
            and not point.startswith(NOT_AT.get(name, ()))
            and (strategy == DEFAULT_STRATEGY or name not in DEFAULT_STRATEGY_ONLY)}
# Written out, not derived from POINTS: a new source point must be placed on one side of
# the end markers by hand, or test_the_suite_arms_every_declared_point fails.
SOURCE_POINTS = ["source.after_announce", "source.mid_stream", "source.before_end_markers"]
SOURCE_POINTS_STREAM_ENDED = ["source.after_end_markers"]
WORKER_POINTS = [p for p in crashpoints.POINTS if not p.startswith("source.")]
# The strategy (how mappers and reducers follow pipelines) changes only their points:
# those run again under the strategies that are not the default.
STRATEGY_POINTS = [p for p in WORKER_POINTS if p.startswith(("mapper.", "reducer."))]
OTHER_STRATEGIES = [s for s in ("reconnect", "consumer-protocol", "group-per-pipeline")
                    if s != DEFAULT_STRATEGY]
JOB_TIMEOUT_S = 180


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every worker point under the default strategy; the mapper's and the reducer's under
    the others too. The strategy is a module-scoped parameter of its own, so the pool is
    restarted once per strategy, not once per point."""
    if "armed_pool" not in metafunc.fixturenames:
        return
    strategies = (OTHER_STRATEGIES if metafunc.function
                  is test_under_another_strategy_a_worker_dying_at_the_point_loses_nothing
                  else [DEFAULT_STRATEGY])
    metafunc.parametrize("armed_pool", strategies, indirect=True, scope="module")


@pytest.fixture(scope="module")
def armed_pool(request, pool, tmp_path_factory) -> Iterator[tuple[Path, object]]:
    """The worker pool restarted with the strategy under test and an arming file (empty:
    nothing armed), and a keeper that restarts dead workers every 0.3 s, as systemd or
    Kubernetes would."""
    directory = tmp_path_factory.mktemp("crashpoints")
    arming = directory / "armed"
    pool = pool.with_(resubscribe=request.param)
    supervisor.stop_all(pool.home)
    os.environ[crashpoints.ENV_FILE] = str(arming)  # for the workers started from now on
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(0.3):
            supervisor.scale(pool, supervisor.DEFAULT_COUNTS)

    keeper = threading.Thread(target=keep, daemon=True)
    try:
        supervisor.scale(pool, supervisor.DEFAULT_COUNTS)
        keeper.start()
        yield arming, pool
    finally:
        stop.set()
        keeper.join()
        arming.unlink(missing_ok=True)
        del os.environ[crashpoints.ENV_FILE]
        supervisor.stop_all(pool.home)
        supervisor.scale(pool.with_(resubscribe=DEFAULT_STRATEGY), supervisor.DEFAULT_COUNTS)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, list[Path]]:
    base = tmp_path_factory.mktemp("crashpoint-inputs")
    return {name: make_corpus(base / name, mb, files=files)
            for name, (_, mb, files) in SHAPES.items()}


def test_the_suite_arms_every_declared_point():
    declared_source_points = {p for p in crashpoints.POINTS if p.startswith("source.")}
    armed = SOURCE_POINTS + SOURCE_POINTS_STREAM_ENDED
    assert len(set(armed)) == len(armed), "a source point is armed by two tests"
    assert set(armed) == declared_source_points, (
        "a source point is not placed before or after the end markers in this suite")
    assert not {p.split(".")[0] for p in WORKER_POINTS} - {
        "dispatcher", "mapper", "shuffler", "reducer", "sink", "lifecycle"}
    assert set(OTHER_STRATEGIES) | {DEFAULT_STRATEGY} >= {"reconnect", "group-per-pipeline"}
    assert not [p for p in WORKER_POINTS if not shapes_reaching(p)], "a point no shape reaches"
    assert set(SHAPE_PATHS) == set(SHAPES)
    assert shapes_reaching("mapper.after_part_mark").keys() == {"map_only", "three_steps"}
    assert shapes_reaching("sink.after_step_mark").keys() == {"three_steps", "mrjob"}
    assert "map_only" not in shapes_reaching("reducer.after_reduce_mark")
    assert shapes_reaching("sink.after_claim").keys() == SHAPES.keys()
    assert "hooks" not in shapes_reaching("mapper.batch_durable")
    assert "mrjob" in shapes_reaching("mapper.batch_durable")
    assert not DEFAULT_STRATEGY_ONLY & shapes_reaching("reducer.batch_durable",
                                                       OTHER_STRATEGIES[0]).keys()


@pytest.mark.parametrize("point", WORKER_POINTS)
def test_a_worker_dying_at_the_point_loses_and_duplicates_nothing(armed_pool, inputs,
                                                                  tmp_path, point):
    run_with_point_armed(armed_pool, inputs, tmp_path, point)


@pytest.mark.parametrize("point", STRATEGY_POINTS)
def test_under_another_strategy_a_worker_dying_at_the_point_loses_nothing(armed_pool, inputs,
                                                                          tmp_path, point):
    run_with_point_armed(armed_pool, inputs, tmp_path, point)


def run_with_point_armed(armed_pool, inputs, tmp_path: Path, point: str) -> None:
    arming, settings = armed_pool
    try:
        if point in DATA_BATCH_POINTS:
            submitted = submitted_with_data_batches_armed(settings, arming, inputs, tmp_path,
                                                          point)
        else:
            arming.write_text(f"{point} crash\n")
            submitted = {name: jobs.submit(settings, pipeline, inputs[name], tmp_path / name)
                         for name, (pipeline, _, _)
                         in shapes_reaching(point, settings.resubscribe).items()}
        for name, job in submitted.items():
            status = jobs.wait(settings, job, timeout=JOB_TIMEOUT_S)
            assert status["state"] == "done", (name, status)
            jobs.assert_matches_sequential(job)
            jobs.assert_counters_exact(settings, job)
        # the dispatchers clean up after the job is done: its points come after the wait
        for job in submitted.values():
            assert_cleaned_up(settings, job.pipeline_id)
    finally:
        arming.write_text("")
    not_fired = [name for name, job in submitted.items()
                 if not crashpoints.fired(arming.parent, point, job.pipeline_id)]
    assert not not_fired, f"{point} was never reached by {not_fired}: the test proved nothing"


# A mapper's or reducer's first batch of a pipeline is usually the markers that open its
# partitions (written before READY; a new consumer's first batch is one message): armed
# from the start, these points fired there, with no data produced, and proved nothing
# about a batch of data. They are armed once those markers are committed instead.
DATA_BATCH_POINTS = {"mapper.batch_produced": "mapper", "mapper.batch_durable": "mapper",
                     "reducer.batch_produced": "reducer", "reducer.batch_durable": "reducer"}


def submitted_with_data_batches_armed(settings, arming: Path, inputs, tmp_path: Path,
                                      point: str) -> dict[str, source.Job]:
    """The jobs, each source paused halfway until the point is armed: by then the
    role's group has committed every partition past its opening marker, and the rest of
    the input (for a reducer: all of its input) is still to come."""
    role = DATA_BATCH_POINTS[point]
    with contextlib.ExitStack() as paused:
        submitted = {name: paused.enter_context(jobs.paused_mid_stream(
            settings, pipeline, inputs[name], tmp_path / name))
            for name, (pipeline, _, _)
            in shapes_reaching(point, settings.resubscribe).items()}
        for job in submitted.values():
            wait_for(lambda job=job: markers_committed(settings, role, job), 60,
                     f"the {role}s' commit of {job.pipeline_id}'s opening markers")
        arming.write_text(f"{point} crash\n")
    return submitted


def markers_committed(settings, role: str, job: source.Job) -> bool:
    """Whether the role's consumer group has committed every partition of the job's topic
    past offset 0, the marker that opened it (see services/runtime/pipeline_worker.py for
    the groups' names)."""
    pid, topic = job.pipeline_id, (topics.map_topic(job.pipeline_id) if role == "mapper"
                                   else topics.reduce_topic(job.pipeline_id))
    group = (f"{role}s.{pid}" if settings.resubscribe == "group-per-pipeline"
             else f"{role}s-{settings.resubscribe}")
    consumer = Consumer(settings.consumer_config(group))
    try:
        assert job.spec is not None
        committed = consumer.committed([TopicPartition(topic, p)
                                        for p in range(job.spec.partitions)], timeout=10)
    finally:
        consumer.close()
    return all(tp.offset >= 1 for tp in committed)


def assert_cleaned_up(settings, pipeline_id: str) -> None:
    """The ending is complete: topics deleted, coordination keys dropped, off every list
    of work to do (a crash mid-ending is finished by the dispatchers)."""
    admin = AdminClient(settings.admin_config())
    store = Store(settings.redis_url)
    names = {topics.map_topic(pipeline_id), topics.reduce_topic(pipeline_id)}
    wait_for(lambda: not names & set(admin.list_topics(timeout=10).topics)
             and not store.redis.zscore("mr:finishing", pipeline_id)
             and not store.redis.exists(f"mr:ended:{pipeline_id}:sink"), 60,
             f"the cleanup of {pipeline_id}")
    assert pipeline_id not in store.active_pipeline_ids()


def submit_with_a_dying_source(settings, inputs, out, pipeline_id: str,
                               ttl_s: str) -> subprocess.CompletedProcess:
    """`mapreduce submit` of the word count, its source's heartbeat living `ttl_s`."""
    env = {**os.environ, **settings.env(), "MAPREDUCE_SOURCE_TTL_S": ttl_s}
    return subprocess.run(
        [sys.executable, "-m", "mapreduce_kafka.services.cli", "submit", str(jobs.WORDCOUNT),
         *[a for path in inputs["wordcount"] for a in ("-i", str(path))],
         "-o", str(out), "--id", pipeline_id],
        env=env, cwd=REPO, capture_output=True, timeout=120)


@pytest.mark.parametrize("point", SOURCE_POINTS)
def test_a_source_dying_before_its_stream_is_complete_fails_the_job(armed_pool, inputs,
                                                                   tmp_path, point):
    arming, settings = armed_pool
    arming.write_text(f"{point} crash\n")
    pipeline_id = f"source-crash-{point.split('.')[1]}-{os.getpid()}-{time.monotonic_ns()}"
    out = tmp_path / "out"
    try:
        proc = submit_with_a_dying_source(settings, inputs, out, pipeline_id, ttl_s="3")
    finally:
        arming.write_text("")
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert crashpoints.fired(arming.parent, point, pipeline_id)
    with pytest.raises(PipelineFailed, match="source stopped mid-stream"):
        source.wait(settings, pipeline_id, lambda _s: None, timeout=60)
    assert not output.is_complete(out)
    assert_cleaned_up(settings, pipeline_id)


@pytest.mark.parametrize("outcome", ["done", "failed"])
def test_a_source_dying_after_its_end_markers_never_finalizes_a_partial_input(
        armed_pool, inputs, tmp_path, outcome):
    """The end markers are durable, the frame count is not in Redis: the stream is complete
    for the dispatchers, not for the dead-source watchdog. Either way the output is never
    partial. done: the source's heartbeat outlives the job, which finalizes with the exact
    result. failed: it expires (3 s) while the sink stalls before its claim, so the
    watchdog fails the job first and the sink then finds it failed and does not finalize."""
    arming, settings = armed_pool
    point = "source.after_end_markers"
    ttl_s, armed = (("120", f"{point} crash\n") if outcome == "done"
                    else ("3", f"{point} crash\nsink.after_sink_mark stall:15\n"))
    arming.write_text(armed)
    pipeline_id = f"source-crash-ended-{outcome}-{os.getpid()}-{time.monotonic_ns()}"
    out = tmp_path / "out"
    try:
        proc = submit_with_a_dying_source(settings, inputs, out, pipeline_id, ttl_s)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
        assert crashpoints.fired(arming.parent, point, pipeline_id)
        assert "frames" not in Store(settings.redis_url).pipeline(pipeline_id)
        if outcome == "done":
            source.wait(settings, pipeline_id, lambda _s: None, timeout=JOB_TIMEOUT_S)
            oracle = source.prepare(source.Job(jobs.WORDCOUNT, inputs["wordcount"],
                                               tmp_path / "unused"), settings)
            assert oracle.spec is not None and output.is_complete(out)
            comparison = reference.compare(reference.run_sequential(oracle.spec, oracle.files),
                                           output.read_output(out))
            assert comparison.equal, comparison.summary()
        else:
            with pytest.raises(PipelineFailed, match="source stopped mid-stream"):
                source.wait(settings, pipeline_id, lambda _s: None, timeout=60)
            assert crashpoints.fired(arming.parent, "sink.after_sink_mark", pipeline_id), (
                "the sink never reached its claim: the race was not the one under test")
            assert not output.is_complete(out)
    finally:
        arming.write_text("")
    assert_cleaned_up(settings, pipeline_id)


def test_at_least_once_counts_a_replayed_batch_again_where_exactly_once_does_not(
        armed_pool, inputs, tmp_path):
    """A mapper dies with a batch's pairs durable and its offsets not committed: the next
    owner maps those frames again. Exactly-once drops the replayed pairs by their tags and
    stays exact; at-least-once counts them again: no key below the sequential count, and
    the replayed ones above it."""
    arming, settings = armed_pool
    exact = killed_mid_map(arming, settings, inputs["wordcount"], tmp_path / "exact",
                           "exactly-once")
    jobs.assert_matches_sequential(exact)
    loose = killed_mid_map(arming, settings, inputs["wordcount"], tmp_path / "loose",
                           "at-least-once")
    assert loose.spec is not None
    expected = dict(reference.run_sequential(loose.spec, loose.files))
    counted = dict(output.read_output(loose.output_dir))
    assert set(counted) == set(expected)
    assert not [word for word, n in expected.items() if counted[word] < n], "a count was lost"
    recounted = [word for word, n in expected.items() if counted[word] > n]
    assert recounted, "at-least-once counted no replayed pair again"
    print(f"{len(recounted)} of {len(expected)} words counted again after the replay")


def killed_mid_map(arming: Path, settings, files: list[Path], out: Path,
                   guarantee: str) -> source.Job:
    """A word count whose mapper dies at mapper.batch_durable on a batch of frames, with the
    stream incomplete. Its source pauses at a third of its input until the point is armed,
    which waits for the mappers to commit the markers that open the partitions (armed
    before, the point fires on that first batch, with nothing to count again), and at two
    thirds until the point has fired: a batch that also held a partition's end marker
    would mark the partition ended before the crash, and a replay after that is dropped."""
    point = "mapper.batch_durable"
    job = source.prepare(source.Job(jobs.WORDCOUNT, files, out, guarantee=guarantee,
                                    input_mode="kafka"), settings)
    thirds = [threading.Event(), threading.Event()]
    resume = [threading.Event(), threading.Event()]
    failures: list[BaseException] = []

    def progress(sent: int, total: int) -> None:
        for third, (reached, go_on) in enumerate(zip(thirds, resume, strict=True), 1):
            if sent * 3 >= total * third and not reached.is_set():
                reached.set()
                go_on.wait(jobs.PAUSE_LIMIT_S)

    def stream() -> None:
        try:
            source.submit(job, settings, progress)
        except BaseException as exc:  # handed to the test below
            failures.append(exc)

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    try:
        assert thirds[0].wait(60), f"the source never got a third through its input: {failures}"
        wait_for(lambda: markers_committed(settings, "mapper", job), 20,
                 "the mappers' commit of the opening markers")
        arming.write_text(f"{point} crash\n")
        resume[0].set()
        assert thirds[1].wait(60), f"the source never got two thirds through: {failures}"
        wait_for(lambda: crashpoints.fired(arming.parent, point, job.pipeline_id), 20,
                 f"{point} reached with the source paused at two thirds")
    finally:
        arming.write_text("")
        for go_on in resume:
            go_on.set()
        thread.join(60)
    assert not failures, failures
    assert jobs.wait(settings, job, timeout=JOB_TIMEOUT_S)["state"] == "done"
    return job


def test_a_hand_off_lost_without_a_replay_is_sent_again_by_the_dispatchers(armed_pool, inputs,
                                                                          tmp_path):
    """A shuffler that stalls right after marking the SHUFFLE barrier complete holds on to
    its partitions, so no replay comes: the dispatchers see the pipeline stop with its
    inputs complete and send the REDUCE end markers again; the job ends exactly, while
    the shuffler still sleeps."""
    arming, settings = armed_pool
    arming.write_text("shuffler.after_shuffle_mark stall:90\n")
    try:
        job = jobs.submit(settings, jobs.WORDCOUNT, inputs["wordcount"], tmp_path / "out")
        started = time.monotonic()
        jobs.wait(settings, job, timeout=80)
        jobs.assert_matches_sequential(job)
    finally:
        arming.write_text("")
        for worker in supervisor.running(settings.home):  # wake the sleeper the hard way
            if worker.role == "shuffler":
                os.kill(worker.pid, signal.SIGKILL)
    assert crashpoints.fired(arming.parent, "shuffler.after_shuffle_mark", job.pipeline_id)
    logs = "".join(p.read_text() for p in (settings.home / "logs").glob("dispatcher-*.log"))
    resent = [json.loads(line) for line in logs.splitlines()
              if job.pipeline_id in line and "hand-off sent again" in line]
    assert resent
    # the reducers hold every REDUCE partition: the hand-off was lost, nobody is missing
    assert all(event["stage"] == "reduce" and event["unheld"] == [] for event in resent)
    print(f"repaired in {time.monotonic() - started:.1f} s")
