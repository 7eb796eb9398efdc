"""What the dashboard shows, as one JSON-ready dict: it reads what `mapreduce status` reads
(Redis, and Kafka's metadata), plus the first reasons of each pipeline's dead letters, read
from the DEADLETTER topic as they arrive (one consumer, never re-reading the topic)."""

from __future__ import annotations

import json
import threading
from typing import Any

import orjson
import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from mapreduce_kafka.services.client import api
from mapreduce_kafka.services.status.cluster_health import cluster_health
from mapreduce_kafka.services.status.worker_status import worker_rows
from mapreduce_kafka.shared import kafka, topics
from mapreduce_kafka.shared.barrier import status_totals

log = structlog.get_logger("dashboard")

# The phases of a job's timeline: each ends at the time its field records (in the
# pipeline's status in Redis), and starts where the one before it ended.
PHASES = (("submit", "ready"), ("source", "completed.source"), ("map", "completed.map"),
          ("shuffle", "completed.shuffle"), ("reduce", "completed.reduce"),
          ("sink", "completed.sink"), ("finalize", "finished"))
STAGES = ("source", "map", "shuffle", "reduce", "sink")
FIRST_REASONS = 3  # dead letters shown per pipeline


def timeline(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The phases a pipeline went through, with start and end in seconds since its
    submission; a phase not ended yet has no end (and the last one a failure cut short
    ends at `finished`)."""
    try:
        start = float(info["submitted"])
    except (KeyError, ValueError):
        return []
    phases, begun = [], 0.0
    for name, field in PHASES:
        raw = info.get(field)
        if raw is None:
            if info.get("state") in ("done", "failed") and "finished" in info:
                end = float(info["finished"]) - start
                phases.append({"phase": name, "start": begun, "end": end, "cut": True})
            else:
                phases.append({"phase": name, "start": begun, "end": None})
            break
        end = max(begun, float(raw) - start)
        phases.append({"phase": name, "start": round(begun, 3), "end": round(end, 3)})
        begun = end
    return phases


def stage_progress(info: dict[str, Any]) -> dict[str, list[int]]:
    """Per stage: [partitions ended, partitions in all]."""
    totals = {stage.value: total for stage, total in status_totals(info).items()}
    return {stage: [int(info.get(stage) or 0), totals.get(stage, 0)] for stage in STAGES}


def pipeline_row(info: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    frames = int(info["frames"]) if str(info.get("frames", "")).isdigit() else None
    return {
        "id": info["id"], "name": info.get("name", ""), "state": info.get("state", "?"),
        "reason": info.get("reason", ""), "waiting_on": info.get("waiting_on", ""),
        "output": info.get("output", ""), "submitted": float(info.get("submitted") or 0),
        "finished": float(info["finished"]) if info.get("finished") else None,
        "input_bytes": int(info.get("input_bytes") or 0), "frames": frames,
        "mapped": int(info.get("mapped") or 0), "keys": int(info.get("keys") or 0),
        "stages": stage_progress(info), "errors": int(info.get("errors") or 0),
        "counters": info.get("counters") or {},
        "step": info.get("step"), "steps": info.get("steps"),
        "dead_letters": reasons, "timeline": timeline(info)}


def worker_row(row: dict[str, Any], raw: dict[str, str]) -> dict[str, Any]:
    try:
        figures = json.loads(raw.get("metrics") or "{}")
    except ValueError:
        figures = {}
    return {**row, "metrics": figures}


class DeadLetterReasons:
    """The first FIRST_REASONS errors of each pipeline's dead letters, read incrementally
    from DEADLETTER by an assign-only consumer."""

    def __init__(self, settings: Any) -> None:
        self._consumer = Consumer({**settings.consumer_config("mapreduce-dashboard"),
                                   "enable.partition.eof": False})
        partitions = kafka.fixed_topic_counts(kafka.admin(settings), settings)[topics.DEADLETTER]
        self._consumer.assign([TopicPartition(topics.DEADLETTER, p, OFFSET_BEGINNING)
                               for p in range(partitions)])
        self.reasons: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            while True:
                messages = self._consumer.consume(num_messages=500, timeout=0.05)
                if not messages:
                    return
                for msg in messages:
                    if msg.error() is not None:  # the consumer goes on after it
                        log.warning("reading dead letters", error=str(msg.error()))
                        continue
                    # the key is the pipeline's id; a value that is not ours still counts
                    pipeline = (msg.key() or b"").decode(errors="replace")
                    try:
                        letter = orjson.loads(msg.value() or b"{}")
                        reason = f"{letter.get('role', '?')}: {letter.get('error', '?')}"
                    except (orjson.JSONDecodeError, AttributeError):
                        reason = "a dead letter that is not a JSON object"
                    shown = self.reasons.setdefault(pipeline, [])
                    if len(shown) < FIRST_REASONS:
                        shown.append(reason)

    def close(self) -> None:
        self._consumer.close()


class DashboardState:
    def __init__(self, cluster: api.Cluster) -> None:
        self.cluster = cluster
        self.letters = DeadLetterReasons(cluster.settings)
        self.admin = kafka.admin(cluster.settings, quiet=True)  # one for every refresh

    def snapshot(self, everything: bool = False) -> dict[str, Any]:
        store = self.cluster.store
        self.letters.refresh()
        raw_workers = store.workers()
        by_id = {w["id"]: w for w in raw_workers}
        return {
            "generated": store.now(),
            "pipelines": [pipeline_row(p, self.letters.reasons.get(p["id"], []))
                          for p in self.cluster.pipelines(everything)],
            "workers": [worker_row(row, by_id.get(row["id"], {}))
                        for row in worker_rows(raw_workers, store.now())],
            "cluster": cluster_health(self.cluster.settings, store, self.admin),
        }

    def close(self) -> None:
        self.letters.close()
