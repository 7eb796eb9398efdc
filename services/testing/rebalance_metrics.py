"""Pure computations of the rebalance benchmark, from worker log events (no Kafka here).

- stall: on each worker, the gap between two consecutive batches of the long pipeline P0
  that contains a change of the live pipeline set (a pipeline became ready, or finished):
  the time P0 made no progress there because of that change. Several changes inside one
  gap count once. Per worker: the longest such gap and their total.
- pickup: from a pipeline's announcement to the first batch of it any worker processed.
"""

from __future__ import annotations

import bisect
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Batch:
    ts: float
    worker: str
    role: str
    counts: dict[str, int]


def parse_ts(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def read_events(logs: Iterable[Path], since: float) -> list[dict[str, Any]]:
    events = []
    for path in logs:
        with open(path, errors="replace") as f:
            for line in f:
                if not line.startswith("{"):
                    continue  # librdkafka's own lines
                try:
                    event = json.loads(line)
                    event["ts"] = parse_ts(event["timestamp"])
                except (ValueError, KeyError):
                    continue
                if event["ts"] >= since:
                    events.append(event)
    return sorted(events, key=lambda e: e["ts"])


def batches(events: list[dict[str, Any]]) -> list[Batch]:
    return [Batch(e["ts"], e["worker"], e["role"], e["counts"])
            for e in events if e.get("event") == "batch"]


def set_changes(events: list[dict[str, Any]]) -> list[float]:
    """When the set of live pipelines changed: a pipeline became ready, or finished."""
    return sorted(e["ts"] for e in events
                  if e.get("event") in ("pipeline ready", "pipeline finished"))


def stalls(batch_list: list[Batch], pipeline: str, changes: list[float],
           role: str = "mapper") -> dict[str, dict[str, float]]:
    """Per worker of `role`: the longest and the total P0 gap that contains a change, and
    the same less the worker's normal gap (the median gap between its P0 batches that
    contains no change): a gap of one ordinary batch is not a stall."""
    times: dict[str, list[float]] = defaultdict(list)
    for b in batch_list:
        if b.role == role and b.counts.get(pipeline):
            times[b.worker].append(b.ts)
    result = {}
    for worker, ts in times.items():
        ts.sort()
        gaps = set()
        for change in changes:
            i = bisect.bisect_right(ts, change)
            if 0 < i < len(ts):  # the change falls between two P0 batches of this worker
                gaps.add((ts[i - 1], ts[i]))
        lengths = [end - start for start, end in gaps]
        quiet = [b - a for a, b in zip(ts, ts[1:], strict=False) if (a, b) not in gaps]
        normal = statistics.median(quiet) if quiet else 0.0
        excess = [max(0.0, length - normal) for length in lengths]
        result[worker] = {"max": max(lengths, default=0.0), "total": sum(lengths),
                          "normal_gap": normal, "excess_max": max(excess, default=0.0),
                          "excess_total": sum(excess)}
    return result


def first_batch(batch_list: list[Batch], pipeline: str, role: str = "mapper") -> float | None:
    return min((b.ts for b in batch_list if b.role == role and b.counts.get(pipeline)),
               default=None)


def processed(batch_list: list[Batch], pipeline: str, role: str = "mapper") -> int:
    return sum(b.counts.get(pipeline, 0) for b in batch_list if b.role == role)


def map_ended(events: list[dict[str, Any]], pipeline: str) -> float | None:
    """When the pipeline's map stage ended (every map partition's end marker seen)."""
    return next((e["ts"] for e in events if e.get("event") == "map stage ended"
                 and e.get("pipeline") == pipeline), None)


def phases(events: list[dict[str, Any]], pipeline: str, announced_at: float,
           first: float | None) -> dict[str, float | None]:
    """Where a pickup's time goes, as the time each step ended, relative to the
    announcement: the dispatcher created the topics, published READY, a mapper was assigned
    one of the pipeline's partitions, a mapper processed its first batch."""
    map_topic = f"MAP---{pipeline}"

    def at(predicate: Any) -> float | None:
        found = next((e["ts"] for e in events if predicate(e)), None)
        return None if found is None else round(found - announced_at, 3)

    return {
        "topics_created": at(lambda e: e.get("event") == "topic created"
                             and e.get("topic") == map_topic),
        "ready": at(lambda e: e.get("event") == "pipeline ready"
                    and e.get("pipeline") == pipeline),
        "assigned": at(lambda e: e.get("event") == "partitions assigned"
                       and e.get("role") == "mapper"
                       and any(p.startswith(map_topic + "[") for p in e.get("partitions", []))),
        "first_batch": None if first is None else round(first - announced_at, 3),
    }
