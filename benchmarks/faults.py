"""Randomized fault injection, many trials: `python -m benchmarks.faults --trials 50 --seed 1`.

Starts its own local Kafka and Redis on free ports in a temporary home, a default worker
pool, and runs one job per trial, of a pipeline shape drawn from the seed (word count on a
corpus of --mb megabytes; a set-based mapper without a combiner and a pipeline with dict and
list values, each on its share of it: services/testing/fault_harness.py), while a seeded plan of
faults (SIGKILL and SIGSTOP of random workers of random roles, broker and Redis kill -9
and restart, a source killed mid-stream) is injected. Faults land within a horizon that,
unless given, is a share of a fault-free job of that shape measured first (the JSON
records it). Trial i uses seed S+i: re-run one with --seed S+i --trials 1. Writes
benchmarks/results/faults.json and prints a table.

--cluster replicated runs on three brokers and Redis with Sentinel instead, with faults
that leave a node down until the trial ends (the leader of the job's partitions, the active
controller, the Redis primary) or restart every broker in turn, beside worker kills and
stops; it writes benchmarks/results/faults-replicated.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from benchmarks.common import default_out
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing.clusters import local_cluster
from mapreduce_kafka.services.testing.fault_harness import (
    KINDS,
    REPLICATED_KINDS,
    SHAPES,
    Harness,
    plan,
    shapes_for,
)
from mapreduce_kafka.shared.resubscribe_strategies import DEFAULT_STRATEGY, STRATEGIES

HORIZON_SHARE = 0.8  # of a fault-free job: later faults would often find the job done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", type=int, default=3, help="faults per trial")
    parser.add_argument("--mb", type=float, default=80, help="input size per job")
    parser.add_argument("--horizon", type=float, default=None,
                        help="faults land in [0.5, horizon] s after submission (default: "
                             f"{HORIZON_SHARE} of a fault-free job measured first)")
    parser.add_argument("--cluster", choices=("single", "replicated"), default="single",
                        help="one broker and one Redis, or three brokers and Redis with "
                             "Sentinel")
    parser.add_argument("--kinds", default=None,
                        help=f"fault kinds (default, single: {','.join(KINDS)}; replicated: "
                             f"{','.join(REPLICATED_KINDS)})")
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help="pipeline shapes to draw from (services/testing/fault_harness.py)")
    parser.add_argument("--resubscribe", choices=STRATEGIES,
                        default=DEFAULT_STRATEGY, help="the workers' strategy")
    parser.add_argument("--out", type=Path, default=None,
                        help="default out/benchmarks/faults.json, or "
                             "faults-replicated.json; the committed results are in "
                             "benchmarks/results/")
    args = parser.parse_args(argv)
    replicated = args.cluster == "replicated"
    kinds = tuple((args.kinds or ",".join(REPLICATED_KINDS if replicated else KINDS))
                  .split(","))
    out = args.out or default_out("faults-replicated.json" if replicated else "faults.json")

    with local_cluster("mapreduce-faults-", replicated=replicated) as (home, settings,
                                                                      cluster):
        settings = settings.with_(resubscribe=args.resubscribe)
        results = []
        started = time.time()
        supervisor.scale(settings, supervisor.DEFAULT_COUNTS)
        shapes = shapes_for(home / "input", args.mb, tuple(args.shapes.split(",")))
        harness = Harness(settings, cluster, home, shapes,
                          log=lambda line: print(line, file=sys.stderr, flush=True))
        baselines = {name: harness.baseline(shape) for name, shape in shapes.items()}
        horizons = {name: args.horizon or max(1.0, round(HORIZON_SHARE * b, 2))
                    for name, b in baselines.items()}
        print(f"fault-free jobs (s): {baselines}; faults land in [0.5, horizon] s: {horizons}",
              file=sys.stderr, flush=True)
        for i in range(args.trials):
            seed = args.seed + i
            shape = shapes[random.Random(f"shape-{seed}").choice(sorted(shapes))]
            results.append(harness.run(seed, plan(seed, args.faults, horizons[shape.name],
                                                  kinds), shape=shape))
    restarts = sum(log.read_text().count('"restarting worker"')
                   for log in (home / "logs").glob("*.log"))

    injected = Counter(f["kind"] for r in results for f in r.injected)
    durations = [r.job_s for r in results if r.expected_state == "done"]
    summary = {
        "command": "python -m benchmarks.faults " + " ".join(argv or sys.argv[1:]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "input_mb": args.mb, "resubscribe": args.resubscribe, "cluster": args.cluster,
        "fault_free_job_s": baselines, "horizon_s": horizons,
        "trials_per_shape": dict(Counter(r.shape for r in results)),
        "mismatched_per_shape": dict(Counter(r.shape for r in results if not r.ok)),
        "stuck_trials": sum("did not finish within" in r.error for r in results),
        "trials": len(results),
        "mismatched_trials": sum(not r.ok for r in results),
        "faults_injected": dict(injected), "faults_skipped_job_already_done":
            sum(len(r.skipped) for r in results),
        "workers_replaced_after_sigkill": injected.get("kill", 0),
        "in_place_worker_restarts": restarts,
        "lost_keys": sum(r.missing for r in results),
        "duplicated_keys": sum(r.duplicated for r in results),
        "wrong_values": sum(r.different for r in results),
        "unexpected_keys": sum(r.unexpected for r in results),
        "job_duration_s": {"min": min(durations, default=0), "max": max(durations, default=0),
                           "median": statistics.median(durations) if durations else 0},
        "trials_detail": [asdict(r) | {"ok": r.ok} for r in results],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print_table(summary)
    print(f"\nwritten: {out}")
    return 0 if summary["mismatched_trials"] == 0 else 1


def print_table(summary: dict) -> None:
    rows = [
        ("trials", summary["trials"]),
        ("mismatched trials", summary["mismatched_trials"]),
        ("stuck trials (timed out)", summary["stuck_trials"]),
        *((f"trials: {k}", v) for k, v in sorted(summary["trials_per_shape"].items())),
        *((f"faults injected: {k}", v) for k, v in sorted(summary["faults_injected"].items())),
        ("faults not injected (job already done)", summary["faults_skipped_job_already_done"]),
        ("in-place worker restarts", summary["in_place_worker_restarts"]),
        ("lost keys", summary["lost_keys"]),
        ("duplicated keys", summary["duplicated_keys"]),
        ("wrong values", summary["wrong_values"]),
        ("job duration s (min / median / max)", "{min} / {median} / {max}".format(
            **summary["job_duration_s"])),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    sys.exit(main())
