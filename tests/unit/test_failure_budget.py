"""The failure budget's pure parts: whose an exception is, what is charged, when a task has
overrun, when charges fail a pipeline, and the watchdog that notices."""

from __future__ import annotations

import signal
import sys
import threading

import pytest
import redis
from confluent_kafka import KafkaError, KafkaException

from mapreduce_kafka.services.runtime import failures
from mapreduce_kafka.services.runtime.tasks import Task, Tasks, Watchdog, exhausted, overran
from mapreduce_kafka.shared import kafka
from mapreduce_kafka.shared.crashpoints import CrashPointError
from mapreduce_kafka.shared.errors import ConnectionFailed, InputGone
from mapreduce_kafka.shared.spec import PipelineCode, spec_from_module
from mapreduce_kafka.shared.user_code import raised_by_user


def own_sigint_handler():
    """Install a SIGINT handler, as workers do; returns the one to restore."""
    return signal.signal(signal.SIGINT, lambda *_: None)


def test_system_exit_is_the_codes_keyboard_interrupt_only_where_ctrl_c_is_handled():
    assert raised_by_user(ValueError("x")) and raised_by_user(SystemExit("bye"))
    assert not raised_by_user(GeneratorExit())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not raised_by_user(KeyboardInterrupt())  # a terminal's Ctrl-C goes on up
    default = own_sigint_handler()
    try:
        assert raised_by_user(KeyboardInterrupt())  # a worker: only the code raises it
    finally:
        signal.signal(signal.SIGINT, default)


def exiting_spec():
    def mapper(line):
        if line == "exit":
            sys.exit("bye")
        if line == "interrupt":
            raise KeyboardInterrupt
        yield line, 1

    def combiner(key, values):
        if key == "boom":
            sys.exit(2)
        return sum(values)

    code = PipelineCode.from_functions(mapper=mapper, combiner=combiner,
                                       reducer=lambda k, vs: sum(vs))
    return spec_from_module(code.namespace, pipeline_id="p", fmt="text", partitions=1,
                            output_dir="/tmp/x", source_partitions=1, where="t")


def test_a_mapper_or_combiner_that_exits_reports_its_record_and_the_rest_is_mapped():
    errors = []
    default = own_sigint_handler()
    try:
        groups = exiting_spec().map_frame(
            ["a", "exit", "boom", "boom", "interrupt", "a"],
            lambda role, at, data, exc: errors.append((role, at, type(exc).__name__)))
    finally:
        signal.signal(signal.SIGINT, default)
    assert groups == {"a": [2], "boom": [1, 1]}  # the combiner's failure keeps the values
    assert errors == [("mapper", 1, "SystemExit"), ("mapper", 4, "KeyboardInterrupt"),
                      ("combiner", "boom", "SystemExit")]


def test_ctrl_c_in_the_inline_runner_still_stops_it():
    with pytest.raises(KeyboardInterrupt):
        exiting_spec().map_frame(["interrupt"], lambda *args: None)


@pytest.mark.parametrize(("exc", "is_charged"), [
    (MemoryError(), True),
    (SystemExit(1), True),
    (RuntimeError("a bug meeting this pipeline's data"), True),
    (KafkaException(KafkaError(KafkaError._TRANSPORT)), False),
    (redis.ConnectionError("gone"), False),
    (ConnectionFailed("no broker"), False),
    (CrashPointError("a test's crash"), False),
])
def test_outages_are_not_charged_anything_else_is(exc, is_charged):
    assert failures.charged(exc) is is_charged


def test_pipelines_errors_fail_it_at_once_the_machinerys_restart_the_worker():
    assert failures.is_pipelines(InputGone("deleted"))
    assert failures.is_pipelines(SystemExit(1))
    assert not failures.is_pipelines(MemoryError())  # restart, charged
    assert not failures.is_pipelines(GeneratorExit())
    assert not failures.is_pipelines(KafkaException(KafkaError(KafkaError._TRANSPORT)))


def test_only_refusals_no_retry_cures_are_an_input_gone():
    def gone(code):
        return kafka.input_gone(KafkaException(KafkaError(code)))

    assert gone(KafkaError.UNKNOWN_TOPIC_OR_PART)
    assert gone(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    assert not gone(KafkaError._TIMED_OUT)
    assert not gone(KafkaError._TRANSPORT)


def test_a_task_overruns_only_past_its_limit_and_never_without_one():
    task = Task("p", "MAP---p[0]@3", started=100.0, limit_s=5)
    assert not overran(task, 105.0) and overran(task, 105.1)
    assert not overran(Task("p", "x", 100.0, 0), 1e9)


def test_the_budget_fails_a_pipeline_at_its_last_charge():
    assert [exhausted(n, 3) for n in (0, 1, 2, 3, 4)] == [False, False, False, True, True]
    assert not exhausted(5, 0)  # no budget: never


def test_a_jobs_own_limit_wins_over_the_default_and_only_user_code_is_timed():
    tasks = Tasks(default_limit_s=600)
    tasks.begin("p", "x", 2)
    assert tasks.current is not None and tasks.current.limit_s == 2
    tasks.begin("p", "x")
    assert tasks.current.limit_s == 600
    tasks.begin("p", "x", 2, runs_user_code=False)  # a shuffler merging: not timed
    assert tasks.current.limit_s == 0
    tasks.end()
    assert tasks.current is None


def test_the_watchdog_reports_an_overrun_task_once():
    tasks = Tasks(default_limit_s=0.2)
    seen: list[Task] = []
    fired = threading.Event()

    def on_overrun(task: Task) -> None:
        seen.append(task)
        fired.set()

    watchdog = Watchdog(tasks, on_overrun)
    watchdog.start()
    tasks.begin("stuck", "MAP---stuck[1]@7")
    assert fired.wait(5), "the watchdog did not notice the overrun"
    watchdog.stop()
    assert [t.pipeline_id for t in seen] == ["stuck"]


def test_the_watchdog_leaves_tasks_that_end_in_time_alone():
    tasks = Tasks(default_limit_s=5)
    fired = threading.Event()
    watchdog = Watchdog(tasks, lambda task: fired.set())
    watchdog.start()
    for offset in range(3):
        tasks.begin("quick", f"MAP---quick[0]@{offset}")
        tasks.end()
    assert not fired.wait(1.2)  # two looks of the watchdog, nothing current
    watchdog.stop()


def test_status_shows_a_pipelines_charges_with_the_last_reason():
    from rich.console import Console

    from mapreduce_kafka.services.status.status_view import pipeline_detail

    status = {"id": "p", "state": "running", "mapped": 1, "errors": 0, "source": 4, "map": 1,
              "shuffle": 0, "reduce": 0, "sink": 0, "charges": "2",
              "charge.reason": "mapper: a task ran over its time limit of 2 s",
              "charge.where": "MAP---p[0]@1"}
    console = Console(width=200, record=True)
    console.print(pipeline_detail(status, []))
    assert "2: mapper: a task ran over its time limit of 2 s at MAP---p[0]@1" in \
        console.export_text()
    del status["charges"]
    console.print(pipeline_detail(status, []))
    assert console.export_text().count("charges") == 0


def test_a_replay_that_starts_past_its_commit_skipped_records():
    from mapreduce_kafka.services.runtime.pipeline_worker import skipped

    assert skipped(first=40, committed=40) is None  # where it left off
    assert skipped(first=0, committed=-1001) is None  # a new group, from the start
    assert skipped(first=55, committed=40) == (40, 55)  # 40..54 deleted under it
    assert skipped(first=3, committed=-1001) == (0, 3)  # a new group, the start deleted
