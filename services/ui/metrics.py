"""/metrics: the cluster in Prometheus's text format, built at each scrape from what the
workers publish with their heartbeats (shared/metrics.py) and the pipelines' status in
Redis. Per worker: labels role, host and worker (a restarted process is a new series, which
Prometheus's rate() reads as a counter reset). Per pipeline: label pipeline. Job durations:
a histogram of the pipelines that ended since this server started."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from mapreduce_kafka.services.client import api
from mapreduce_kafka.services.ui.state import stage_progress
from mapreduce_kafka.shared.metrics import COUNTERS, GAUGES
from mapreduce_kafka.shared.store import SILENT_AFTER_S, TERMINAL

PREFIX = "mapreduce_"
WORKER_LABELS = ("role", "host", "worker")
# Job durations (submission to end), seconds: from a small job to a long batch run.
DURATION_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)


def worker_families(workers: list[dict[str, str]], now: float,
                    silent_after: float = SILENT_AFTER_S) -> list[Metric]:
    """Each worker's published figures; `mapreduce_workers` counts them by role and by
    whether they still beat (a silent worker's heartbeat is kept for a while: it is how
    `status` shows that it went silent)."""
    # a counter family's samples get _total: resubscription_seconds_total, bytes_in_total
    counters = {name: CounterMetricFamily(PREFIX + name, help, labels=WORKER_LABELS)
                for name, help in COUNTERS.items()}
    gauges = {name: GaugeMetricFamily(PREFIX + name, help, labels=WORKER_LABELS)
              for name, help in GAUGES.items()}
    restarts = CounterMetricFamily(PREFIX + "worker_restarts",
                                   "times a worker restarted itself in place after a failure",
                                   labels=WORKER_LABELS)
    up = GaugeMetricFamily(PREFIX + "workers",
                           "workers by role, live (beating) or silent (missed heartbeats)",
                           labels=("role", "state"))
    per_role: dict[tuple[str, str], int] = {}
    for worker in workers:
        labels = [worker.get("role", "?"), worker.get("host", "?"), worker["id"]]
        silent = now - float(worker.get("last_seen") or 0.0) > silent_after
        key = (labels[0], "silent" if silent else "live")
        per_role[key] = per_role.get(key, 0) + 1
        try:
            figures: dict[str, float] = json.loads(worker.get("metrics") or "{}")
        except ValueError:
            figures = {}
        for name, family in counters.items():
            family.add_metric(labels, float(figures.get(name, 0.0)))
        for name, gauge in gauges.items():
            gauge.add_metric(labels, float(figures.get(name, 0.0)))
        restarts.add_metric(labels, float(worker.get("restarts") or 0))
    for (role, state), count in sorted(per_role.items()):
        up.add_metric([role, state], count)
    return [*counters.values(), *gauges.values(), restarts, up]


def pipeline_families(pipelines: list[dict[str, Any]]) -> list[Metric]:
    mapped = CounterMetricFamily(PREFIX + "frames_mapped",
                                 "input frames mapped, per pipeline", labels=("pipeline",))
    frames = GaugeMetricFamily(PREFIX + "pipeline_frames",
                               "input frames a pipeline has in all (once its source has sent "
                               "them all)", labels=("pipeline",))
    input_bytes = GaugeMetricFamily(PREFIX + "pipeline_input_bytes",
                                    "bytes of a pipeline's input", labels=("pipeline",))
    ended = GaugeMetricFamily(PREFIX + "pipeline_partitions_ended",
                              "partitions of a stage that have ended",
                              labels=("pipeline", "stage"))
    partitions = GaugeMetricFamily(PREFIX + "pipeline_partitions",
                                   "partitions of a stage in all", labels=("pipeline", "stage"))
    errors = CounterMetricFamily(PREFIX + "pipeline_dead_letters",
                                 "records or keys of a pipeline its code failed on (each "
                                 "counted once, however often it was replayed)",
                                 labels=("pipeline",))
    step = GaugeMetricFamily(PREFIX + "pipeline_step",
                             "the step a running pipeline of several is at (from 1; its "
                             "partitions_ended figures are that step's)", labels=("pipeline",))
    counted = CounterMetricFamily(PREFIX + "pipeline_counter",
                                  "what a pipeline's code counted (increment_counter), each "
                                  "task once", labels=("pipeline", "group", "name"))
    states = GaugeMetricFamily(PREFIX + "pipelines", "pipelines by state (running and those "
                               "that ended in the last 24 hours)", labels=("state",))
    by_state: dict[str, int] = {}
    for p in pipelines:
        pid = p["id"]
        by_state[p.get("state", "?")] = by_state.get(p.get("state", "?"), 0) + 1
        mapped.add_metric([pid], float(p.get("mapped") or 0))
        if str(p.get("frames", "")).isdigit():
            frames.add_metric([pid], float(p["frames"]))
        input_bytes.add_metric([pid], float(p.get("input_bytes") or 0))
        for stage, (done, total) in stage_progress(p).items():
            ended.add_metric([pid, stage], done)
            partitions.add_metric([pid, stage], total)
        errors.add_metric([pid], float(p.get("errors") or 0))
        if p.get("step"):
            step.add_metric([pid], float(p["step"]))
        for group, names in (p.get("counters") or {}).items():
            for name, count in names.items():
                counted.add_metric([pid, group, name], float(count))
    for state, count in sorted(by_state.items()):
        states.add_metric([state], count)
    return [mapped, frames, input_bytes, ended, partitions, errors, step, counted, states]


class ClusterCollector(Collector):
    """Reads the cluster at each scrape; observes each ended pipeline's duration once."""

    def __init__(self, cluster: api.Cluster, durations: Histogram) -> None:
        self.cluster = cluster
        self.durations = durations
        self._observed: set[str] = set()
        self._lock = threading.Lock()  # scrapes run on the server's thread pool

    def collect(self) -> Iterator[Metric]:
        pipelines = self.cluster.pipelines()
        with self._lock:
            for p in pipelines:
                if p.get("state") in TERMINAL and p["id"] not in self._observed:
                    self._observed.add(p["id"])
                    if p.get("finished") and p.get("submitted"):
                        self.durations.labels(state=p["state"]).observe(
                            float(p["finished"]) - float(p["submitted"]))
        yield from worker_families(self.cluster.store.workers(), self.cluster.store.now())
        yield from pipeline_families(pipelines)


def registry(cluster: api.Cluster) -> CollectorRegistry:
    """A registry of its own (not the process-wide default): the server's own Python
    process figures are not the cluster's."""
    reg = CollectorRegistry()
    durations = Histogram(PREFIX + "job_duration_seconds",
                          "seconds from a job's submission to its end, by how it ended",
                          labelnames=("state",), buckets=DURATION_BUCKETS, registry=reg)
    reg.register(ClusterCollector(cluster, durations))
    return reg
