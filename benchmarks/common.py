"""What the benchmarks share: a warm-up job and the way results are written. Their local
cluster is mapreduce_kafka.services.testing.clusters.local_cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mapreduce_kafka import examples
from mapreduce_kafka.shared.settings import Settings

WORDCOUNT = examples.WORDCOUNT
# Where a run writes unless told otherwise: out/ is not tracked. The committed results in
# benchmarks/results/ are the ones docs/measurements.md quotes, replaced only on purpose
# (--out benchmarks/results/NAME.json).
RUNS = Path(__file__).resolve().parents[1] / "out" / "benchmarks"


def default_out(name: str) -> Path:
    return RUNS / name


def warm_up(settings: Settings, home: Path) -> None:
    """One small, untimed job: the first job on a fresh pool also pays for clients, group
    joins and the broker's warm-up."""
    from mapreduce_kafka.services.client import source
    from mapreduce_kafka.services.testing.corpus import make_corpus

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
