"""What `mapreduce status` shows: a pipeline's progress from Redis, and the tables."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from mapreduce_kafka.shared import liveness
from mapreduce_kafka.shared.barrier import status_totals
from mapreduce_kafka.shared.store import SILENT_AFTER_S, TERMINAL, Store

STAGES = ("source", "map", "shuffle", "reduce", "sink")


def pipeline_progress(store: Store, pipeline_id: str, info: dict[str, str]) -> dict[str, Any]:
    """Barrier counts, frames mapped, errors and keys written: live while the pipeline runs,
    the final figures (kept in its status) once it has ended; and, while it runs, what it
    waits on."""
    keys = sum(int(v) for k, v in info.items() if k.startswith("keys.") and v.isdigit())
    counters = store.counters(pipeline_id, info)
    if info.get("state") in TERMINAL and "final.map" in info:
        counts: dict[str, Any] = {name: int(info.get(f"final.{name}") or 0)
                                  for name in (*STAGES, "mapped")}
        counts["errors"] = int(info.get("errors") or 0)
        return {**counts, "keys": keys, "counters": counters}
    counts = dict(store.ended_counts(pipeline_id))
    counts["errors"] = max(counts["errors"], int(info.get("errors") or 0))
    counts["keys"] = keys
    counts["counters"] = counters
    if info.get("state") not in TERMINAL:
        steps = int(info.get("steps") or 1)
        step = store.current_step(pipeline_id, steps, int(info.get("partitions") or 0))
        at_step = store.ended_counts(pipeline_id, step) if step else counts
        totals = status_totals(info, step)
        ended, totals = liveness.at_step(
            step, {stage: int(at_step[stage.value]) for stage in totals}, totals)
        frames = int(info["frames"]) if "frames" in info else None
        counts["waiting_on"] = liveness.describe(ended, totals, int(counts["mapped"]), frames,
                                                 step, steps)
        if steps > 1:  # the stages' figures are the current step's
            counts.update({stage: int(at_step[stage]) for stage in STAGES[1:]},
                          step=step + 1, steps=steps)
    return counts


def pipelines_table(pipelines: list[dict[str, Any]]) -> Table:
    table = Table(title="pipelines")
    for column in ("id", "state", "frames mapped", "map/shuffle/reduce/sink ended", "errors",
                   "output", "waiting on / reason"):
        table.add_column(column)
    for p in pipelines:
        table.add_row(p["id"], p.get("state", "?"), f"{p['mapped']}/{p.get('frames', '?')}",
                      f"{p['map']}/{p['shuffle']}/{p['reduce']}/{p['sink']}",
                      str(p["errors"]), p.get("output", ""),
                      p.get("reason") or p.get("waiting_on", ""))
    return table


def cluster_table(health: dict[str, Any]) -> Table:
    """The brokers (up or down), partitions under-replicated or offline, Redis's primary."""
    table = Table(title="cluster")
    for column in ("part", "address", "state"):
        table.add_column(column)
    kafka, store = health["kafka"], health["redis"]
    if "error" in kafka:
        table.add_row("kafka", "", f"[red]unreachable: {kafka['error']}[/red]")
    for broker in kafka["brokers"]:
        state = "up" if broker["state"] == "up" else "[red]DOWN[/red]"
        table.add_row(f"broker {broker['id'] if broker['id'] is not None else '?'}",
                      broker["address"], state)
    if kafka["partitions"]:
        counts = kafka["partitions"]
        bad = counts["under_replicated"] or counts["offline"]
        text = (f"{counts['partitions']} partitions, {counts['under_replicated']} "
                f"under-replicated, {counts['offline']} offline")
        table.add_row("partitions", "", f"[red]{text}[/red]" if bad else text)
    if "error" in store:
        table.add_row("redis", "", f"[red]unreachable: {store['error']}[/red]")
    else:
        table.add_row("redis primary", store["primary"],
                      f"{store['replicas']} replicas; writes wait for {store['wait_replicas']}")
    return table


def workers_table(workers: list[dict[str, Any]]) -> Table:
    table = Table(title=f"workers (silent: no heartbeat for {SILENT_AFTER_S} s)")
    for column in ("host", "role", "pid", "partitions", "lag", "last heartbeat", ""):
        table.add_column(column)
    for w in workers:
        table.add_row(w["host"], w["role"], w["pid"], _partitions_text(w["partitions"]),
                      "?" if w["lag"] is None else str(w["lag"]),
                      f"{w['last_seen_s']:.1f}s ago",
                      "[red]SILENT[/red]" if w["silent"] else "ok")
    return table


def pipeline_detail(status: dict[str, Any], letters: list[dict[str, Any]]) -> Table:
    """One pipeline: its state, each stage's partitions ended, frames mapped, keys written,
    where it waits, and the first dead letters with their reasons."""
    table = Table(title=f"pipeline {status['id']}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    totals: dict[str, Any] = {stage.value: total
                              for stage, total in status_totals(status).items()}
    rows = [("state", status.get("state", "?")),
            ("reason" if status.get("reason") else "waiting on",
             status.get("reason") or status.get("waiting_on", "-")),
            ("pipeline", status.get("name", "")), ("output", status.get("output", "")),
            ("frames mapped", f"{status['mapped']}/{status.get('frames', '?')}"),
            *((f"{stage} ended", f"{status[stage]}/{totals[stage]}") for stage in STAGES
              if stage in totals),  # a map-only pipeline has no shuffle or reduce
            ("keys written", str(status.get("keys", 0))),
            ("dead letters", str(status["errors"]))]
    if status.get("charges"):  # the failure budget (services/runtime/tasks.py)
        rows.append(("charges", f"{status['charges']}: {status.get('charge.reason', '')} "
                                f"at {status.get('charge.where', '?')}"))
    for group, names in (status.get("counters") or {}).items():
        rows.extend((f"{group}: {name}", str(count)) for name, count in names.items())
    for name, value in rows:
        table.add_row(name, str(value))
    for letter in letters:
        table.add_row("", f"{letter.get('identity')}: {letter.get('error')}")
    return table


def _partitions_text(partitions: list[str], shown: int = 6) -> str:
    if len(partitions) <= shown:
        return ",".join(partitions)
    return ",".join(partitions[:shown]) + f" (+{len(partitions) - shown})"
