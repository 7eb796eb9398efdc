"""Word count throughput, the framework against sequential Python, measured side by side:
`python -m benchmarks.throughput` (defaults: 10 and 100 MB, 3 runs each, about 10 minutes).

Corpus: the `.py` files of this Python's standard library (`sysconfig` "stdlib" path, not
site-packages or tests), sorted by path, concatenated and repeated until the size is
reached, then cut at a line end and split in 8 files. The same Python version gives the
same bytes. Built once per size under the benchmark's home.

In one invocation, per size, interleaved and repeated:
- sequential: the plain Python a user would write, in this process: line by line,
  `re.findall("[A-Za-z0-9]+")`, `collections.Counter`;
- framework: `pipelines/wordcount.py` end to end on a warm local cluster (Kafka, Redis and
  the default worker pool started once, before any timing), from submission to `_SUCCESS`;
  every output is compared with the sequential result, and any difference aborts the run.
Before each framework run every worker's peak-RSS counter is reset (/proc/PID/clear_refs),
so the peak RSS reported per role is that run's.

Also: the median end-to-end time of a 100 KB job (--small-runs), and with --scaling, the
100 MB job with 1, 2 and 4 mappers and with 4, 8 and 16 partitions.

Writes benchmarks/results/throughput.json and .png, prints a table.
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

from benchmarks.common import local_cluster, write_results
from services import output, source, supervisor
from shared.config import Settings

RESULTS = Path(__file__).parent / "results"
WORDCOUNT = Path(__file__).resolve().parents[1] / "pipelines" / "wordcount.py"
TOKEN = re.compile(r"[A-Za-z0-9]+")
CORPUS_FILES = 8


def build_corpus(directory: Path, megabytes: float) -> list[Path]:
    paths = [directory / f"part-{i:02d}.txt" for i in range(CORPUS_FILES)]
    if all(p.exists() for p in paths):
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(p for p in stdlib.rglob("*.py")
                     if "site-packages" not in p.parts and "test" not in p.parts)
    base = b"".join(p.read_bytes() for p in sources)
    target = int(megabytes * 1e6)
    data = (base * (target // len(base) + 1))[:target]
    data = data[:data.rfind(b"\n") + 1]
    step = len(data) // CORPUS_FILES
    start = 0
    for i, path in enumerate(paths):
        end = len(data) if i == CORPUS_FILES - 1 else data.rfind(b"\n", start, start + step) + 1
        path.write_bytes(data[start:end])
        start = end
    return paths


def sequential(files: list[Path]) -> tuple[float, dict[str, int]]:
    """The plain sequential word count a user would write."""
    started = time.perf_counter()
    counts: collections.Counter[str] = collections.Counter()
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                counts.update(TOKEN.findall(line))
    return time.perf_counter() - started, dict(counts)


def reset_peaks(settings: Settings) -> None:
    for worker in supervisor.running(settings.home):
        try:
            Path(f"/proc/{worker.pid}/clear_refs").write_text("5")
        except OSError as exc:  # a worker restarting this instant: its peak starts anew
            print(f"  (peak RSS of {worker.role}-{worker.index} not reset: {exc})",
                  file=sys.stderr)


def peak_rss_mb(settings: Settings) -> dict[str, float]:
    """The largest peak RSS (VmHWM) per role, in MB."""
    peaks: dict[str, float] = {}
    for worker in supervisor.running(settings.home):
        try:
            status = Path(f"/proc/{worker.pid}/status").read_text()
        except OSError:
            continue  # gone since it was listed
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        if match:
            mb = int(match.group(1)) / 1024
            peaks[worker.role] = round(max(peaks.get(worker.role, 0.0), mb), 1)
    return peaks


def framework(settings: Settings, files: list[Path], out: Path, expected: dict[str, int] | None,
              partitions: int = 4) -> tuple[float, dict[str, float]]:
    job = source.Job(WORDCOUNT, files, out, partitions=partitions)
    source.prepare(job, settings)
    reset_peaks(settings)
    started = time.perf_counter()
    source.submit(job, settings)
    status = source.wait(settings, job.pipeline_id, lambda _s: None, timeout=1800,
                         interval=0.02)
    elapsed = time.perf_counter() - started
    if status.get("state") != "done":
        raise SystemExit(f"job {job.pipeline_id} ended {status.get('state')}: "
                         f"{status.get('reason')}")
    if expected is not None:
        actual = dict(output.read_output(out))
        if actual != expected:
            missing = len(expected.keys() - actual.keys())
            wrong = sum(1 for k in expected.keys() & actual.keys() if expected[k] != actual[k])
            raise SystemExit(f"output of {job.pipeline_id} differs from the sequential "
                             f"result: {missing} keys missing, {wrong} values wrong")
    return elapsed, peak_rss_mb(settings)


def spills(home: Path) -> int:
    """Sorted runs the shufflers wrote to disk so far (their "spilled to disk" events)."""
    return sum(path.read_text(errors="replace").count('"spilled to disk"')
               for path in (home / "logs").glob("shuffler-*.log"))


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100", help="corpus sizes in MB (e.g. 10,100,500)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size and method")
    parser.add_argument("--small-runs", type=int, default=5, help="runs of the 100 KB job")
    parser.add_argument("--scaling", action="store_true",
                        help="also 100 MB with 1/2/4 mappers and 4/8/16 partitions")
    parser.add_argument("--shuffle-memory", type=int, default=None, metavar="MB",
                        help="the shufflers' memory budget (default: the workers' default)")
    parser.add_argument("--home", type=Path, default=None,
                        help="where the cluster and corpora live (default: a new temp dir)")
    parser.add_argument("--out", type=Path, default=RESULTS / "throughput.json")
    args = parser.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",")]

    with local_cluster("mapreduce-throughput-", args.home) as (home, settings, _cluster):
        if args.shuffle_memory:
            settings = settings.with_(shuffle_memory_mb=args.shuffle_memory)
        results: dict[str, Any] = {
            "command": "python -m benchmarks.throughput " + " ".join(argv or sys.argv[1:]),
            "machine": machine(), "shuffle_memory_mb": settings.shuffle_memory_mb,
            "sizes": {}, "small_job_s": None, "scaling": {}}
        runs = 0

        def out_dir() -> Path:
            nonlocal runs
            runs += 1
            return home / "out" / f"run-{runs}"

        supervisor.scale(settings, supervisor.DEFAULT_COUNTS)
        small = build_corpus(home / "corpus-0.1", 0.1)
        framework(settings, small, out_dir(), None)  # warm-up: clients, groups, JIT of the broker
        for size in sizes:
            files = build_corpus(home / f"corpus-{size:g}", size)
            mb = sum(p.stat().st_size for p in files) / 1e6
            seq_times, fw_times, rss = [], [], []
            spills_before = spills(home)
            expected = None
            for run in range(args.repeat):
                order = ("seq", "fw") if run % 2 == 0 else ("fw", "seq")
                for method in order:
                    if method == "seq":
                        elapsed, expected = sequential(files)
                        seq_times.append(elapsed)
                    else:
                        if expected is None:
                            expected = sequential(files)[1]
                        elapsed, peaks = framework(settings, files, out_dir(), expected)
                        fw_times.append(elapsed)
                        rss.append(peaks)
                    print(f"{size:g} MB {method:<4} run {run}: {elapsed:.2f}s", file=sys.stderr,
                          flush=True)
            seq_median, fw_median = statistics.median(seq_times), statistics.median(fw_times)
            results["sizes"][f"{size:g}"] = {
                "mb": round(mb, 2),
                "sequential_s": spread(seq_times), "framework_s": spread(fw_times),
                "sequential_mb_s": round(mb / seq_median, 2),
                "framework_mb_s": round(mb / fw_median, 2),
                "ratio_framework_over_sequential_throughput": round(seq_median / fw_median, 3),
                "peak_rss_mb_by_role": {role: max(p.get(role, 0.0) for p in rss)
                                        for role in sorted({r for p in rss for r in p})},
                "shuffler_spills": spills(home) - spills_before,
            }
        small_times = [framework(settings, small, out_dir(), sequential(small)[1])[0]
                       for _ in range(args.small_runs)]
        results["small_job_s"] = spread(small_times)
        if args.scaling:
            results["scaling"] = scaling(settings, home, out_dir)

    write_results(args.out, results, plot, print_table)
    return 0


def scaling(settings: Settings, home: Path, out_dir: Any) -> dict[str, Any]:
    files = build_corpus(home / "corpus-100", 100)
    expected = sequential(files)[1]
    by_mappers = {}
    for mappers in (1, 2, 4):
        supervisor.scale(settings, {**supervisor.DEFAULT_COUNTS, "mapper": mappers})
        by_mappers[str(mappers)] = round(framework(settings, files, out_dir(), expected)[0], 3)
    supervisor.scale(settings, supervisor.DEFAULT_COUNTS)
    by_partitions = {str(p): round(framework(settings, files, out_dir(), expected, p)[0], 3)
                     for p in (4, 8, 16)}
    return {"mb": 100, "seconds_by_mappers": by_mappers,
            "seconds_by_partitions": by_partitions}


def machine() -> dict[str, Any]:
    import os
    import platform

    meminfo = Path("/proc/meminfo").read_text().split("\n")[0]
    return {"cpus": os.cpu_count(), "memory": meminfo.split(":")[1].strip(),
            "python": platform.python_version(), "platform": platform.platform()}


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(results["sizes"])
    seq = [results["sizes"][s]["sequential_mb_s"] for s in sizes]
    fw = [results["sizes"][s]["framework_mb_s"] for s in sizes]
    x = range(len(sizes))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar([i - 0.2 for i in x], seq, 0.4, label="sequential Python")
    ax.bar([i + 0.2 for i in x], fw, 0.4, label="framework, end to end")
    ax.set_xticks(list(x), [f"{s} MB" for s in sizes])
    ax.set_ylabel("MB/s (median)")
    ax.set_title("Word count throughput, same machine, same run")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{'size':>8}  {'sequential s':>13}  {'framework s':>12}  {'seq MB/s':>9}  "
          f"{'fw MB/s':>8}  {'ratio':>6}  peak RSS MB by role")
    for size, r in results["sizes"].items():
        rss = ", ".join(f"{role} {mb:g}" for role, mb in r["peak_rss_mb_by_role"].items())
        print(f"{size + ' MB':>8}  {r['sequential_s']['median']:>13.2f}  "
              f"{r['framework_s']['median']:>12.2f}  {r['sequential_mb_s']:>9.2f}  "
              f"{r['framework_mb_s']:>8.2f}  "
              f"{r['ratio_framework_over_sequential_throughput']:>6.2f}  {rss}")
    small = results["small_job_s"]
    if small:
        print(f"\n100 KB job end to end: median {small['median']:.2f}s "
              f"(min {small['min']:.2f}, max {small['max']:.2f}, n={small['n']})")
    if results["scaling"]:
        print(f"scaling (100 MB, seconds): {results['scaling']}")


if __name__ == "__main__":
    sys.exit(main())
