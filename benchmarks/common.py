"""What the benchmarks share: a local cluster of their own, on free ports, in a temporary
home, stopped with its workers whatever happens."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mapreduce_kafka.services import supervisor
from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.shared.config import Settings
from tests.conftest import free_port, replicated_cluster


@contextlib.contextmanager
def local_cluster(prefix: str, home: Path | None = None, replicated: bool = False
                  ) -> Iterator[tuple[Path, Settings, LocalCluster]]:
    """One broker and one Redis; or, `replicated`, three brokers and Redis with Sentinel."""
    home = home or Path(tempfile.mkdtemp(prefix=prefix))
    cluster = (replicated_cluster(home) if replicated else
               LocalCluster(home, kafka_port=free_port(), controller_port=free_port(),
                            redis_port=free_port()))
    settings = cluster.start(timeout=180)
    try:
        yield home, settings, cluster
    finally:
        supervisor.stop_all(home)
        cluster.stop()


WORDCOUNT = Path(__file__).resolve().parents[1] / "pipelines" / "wordcount.py"


def warm_up(settings: Settings, home: Path) -> None:
    """One small, untimed job: the first job on a fresh pool also pays for clients, group
    joins and the broker's warm-up."""
    from mapreduce_kafka.services import source
    from tests.conftest import make_corpus

    job = source.Job(WORDCOUNT, make_corpus(home / "warm-up-input", 0.1), home / "warm-up")
    source.prepare(job, settings)
    source.submit(job, settings)
    source.wait(settings, job.pipeline_id, lambda _s: None, timeout=120)


def write_results(out: Path, results: dict[str, Any], plot: Callable[[dict[str, Any], Path], None],
                  print_table: Callable[[dict[str, Any]], None]) -> None:
    """The JSON, the PNG beside it, the table on stdout."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    plot(results, out.with_suffix(".png"))
    print_table(results)
    print(f"\nwritten: {out} and {out.with_suffix('.png')}")
