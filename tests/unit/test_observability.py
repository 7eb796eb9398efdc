"""The operator's view as pure functions: a job's timeline and stage progress, the metric
families built from heartbeats and statuses (parsed back with Prometheus's own parser),
the rotating log file, librdkafka's log lines as structured events, the record count."""

from __future__ import annotations

import json
import logging

import structlog
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from mapreduce_kafka.services.ui.metrics import pipeline_families, worker_families
from mapreduce_kafka.services.ui.state import stage_progress, timeline
from mapreduce_kafka.shared.codec import count_lines, split_lines
from mapreduce_kafka.shared.logging import RotatingFile, librdkafka_logger
from mapreduce_kafka.shared.metrics import COUNTERS, GAUGES, WorkerMetrics
from mapreduce_kafka.shared.topics import pipeline_of, pipelines_of


def test_a_finished_jobs_timeline_runs_from_submission_to_its_end():
    info = {"state": "done", "submitted": "100.0", "ready": "100.5",
            "completed.source": "102", "completed.map": "103", "completed.shuffle": "104",
            "completed.reduce": "104.5", "completed.sink": "105", "finished": "105.25"}
    phases = timeline(info)
    assert [p["phase"] for p in phases] == ["submit", "source", "map", "shuffle", "reduce",
                                            "sink", "finalize"]
    assert phases[0] == {"phase": "submit", "start": 0.0, "end": 0.5}
    assert phases[-1]["end"] == 5.25
    assert all(a["end"] == b["start"] for a, b in zip(phases, phases[1:], strict=False))


def test_a_running_job_ends_in_an_open_phase_and_a_failed_one_is_cut_short():
    running = timeline({"state": "running", "submitted": "10", "ready": "11"})
    assert running[-1] == {"phase": "source", "start": 1.0, "end": None}
    failed = timeline({"state": "failed", "submitted": "10", "ready": "11",
                       "finished": "14"})
    assert failed[-1] == {"phase": "source", "start": 1.0, "end": 4.0, "cut": True}
    assert timeline({}) == []


def test_stage_progress_is_partitions_ended_of_all():
    info = {"partitions": "4", "source_partitions": "4", "shuffle_partitions": "8",
            "map": 4, "shuffle": 3, "reduce": 0, "sink": 0, "source": 4}
    assert stage_progress(info) == {"source": [4, 4], "map": [4, 4], "shuffle": [3, 8],
                                    "reduce": [0, 4], "sink": [0, 4]}


class _Families(Collector):
    def __init__(self, families) -> None:
        self.families = families

    def collect(self):
        return iter(self.families)


def _scrape(families) -> dict[str, dict]:
    registry = CollectorRegistry()
    registry.register(_Families(families))
    text = generate_latest(registry).decode()
    parsed = {}
    for family in text_string_to_metric_families(text):  # Prometheus's own parser
        for sample in family.samples:
            parsed[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return parsed


def test_worker_figures_become_counters_and_gauges_by_role_host_and_worker():
    metrics = WorkerMetrics()
    metrics.count(records_in=120, records_out=7, messages_in=3, bytes_in=4096)
    metrics.count(records_in=30)
    metrics.set("consumer_lag", 5)
    workers = [{"id": "mapper-h-1", "role": "mapper", "host": "h", "restarts": "2",
                "last_seen": "1000", "metrics": json.dumps(metrics.snapshot())},
               {"id": "mapper-h-0", "role": "mapper", "host": "h", "last_seen": "900"},
               {"id": "sink-h-2", "role": "sink", "host": "h", "last_seen": "999",
                "metrics": "not json"}]
    parsed = _scrape(worker_families(workers, now=1001.0, silent_after=10))
    who = (("host", "h"), ("role", "mapper"), ("worker", "mapper-h-1"))
    assert parsed[("mapreduce_records_in_total", who)] == 150
    assert parsed[("mapreduce_bytes_in_total", who)] == 4096
    assert parsed[("mapreduce_consumer_lag", who)] == 5
    assert parsed[("mapreduce_worker_restarts_total", who)] == 2
    assert parsed[("mapreduce_resubscription_seconds_total", who)] == 0
    sink = (("host", "h"), ("role", "sink"), ("worker", "sink-h-2"))
    assert parsed[("mapreduce_records_in_total", sink)] == 0  # unreadable figures: zeros
    assert parsed[("mapreduce_workers", (("role", "mapper"), ("state", "live")))] == 1
    assert parsed[("mapreduce_workers", (("role", "mapper"), ("state", "silent")))] == 1
    assert parsed[("mapreduce_workers", (("role", "sink"), ("state", "live")))] == 1
    names = {name for name, _ in parsed}
    assert {f"mapreduce_{n}_total" for n in COUNTERS} | {f"mapreduce_{n}" for n in GAUGES} \
        <= names


def test_pipeline_figures_by_pipeline_and_stage():
    pipelines = [{"id": "p1", "state": "running", "mapped": 3, "frames": "8",
                  "input_bytes": "1000", "errors": 2, "partitions": "4",
                  "shuffle_partitions": "8", "source_partitions": "4", "map": 1},
                 {"id": "p2", "state": "done", "mapped": 2, "errors": 0, "partitions": "2"}]
    parsed = _scrape(pipeline_families(pipelines))
    assert parsed[("mapreduce_frames_mapped_total", (("pipeline", "p1"),))] == 3
    assert parsed[("mapreduce_pipeline_frames", (("pipeline", "p1"),))] == 8
    assert ("mapreduce_pipeline_frames", (("pipeline", "p2"),)) not in parsed  # unknown yet
    assert parsed[("mapreduce_pipeline_partitions_ended",
                   (("pipeline", "p1"), ("stage", "map")))] == 1
    assert parsed[("mapreduce_pipeline_partitions",
                   (("pipeline", "p1"), ("stage", "shuffle")))] == 8
    assert parsed[("mapreduce_pipeline_dead_letters_total", (("pipeline", "p1"),))] == 2
    assert parsed[("mapreduce_pipelines", (("state", "running"),))] == 1


def test_a_log_file_rotates_at_its_size_and_keeps_its_backups(tmp_path):
    path = tmp_path / "mapper-0.log"
    log = RotatingFile(path, max_bytes=100, backups=2)
    lines = [f"{i:03d} " + "x" * 40 + "\n" for i in range(10)]  # 45 bytes each
    for line in lines:
        log.write(line)
    log.flush()
    kept = [path.with_name(f"{path.name}.2"), path.with_name(f"{path.name}.1"), path]
    assert not path.with_name(f"{path.name}.3").exists()
    assert all(p.stat().st_size <= 100 for p in kept)
    text = "".join(p.read_text() for p in kept)
    assert text == "".join(lines[-len(text) // 45:])  # the newest lines, in order


def test_librdkafka_lines_become_structured_events(capsys):
    structlog.configure(processors=[structlog.processors.add_log_level,
                                    structlog.processors.JSONRenderer()],
                        logger_factory=structlog.PrintLoggerFactory(),
                        cache_logger_on_first_use=False)
    try:
        librdkafka_logger().log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1",
                                "broker:9092: Connect failed")
        event = json.loads(capsys.readouterr().out)
    finally:
        structlog.reset_defaults()
    assert event == {"facility": "FAIL", "client": "rdkafka#producer-1",
                     "source": "librdkafka", "event": "broker:9092: Connect failed",
                     "level": "error"}


def test_records_are_counted_as_the_mapper_splits_them():
    for frame in (b"", b"a\n", b"a\nb", b"a\n\nb\n", b"\n"):
        assert count_lines(frame) == len(split_lines(frame))


def test_log_events_name_the_pipelines_of_per_pipeline_topics():
    assert pipeline_of("MAP---wc-1") == "wc-1" and pipeline_of("REDUCE---x") == "x"
    assert pipeline_of("SHUFFLE") is None
    assert pipelines_of(["MAP---b[0]", "MAP---a[1]", "SOURCE[2]", "REDUCE---a[0]"]) == ["a", "b"]
