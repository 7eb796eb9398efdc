"""What `mapreduce status` says about each worker, as a pure function of the heartbeats in
Redis and Redis's clock (the one clock every host agrees on)."""

from __future__ import annotations

from typing import Any

from mapreduce_kafka.shared.store import SILENT_AFTER_S


def worker_rows(workers: list[dict[str, str]], now: float,
                silent_after: float = SILENT_AFTER_S) -> list[dict[str, Any]]:
    """One row per worker, by host, role and id: its partitions, lag, how long ago it last
    reported, and whether it has gone silent (missed heartbeats for `silent_after` s)."""
    rows = []
    for w in workers:
        age = max(0.0, now - float(w.get("last_seen") or 0.0))
        partitions = [p for p in (w.get("partitions") or "").split(",") if p]
        rows.append({"id": w["id"], "host": w.get("host", "?"), "role": w.get("role", "?"),
                     "pid": w.get("pid", "?"), "partitions": partitions,
                     "lag": int(w["lag"]) if (w.get("lag") or "").isdigit() else None,
                     "last_seen_s": round(age, 1), "silent": age > silent_after,
                     "restarts": int(w["restarts"]) if (w.get("restarts") or "").isdigit()
                     else 0})
    return sorted(rows, key=lambda r: (r["host"], r["role"], r["id"]))
