"""The record of the local cluster `mapreduce up` started: $MAPREDUCE_HOME/cluster.json.

It holds the cluster's addresses, a secured cluster's client settings (the submitter's
principal) and each role's password, so it is readable by its owner only. Settings take
the Kafka and Redis addresses from it when no other source names them
(shared/setting_sources.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def _cluster_file(home: Path) -> Path:
    return home / "cluster.json"


def read_local_cluster(home: Path) -> dict[str, Any] | None:
    try:
        return json.loads(_cluster_file(home).read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None


def write_local_cluster(home: Path, bootstrap: str, redis_url: str,
                        kafka: dict[str, str] | None = None,
                        principals: dict[str, str] | None = None) -> None:
    """Write the record: addresses, client settings (`kafka`) and role passwords
    (`principals`)."""
    home.mkdir(parents=True, exist_ok=True)
    path = _cluster_file(home)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"bootstrap_servers": bootstrap, "redis_url": redis_url,
                   "kafka": kafka or {}, "principals": principals or {}}, f)
