"""What per-pipeline topics cost in rebalances, per resubscription strategy:
`python -m benchmarks.rebalance` (defaults finish in about 8 minutes on 2 cores).

For each strategy: a fresh pool (W mappers, W reducers), a warm-up job, R runs of the
small job alone (its baseline), one run of the long pipeline P0 alone (P0's baseline), then
R repetitions of P0 with K small pipelines announced every --interval seconds while P0 is
mid-map. Measured from the workers' own log events (see services/testing/rebalance_metrics.py):
  stall      per mapper, the gap in P0 progress around each change of the pipeline set
  pickup     announcement -> first record processed; announcement -> job done
  fairness   a small job's time beside P0 / the same job's time alone (the slowdown)
  redelivered P0 frames mapped more than once (replays caused by rebalances)
  p0_ratio   P0 end-to-end time / the baseline's
Then each strategy is checked against the goals (GOALS below), the stall goal against
`reconnect`'s stall in the same run. Writes benchmarks/results/rebalance.json and
rebalance.png, prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import default_out, write_results
from mapreduce_kafka.examples import WORDCOUNT
from mapreduce_kafka.services.client import source
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing import rebalance_metrics as metrics
from mapreduce_kafka.services.testing.clusters import local_cluster
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.shared.resubscribe_strategies import STRATEGIES
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.store import Store

# What a strategy must reach: P0's stall beyond its normal batch gap (median over the
# announcements) under STALL_S and at most STALL_SHARE of reconnect's; pickup median under
# PICKUP_MEDIAN_S and every one under PICKUP_MAX_S; a small job beside P0 at most FAIRNESS
# times as long as alone; P0 with the announcements at most P0_RATIO times P0 alone.
GOALS = {"stall_s": 0.05, "stall_share_of_reconnect": 0.1, "pickup_median_s": 0.5,
         "pickup_max_s": 1.0, "fairness": 2.0, "p0_ratio": 1.10}


def submit(settings: Settings, inputs: list[Path], out: Path, partitions: int) -> source.Job:
    job = source.Job(WORDCOUNT, inputs, out, partitions=partitions)
    source.prepare(job, settings)
    source.submit(job, settings)
    return job


def wait_done(settings: Settings, pipeline_id: str, done_at: dict[str, float]) -> None:
    source.wait(settings, pipeline_id, lambda s: None, timeout=600, interval=0.05)
    done_at[pipeline_id] = time.time()


def start_pool(settings: Settings, workers: int) -> None:
    supervisor.stop_all(settings.home)
    os.environ["MAPREDUCE_LOG_LEVEL"] = "DEBUG"  # the per-batch events the metrics read
    supervisor.scale(settings, {"dispatcher": 1, "shuffler": 2, "sink": 1,
                                "mapper": workers, "reducer": workers})


def one_run(settings: Settings, args: argparse.Namespace, p0_inputs: list[Path],
            small_inputs: list[Path], work: Path, announce: int) -> dict[str, Any]:
    store = Store(settings.redis_url)
    started = time.time()
    p0 = submit(settings, p0_inputs, work / f"p0-{time.monotonic_ns()}", args.partitions)
    done_at: dict[str, float] = {}
    waiters = [threading.Thread(target=wait_done, args=(settings, p0.pipeline_id, done_at))]
    waiters[0].start()
    deadline = time.monotonic() + 120
    while store.ended_counts(p0.pipeline_id)["mapped"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)  # until P0 is being mapped: announcements must land mid-run
    announced: dict[str, float] = {}
    for _ in range(announce):
        time.sleep(args.interval)  # the schedule of announcements is the experiment
        announced_at = time.time()
        job = submit(settings, small_inputs, work / f"pk-{time.monotonic_ns()}",
                     args.partitions)
        announced[job.pipeline_id] = announced_at
        waiter = threading.Thread(target=wait_done, args=(settings, job.pipeline_id, done_at))
        waiter.start()
        waiters.append(waiter)
    for waiter in waiters:
        waiter.join()
    events = metrics.read_events((settings.home / "logs").glob("*.log"), since=started)
    batch_list = metrics.batches(events)
    changes = [t for t in metrics.set_changes(events) if t > started]
    p0_frames = int(store.pipeline(p0.pipeline_id).get("frames") or 0)
    p0_mapped_at = metrics.map_ended(events, p0.pipeline_id)
    late = [at for at in announced.values() if p0_mapped_at is None or at >= p0_mapped_at]
    per_worker = metrics.stalls(batch_list, p0.pipeline_id, changes)
    pickups = []
    for pipeline_id, at in announced.items():
        first = metrics.first_batch(batch_list, pipeline_id)
        pickups.append({"first_record_s": None if first is None else round(first - at, 3),
                        "done_s": round(done_at[pipeline_id] - at, 3),
                        "phases_s": metrics.phases(events, pipeline_id, at, first)})
    return {
        "p0_s": round(done_at[p0.pipeline_id] - started, 3),
        "stall_per_mapper": per_worker,
        "pickup": pickups,
        "p0_frames": p0_frames,
        "redelivered_frames": metrics.processed(batch_list, p0.pipeline_id) - p0_frames,
        "set_changes": len(changes),
        # an announcement after P0's map stage ended measures no stall: P0 must be bigger
        "announced_after_p0_mapped": len(late),
    }


def small_alone(settings: Settings, inputs: list[Path], work: Path, partitions: int) -> float:
    """Submission to done of the small job on the warm cluster with nothing else running."""
    started = time.time()
    job = submit(settings, inputs, work / f"alone-{time.monotonic_ns()}", partitions)
    done_at: dict[str, float] = {}
    wait_done(settings, job.pipeline_id, done_at)
    return done_at[job.pipeline_id] - started


def summarize(runs: list[dict[str, Any]], baseline_s: float,
              alone_s: list[float]) -> dict[str, Any]:
    max_stalls = [w["max"] for r in runs for w in r["stall_per_mapper"].values()]
    total_stalls = [w["total"] for r in runs for w in r["stall_per_mapper"].values()]
    excess_max = [w["excess_max"] for r in runs for w in r["stall_per_mapper"].values()]
    excess_total = [w["excess_total"] for r in runs for w in r["stall_per_mapper"].values()]
    normal = [w["normal_gap"] for r in runs for w in r["stall_per_mapper"].values()]
    firsts = [p["first_record_s"] for r in runs for p in r["pickup"]
              if p["first_record_s"] is not None]
    dones = [p["done_s"] for r in runs for p in r["pickup"]]

    def spread(values: list[float]) -> dict[str, float]:
        if not values:
            return {"median": 0.0, "min": 0.0, "max": 0.0}
        return {"median": round(statistics.median(values), 3),
                "min": round(min(values), 3), "max": round(max(values), 3)}

    phase_names = ("topics_created", "ready", "assigned", "first_batch")
    phase_medians = {}
    for name in phase_names:
        values = [p["phases_s"][name] for r in runs for p in r["pickup"]
                  if p["phases_s"][name] is not None]
        phase_medians[name] = round(statistics.median(values), 3) if values else None
    alone = statistics.median(alone_s) if alone_s else 0.0
    return {
        "small_alone_s": spread(alone_s),
        "fairness_slowdown": round(statistics.median(dones) / alone, 3) if alone and dones
        else None,
        "pickup_phases_median_s": phase_medians,
        "stall_max_s": spread(max_stalls), "stall_total_s": spread(total_stalls),
        "stall_excess_max_s": spread(excess_max), "stall_excess_total_s": spread(excess_total),
        "normal_batch_gap_s": spread(normal),
        "pickup_first_record_s": spread(firsts), "pickup_done_s": spread(dones),
        "redelivered_frames": spread([r["redelivered_frames"] for r in runs]),
        "announced_after_p0_mapped": sum(r["announced_after_p0_mapped"] for r in runs),
        "announced": sum(len(r["pickup"]) for r in runs),
        "p0_s": spread([r["p0_s"] for r in runs]), "baseline_p0_s": round(baseline_s, 3),
        "p0_ratio_to_baseline": round(statistics.median(r["p0_s"] for r in runs) / baseline_s,
                                      3),
    }


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["strategies"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (title, getter) in zip(axes, (
        ("P0 stall per mapper beyond its normal batch gap, longest (s)",
         lambda runs: [w["excess_max"] for r in runs for w in r["stall_per_mapper"].values()]),
        ("pickup: announcement -> first record (s)",
         lambda runs: [p["first_record_s"] for r in runs for p in r["pickup"]
                       if p["first_record_s"] is not None]),
    ), strict=True):
        data = [getter(results["strategies"][n]["runs"]) or [0.0] for n in names]
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=20)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Rebalance cost per resubscription strategy "
                 f"(W={results['params']['workers']}, K={results['params']['announce']}, "
                 f"R={results['params']['repeat']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--workers", type=int, default=2, help="W mappers and W reducers")
    parser.add_argument("--announce", type=int, default=3, help="K pipelines announced")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between them")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5, help="R repetitions per strategy")
    parser.add_argument("--p0-mb", type=float, default=600.0,
                        help="P0's input: it must still be mapping at the last announcement")
    parser.add_argument("--small-mb", type=float, default=0.1,
                        help="the small jobs' input (100 KB by default)")
    parser.add_argument("--out", type=Path, default=default_out("rebalance.json"),
                        help="default out/benchmarks/rebalance.json; the committed results "
                             "are in benchmarks/results/")
    args = parser.parse_args(argv)

    with local_cluster("mapreduce-rebalance-") as (home, base, _cluster):
        p0_inputs = make_corpus(home / "p0", args.p0_mb)
        small_inputs = make_corpus(home / "small", args.small_mb, files=1)
        results: dict[str, Any] = {"params": vars(args) | {"out": str(args.out)},
                                   "machine": f"{os.cpu_count()} cores", "strategies": {}}
        for name in args.strategies.split(","):
            if name not in STRATEGIES:
                parser.error(f"unknown strategy {name!r}: choose from {', '.join(STRATEGIES)}")
            settings = base.with_(resubscribe=name)
            start_pool(settings, args.workers)
            work = home / name
            work.mkdir()
            one_run(settings, args, small_inputs, small_inputs, work, announce=0)  # warm-up
            alone = [round(small_alone(settings, small_inputs, work, args.partitions), 3)
                     for _ in range(args.repeat)]
            baseline = one_run(settings, args, p0_inputs, small_inputs, work, announce=0)
            runs = [one_run(settings, args, p0_inputs, small_inputs, work, args.announce)
                    for _ in range(args.repeat)]
            results["strategies"][name] = {"summary": summarize(runs, baseline["p0_s"], alone),
                                           "baseline": baseline, "small_alone": alone,
                                           "runs": runs}
            print(f"{name}: {json.dumps(results['strategies'][name]['summary'])}",
                  file=sys.stderr, flush=True)
    results["goals"] = GOALS
    results["verdicts"] = verdicts(results["strategies"])
    write_results(args.out, results, plot, print_table)
    return 0


def verdicts(strategies: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each strategy against GOALS; the stall goal against reconnect's in the same run."""
    reconnect = strategies.get("reconnect", {}).get("summary")
    out = {}
    for name, data in strategies.items():
        s = data["summary"]
        stall = s["stall_excess_max_s"]["median"]
        checks = {
            "stall_under_0.05s": stall < GOALS["stall_s"],
            "pickup_median_under_0.5s": s["pickup_first_record_s"]["median"]
            < GOALS["pickup_median_s"],
            "every_pickup_under_1s": s["pickup_first_record_s"]["max"] < GOALS["pickup_max_s"],
            "fairness_at_most_2x": s["fairness_slowdown"] is not None
            and s["fairness_slowdown"] <= GOALS["fairness"],
            "p0_at_most_1.10x_alone": s["p0_ratio_to_baseline"] <= GOALS["p0_ratio"],
        }
        if reconnect is not None:
            checks["stall_at_most_a_tenth_of_reconnect"] = (
                stall <= GOALS["stall_share_of_reconnect"]
                * reconnect["stall_excess_max_s"]["median"])
        out[name] = {"checks": checks, "all_met": all(checks.values())}
    return out


def print_table(results: dict[str, Any]) -> None:
    header = (f"{'strategy':<26}{'gap':>6}{'stall max':>10}{'stall tot':>10}{'excess max':>11}"
              f"{'pickup 1st':>11}{'pickup done':>12}{'fair':>6}{'redeliv':>8}{'P0 s':>7}"
              f"{'P0/base':>8}")
    print(header)
    print("-" * len(header))
    for name, data in results["strategies"].items():
        s = data["summary"]
        print(f"{name:<26}{s['normal_batch_gap_s']['median']:>6.2f}"
              f"{s['stall_max_s']['median']:>10.2f}{s['stall_total_s']['median']:>10.2f}"
              f"{s['stall_excess_max_s']['median']:>11.2f}"
              f"{s['pickup_first_record_s']['median']:>11.2f}{s['pickup_done_s']['median']:>12.2f}"
              f"{s['fairness_slowdown'] or 0:>6.2f}"
              f"{s['redelivered_frames']['median']:>8.0f}{s['p0_s']['median']:>7.1f}"
              f"{s['p0_ratio_to_baseline']:>8.2f}")
    print("(medians over R repetitions and W mappers; seconds. gap: a mapper's normal time "
          "between P0 batches; stall: the P0 gap holding a change; excess: stall - gap; "
          "fair: a small job's time beside P0 / alone)")
    print("\ngoals:")
    for name, verdict in results.get("verdicts", {}).items():
        missed = [check for check, met in verdict["checks"].items() if not met]
        print(f"  {name:<24} {'all met' if not missed else 'missed: ' + ', '.join(missed)}")
    for name, data in results["strategies"].items():
        s = data["summary"]
        if s["announced_after_p0_mapped"]:
            print(f"WARNING {name}: {s['announced_after_p0_mapped']} of {s['announced']} "
                  "announcements came after P0 had finished mapping: their stall is not "
                  "measured; raise --p0-mb")
    print("\npickup, where the time goes (median seconds after the announcement, when each "
          "step ended)")
    print(f"{'strategy':<26}{'topics created':>15}{'READY':>7}{'assigned':>9}{'1st batch':>10}")
    for name, data in results["strategies"].items():
        p = data["summary"]["pickup_phases_median_s"]
        print(f"{name:<26}" + "".join(f"{'-' if v is None else f'{v:.2f}':>{w}}" for v, w in (
            (p["topics_created"], 15), (p["ready"], 7), (p["assigned"], 9),
            (p["first_batch"], 10))))


if __name__ == "__main__":
    sys.exit(main())
