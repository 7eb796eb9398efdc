"""Word count throughput, the framework against sequential Python, measured side by side:
`python -m benchmarks.throughput` (defaults: 10 and 100 MB, 3 runs each, about 10 minutes).

Corpus: the `.py` files of this Python's standard library (`sysconfig` "stdlib" path, not
site-packages or tests), sorted by path, concatenated and repeated until the size is
reached, then cut at a line end and split in 8 files. The same Python version gives the
same bytes. Built once per size under the benchmark's home.

In one invocation, per size, interleaved and repeated (the order rotates every run):
- sequential: the plain Python a user would write, in this process: line by line,
  `re.findall("[A-Za-z0-9]+")`, `collections.Counter`. The goal's yardstick;
- sequential_map_chunk: the pipeline's own code without the framework, in this process:
  `pipelines/wordcount.py`'s `map_chunk` on 1 MiB chunks, the Counters merged. What the
  framework costs on top of the same code;
- two_processes: the same `map_chunk`, one file per task, in a 2-process
  `multiprocessing` pool (the stretch goal: what 2 cores can do without Kafka);
- pyspark (when it is installed: `pip install '.[bench]'`, about 450 MB, needs Java 17):
  a local[2] RDD word count with the same tokenizer, timed from the SparkContext's creation
  (its start-up is part of what a user waits for) to the collected result;
- framework: `pipelines/wordcount.py` end to end on a warm local cluster (Kafka, Redis and
  the default worker pool started once, before any timing), from submission to `_SUCCESS`;
- framework_top_words: `pipelines/top_words.py` the same way, two steps (that word count,
  then the top 10 on one key): what a second step costs (`top_words_over_wordcount`).
Every method's result is compared with the sequential one, and any difference aborts the
run. Before each framework run every worker's peak-RSS counter is reset
(/proc/PID/clear_refs), so the peak RSS reported per role is that run's. The CPU seconds
each role (and the broker and Redis) used during each framework run are read from /proc.

Also: the median end-to-end time of a 100 KB job (--small-runs), and with --scaling, the
100 MB job with 1, 2 and 4 mappers and with 4, 8 and 16 partitions.

Writes benchmarks/results/throughput.json and .png, prints a table.
"""

from __future__ import annotations

import argparse
import collections
import functools
import heapq
import multiprocessing
import os
import re
import shutil
import statistics
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import default_out, write_results
from mapreduce_kafka.examples import TOP_WORDS, WORDCOUNT
from mapreduce_kafka.services.client import source
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.services.testing.clusters import local_cluster
from mapreduce_kafka.shared import output, redis_client
from mapreduce_kafka.shared.settings import DEFAULT_SPLIT_BYTES, Settings
from mapreduce_kafka.shared.spec import load_module

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


def _chunks(path: Path, size: int = DEFAULT_SPLIT_BYTES) -> Iterator[bytes]:
    """Whole lines, about `size` bytes at a time (as the framework's input splits)."""
    with open(path, "rb") as f:
        rest = b""
        while chunk := f.read(size):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            yield data[:cut]
            rest = data[cut:]
        if rest:
            yield rest


@functools.cache
def _map_chunk() -> Callable[[bytes], list[tuple[str, int]]]:
    return load_module(WORDCOUNT).map_chunk  # type: ignore[no-any-return]


def _count_file(path: Path) -> collections.Counter[str]:
    map_chunk = _map_chunk()
    counts: collections.Counter[str] = collections.Counter()
    for chunk in _chunks(path):
        counts.update(dict(map_chunk(chunk)))
    return counts


def sequential_map_chunk(files: list[Path]) -> tuple[float, dict[str, int]]:
    """The pipeline's own map_chunk, without the framework, in this process."""
    started = time.perf_counter()
    counts: collections.Counter[str] = collections.Counter()
    for path in files:
        counts.update(_count_file(path))
    return time.perf_counter() - started, dict(counts)


def two_processes(files: list[Path]) -> tuple[float, dict[str, int]]:
    """The same map_chunk, a file per task, 2 processes (pool start-up included)."""
    started = time.perf_counter()
    counts: collections.Counter[str] = collections.Counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for part in pool.imap_unordered(_count_file, files):
            counts.update(part)
    return time.perf_counter() - started, dict(counts)


def pyspark_available() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return True


def pyspark_local2(files: list[Path]) -> tuple[float, dict[str, int]]:
    """PySpark local[2], RDD API, the same tokenizer; reduceByKey combines map-side."""
    from pyspark import SparkConf, SparkContext

    started = time.perf_counter()
    conf = SparkConf().setMaster("local[2]").setAppName("wordcount-benchmark").set(
        "spark.ui.enabled", "false").set("spark.ui.showConsoleProgress", "false").set(
        "spark.driver.memory", "2g")
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    try:
        token = TOKEN
        counts = (sc.textFile(",".join(str(p) for p in files))
                  .flatMap(lambda line: token.findall(line))
                  .map(lambda word: (word, 1))
                  .reduceByKey(lambda a, b: a + b)
                  .collectAsMap())
    finally:
        sc.stop()
    return time.perf_counter() - started, dict(counts)


BASELINES: dict[str, Callable[[list[Path]], tuple[float, dict[str, int]]]] = {
    "sequential": sequential, "sequential_map_chunk": sequential_map_chunk,
    "two_processes": two_processes}


def cpu_seconds(settings: Settings, cluster: LocalCluster) -> dict[int, tuple[str, float]]:
    """pid -> (role, CPU seconds so far) for the workers, the broker and Redis."""
    pids = {w.pid: w.role for w in supervisor.running(settings.home)}
    for node in cluster.nodes:  # every broker counts as "broker", every Redis node as "redis"
        pid = cluster.pid(node.name)
        if pid is not None:
            pids[pid] = "broker" if node.kind == "kafka" else "redis"
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid, role in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (role, (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
             ) -> dict[str, float]:
    by_role: dict[str, float] = collections.defaultdict(float)
    for pid, (role, seconds) in after.items():
        by_role[role] += seconds - before.get(pid, (role, 0.0))[1]
    return {role: round(s, 2) for role, s in sorted(by_role.items())}


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
              partitions: int = 4, cluster: LocalCluster | None = None,
              pipeline: Path = WORDCOUNT) -> tuple[float, dict[str, float], dict[str, float]]:
    """Seconds, peak RSS per role, CPU seconds per role (with `cluster`, else empty).
    `expected`: the word counts; for another pipeline, what it must give for them
    (expected_output)."""
    job = source.Job(pipeline, files, out, partitions=partitions)
    source.prepare(job, settings)
    reset_peaks(settings)
    cpu_before = cpu_seconds(settings, cluster) if cluster else {}
    started = time.perf_counter()
    source.submit(job, settings)
    status = source.wait(settings, job.pipeline_id, lambda _s: None, timeout=1800,
                         interval=0.02)
    elapsed = time.perf_counter() - started
    if status.get("state") != "done":
        raise SystemExit(f"job {job.pipeline_id} ended {status.get('state')}: "
                         f"{status.get('reason')}")
    if expected is not None and pipeline != WORDCOUNT:
        if output.read_output(out) != expected_output(pipeline, expected):
            raise SystemExit(f"output of {job.pipeline_id} differs from the sequential "
                             f"result: {output.read_output(out)}")
    elif expected is not None:
        actual = dict(output.read_output(out))
        if actual != expected:
            missing = len(expected.keys() - actual.keys())
            wrong = sum(1 for k in expected.keys() & actual.keys() if expected[k] != actual[k])
            raise SystemExit(f"output of {job.pipeline_id} differs from the sequential "
                             f"result: {missing} keys missing, {wrong} values wrong")
    cpu = cpu_used(cpu_before, cpu_seconds(settings, cluster)) if cluster else {}
    return elapsed, peak_rss_mb(settings), cpu


def expected_output(pipeline: Path, counts: dict[str, int]) -> list[tuple[str, int]]:
    """What `pipeline` gives for these word counts: top_words.py's 10 largest (count,
    word), as (word, count), largest first."""
    assert pipeline == TOP_WORDS
    return [(word, n) for n, word in heapq.nlargest(10, ((n, w) for w, n in counts.items()))]


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
    parser.add_argument("--no-pyspark", action="store_true",
                        help="leave PySpark out even when it is installed")
    parser.add_argument("--shuffle-memory", type=int, default=None, metavar="MB",
                        help="the shufflers' memory budget (default: the workers' default)")
    parser.add_argument("--home", type=Path, default=None,
                        help="where the cluster and corpora live (default: a new temp dir)")
    parser.add_argument("--cluster", choices=("single", "replicated"), default="single",
                        help="one broker and one Redis; or three brokers, every topic at "
                             "replication factor 3, Redis with replicas and Sentinel")
    parser.add_argument("--redis-wait", type=int, default=None, metavar="N",
                        help="replicas that must hold each coordination write (WAIT N); "
                             "default: the URL's (1 with Sentinel): 0 measures what WAIT costs")
    parser.add_argument("--out", type=Path, default=None,
                        help="default out/benchmarks/throughput.json (or "
                             "throughput-replicated.json); the committed results are in "
                             "benchmarks/results/")
    args = parser.parse_args(argv)
    replicated = args.cluster == "replicated"
    out = args.out or default_out("throughput-replicated.json" if replicated
                                  else "throughput.json")
    sizes = [float(s) for s in args.sizes.split(",")]
    baselines = dict(BASELINES)
    if pyspark_available() and not args.no_pyspark:
        baselines["pyspark"] = pyspark_local2

    with local_cluster("mapreduce-throughput-", args.home, replicated) as (home, settings,
                                                                          cluster):
        if args.shuffle_memory:
            settings = settings.with_(shuffle_memory_mb=args.shuffle_memory)
        if args.redis_wait is not None:
            settings = settings.with_(redis_url=redis_client.with_wait_replicas(
                settings.redis_url, args.redis_wait))
        results: dict[str, Any] = {
            "command": "python -m benchmarks.throughput " + " ".join(argv or sys.argv[1:]),
            "machine": machine(), "cluster": args.cluster,
            "shuffle_memory_mb": settings.shuffle_memory_mb,
            "redis_wait_replicas": redis_client.parse(settings.redis_url).wait_replicas,
            "split_bytes": settings.split_bytes,
            "methods": ["framework", "framework_top_words", *baselines],
            "sizes": {}, "small_job_s": None, "scaling": {}}
        runs = 0
        shutil.rmtree(home / "out", ignore_errors=True)  # a previous invocation's outputs

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
            expected = sequential(files)[1]  # untimed: the result every method must match
            times: dict[str, list[float]] = collections.defaultdict(list)
            rss, cpu = [], []
            spills_before = spills(home)
            methods = ["framework", "framework_top_words", *baselines]
            for run in range(args.repeat):
                for method in methods[run % len(methods):] + methods[:run % len(methods)]:
                    if method == "framework":
                        elapsed, peaks, used = framework(settings, files, out_dir(), expected,
                                                         cluster=cluster)
                        rss.append(peaks)
                        cpu.append(used)
                    elif method == "framework_top_words":
                        elapsed = framework(settings, files, out_dir(), expected,
                                            pipeline=TOP_WORDS)[0]
                    else:
                        elapsed, counts = baselines[method](files)
                        if counts != expected:
                            raise SystemExit(f"{method} disagrees with the sequential result")
                    times[method].append(elapsed)
                    print(f"{size:g} MB {method:<20} run {run}: {elapsed:.2f}s",
                          file=sys.stderr, flush=True)
            medians = {m: statistics.median(t) for m, t in times.items()}
            results["sizes"][f"{size:g}"] = {
                "mb": round(mb, 2),
                "seconds": {m: spread(t) for m, t in times.items()},
                "mb_s": {m: round(mb / medians[m], 2) for m in medians},
                # > 1: the framework is faster than that method (medians)
                "framework_speedup_over": {m: round(medians[m] / medians["framework"], 3)
                                           for m in medians if not m.startswith("framework")},
                # the two-step top 10 against the one-step word count it starts with
                "top_words_over_wordcount": round(
                    medians["framework_top_words"] / medians["framework"], 3),
                "peak_rss_mb_by_role": {role: max(p.get(role, 0.0) for p in rss)
                                        for role in sorted({r for p in rss for r in p})},
                "cpu_s_by_role_median": {role: round(statistics.median(
                    c.get(role, 0.0) for c in cpu), 2) for role in sorted({r for c in cpu
                                                                           for r in c})},
                "shuffler_spills": spills(home) - spills_before,
            }
        small_times = [framework(settings, small, out_dir(), sequential(small)[1])[0]
                       for _ in range(args.small_runs)]
        results["small_job_s"] = spread(small_times) if small_times else None
        if args.scaling:
            results["scaling"] = scaling(settings, home, out_dir)

    write_results(out, results, plot, print_table)
    return 0


def scaling(settings: Settings, home: Path, out_dir: Any) -> dict[str, Any]:
    files = build_corpus(home / "corpus-100", 100)
    expected = sequential(files)[1]
    by_mappers = {}
    for mappers in (1, 2, 4):
        supervisor.scale(settings, {**supervisor.DEFAULT_COUNTS, "mapper": mappers})
        by_mappers[str(mappers)] = round(framework(settings, files, out_dir(), expected)[0], 3)
        print(f"scaling: {mappers} mappers {by_mappers[str(mappers)]}s", file=sys.stderr)
    supervisor.scale(settings, supervisor.DEFAULT_COUNTS)
    by_partitions = {}
    for partitions in (4, 8, 16):
        by_partitions[str(partitions)] = round(
            framework(settings, files, out_dir(), expected, partitions)[0], 3)
        print(f"scaling: {partitions} partitions {by_partitions[str(partitions)]}s",
              file=sys.stderr)
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
    methods = results["methods"]
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, method in enumerate(methods):
        values = [results["sizes"][s]["mb_s"].get(method, 0.0) for s in sizes]
        ax.bar([x - 0.4 + width * (i + 0.5) for x in range(len(sizes))], values, width,
               label=method.replace("_", " "))
    ax.set_xticks(list(range(len(sizes))), [f"{s} MB" for s in sizes])
    ax.set_ylabel("MB/s (median)")
    ax.set_title("Word count throughput, same machine, same run")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def print_table(results: dict[str, Any]) -> None:
    methods = results["methods"]
    print(f"\n{'size':>7}  " + "  ".join(f"{m:>20}" for m in methods))
    for size, r in results["sizes"].items():
        print(f"{size + ' MB':>7}  " + "  ".join(
            f"{r['seconds'][m]['median']:>9.2f}s {r['mb_s'][m]:>6.1f}MB/s" for m in methods))
        print(f"{'':>7}  framework speed-up over: " + ", ".join(
            f"{m} {x:.2f}" for m, x in r["framework_speedup_over"].items()))
        if "top_words_over_wordcount" in r:
            print(f"{'':>7}  two-step top 10 / word count: {r['top_words_over_wordcount']:.2f}")
        print(f"{'':>7}  peak RSS MB: " + ", ".join(
            f"{role} {mb:g}" for role, mb in r["peak_rss_mb_by_role"].items()))
        print(f"{'':>7}  CPU s per framework run: " + ", ".join(
            f"{role} {s:g}" for role, s in r["cpu_s_by_role_median"].items()))
    small = results["small_job_s"]
    if small:
        print(f"\n100 KB job end to end: median {small['median']:.2f}s "
              f"(min {small['min']:.2f}, max {small['max']:.2f}, n={small['n']})")
    if results["scaling"]:
        print(f"scaling (100 MB, seconds): {results['scaling']}")


if __name__ == "__main__":
    sys.exit(main())
