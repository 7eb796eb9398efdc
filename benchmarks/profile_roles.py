"""Where a word count job's time goes, per role, with py-spy:
`python -m benchmarks.profile_roles --mb 100` (needs `pip install py-spy`; the profiler
attaches to other processes, which needs root or ptrace permission).

Starts a local cluster and the default worker pool, attaches `py-spy record` (100 samples/s,
idle samples included) to every worker, runs one word count job of --mb megabytes (the
corpus of benchmarks/throughput.py), then writes per worker the collapsed stacks and a
summary: for each role, the share of samples whose innermost frame is each function, and
the share spent waiting in librdkafka (consume/flush/poll) or idle. Writes
benchmarks/results/profiles/<role>-<n>.txt and prints the summary.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import default_out, warm_up
from benchmarks.throughput import WORDCOUNT, build_corpus
from mapreduce_kafka.services.client import source
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing.clusters import local_cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=100)
    parser.add_argument("--top", type=int, default=8, help="functions shown per role")
    parser.add_argument("--out", type=Path, default=default_out("profiles"),
                        help="default out/benchmarks/profiles; the committed profiles are in "
                             "benchmarks/results/profiles")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")

    with local_cluster("mapreduce-profile-") as (home, settings, _cluster):
        args.out.mkdir(parents=True, exist_ok=True)
        supervisor.scale(settings, supervisor.DEFAULT_COUNTS)
        files = build_corpus(home / "corpus", args.mb)
        warm_up(settings, home)
        workers = supervisor.running(home)
        recorders = {
            f"{w.role}-{w.index}": subprocess.Popen(
                [py_spy, "record", "--pid", str(w.pid), "--rate", "100", "--idle",
                 "--format", "raw", "--output", str(args.out / f"{w.role}-{w.index}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for w in workers}
        time.sleep(1.0)  # py-spy attaches
        job = source.Job(WORDCOUNT, files, home / "out")
        source.prepare(job, settings)
        started = time.perf_counter()
        source.submit(job, settings)
        source.wait(settings, job.pipeline_id, lambda _s: None, timeout=1800, interval=0.05)
        print(f"job: {args.mb:g} MB in {time.perf_counter() - started:.2f}s", flush=True)
        for recorder in recorders.values():
            recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for name, recorder in recorders.items():
            if recorder.wait(timeout=60) not in (0, -signal.SIGINT, 1):
                said = recorder.stderr.read() if recorder.stderr else b""
                print(f"py-spy for {name}: {said.decode()[-300:]}")
    summarize(args.out, args.top)
    return 0


# A sample whose innermost Python line is one of these is waiting on librdkafka (a fetch, a
# delivery, a commit round trip), on a socket or on a timer, not computing.
WAITING = (".consume(", ".flush(", "commit(", ".poll(", "sleep(", ".wait(", "list_topics(",
           "_read_from_socket")
REPO = Path(__file__).resolve().parents[1]


def source_line(frame: str) -> str:
    """`function (path:line)` -> the text of that line, when the file is this repo's."""
    location = frame.rpartition("(")[2].rstrip(")")
    path, _, line = location.rpartition(":")
    file = REPO / path
    if line.isdigit() and file.is_file():
        lines = file.read_text().splitlines()
        if 0 < int(line) <= len(lines):
            return lines[int(line) - 1].strip()
    return ""


def summarize(directory: Path, top: int) -> None:
    by_role: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for path in sorted(directory.glob("*.txt")):
        role = path.stem.rsplit("-", 1)[0]
        for line in path.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            if not stack or not samples.isdigit():
                continue
            innermost = stack.split(";")[-1]
            by_role[role][innermost] += int(samples)
    for role, counts in sorted(by_role.items()):
        total = sum(counts.values())
        waiting = sum(c for f, c in counts.items()
                      if any(w in source_line(f) or w in f for w in WAITING))
        print(f"\n{role}: {total} samples, {100 * waiting / total:.0f}% waiting (librdkafka "
              "fetch/delivery/commit, sockets, timers)")
        for function, count in counts.most_common(top):
            text = source_line(function)
            print(f"  {100 * count / total:5.1f}%  {function[:70]}" + (f"  {text[:60]}" if text
                                                                       else ""))


if __name__ == "__main__":
    sys.exit(main())
