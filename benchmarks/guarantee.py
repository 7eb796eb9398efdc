"""What exactly-once costs: `python -m benchmarks.guarantee --mb 30 --repeat 5`.

Starts its own local Kafka and Redis on free ports in a temporary home and the default
worker pool, runs one untimed warm-up job, then the same word count job (a corpus of --mb
megabytes, the shipped samples repeated) alternately with `--guarantee exactly-once` and
`--guarantee at-least-once`, --repeat times each, interleaved so that drift on a shared
machine hits both alike. Each run is timed from submission to `_SUCCESS` and its output is
checked against the sequential result. Writes benchmarks/results/guarantee.json and prints
a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from benchmarks.common import WORDCOUNT, default_out, warm_up
from mapreduce_kafka.services.client import reference, source
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing.clusters import local_cluster
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.shared import output

GUARANTEES = ("exactly-once", "at-least-once")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=30, help="input size per job")
    parser.add_argument("--repeat", type=int, default=5, help="runs per guarantee")
    parser.add_argument("--out", type=Path, default=default_out("guarantee.json"),
                        help="default out/benchmarks/guarantee.json; the committed results "
                             "are in benchmarks/results/")
    args = parser.parse_args(argv)

    times: dict[str, list[float]] = {g: [] for g in GUARANTEES}
    with local_cluster("mapreduce-guarantee-") as (home, settings, _cluster):
        supervisor.scale(settings, supervisor.DEFAULT_COUNTS)
        inputs = make_corpus(home / "input", args.mb)
        warm_up(settings, home)
        expected = None
        for run in range(args.repeat):
            for guarantee in GUARANTEES if run % 2 == 0 else reversed(GUARANTEES):
                job = source.Job(WORDCOUNT, inputs, home / f"out-{guarantee}-{run}",
                                 guarantee=guarantee)
                source.prepare(job, settings)
                started = time.monotonic()
                source.submit(job, settings)
                status = source.wait(settings, job.pipeline_id, lambda _s: None, timeout=600)
                elapsed = time.monotonic() - started
                if status.get("state") != "done":
                    raise SystemExit(f"{guarantee} run {run} ended {status.get('state')}")
                assert job.spec is not None
                expected = expected or reference.run_sequential(job.spec, job.files)
                comparison = reference.compare(expected, output.read_output(job.output_dir))
                if not comparison.equal:
                    raise SystemExit(f"{guarantee} run {run}: {comparison.summary()}")
                times[guarantee].append(round(elapsed, 3))
                print(f"{guarantee:<14} run {run}: {elapsed:.2f}s, output verified",
                      file=sys.stderr, flush=True)

    medians = {g: statistics.median(t) for g, t in times.items()}
    summary = {
        "command": "python -m benchmarks.guarantee " + " ".join(argv or sys.argv[1:]),
        "input_mb": args.mb,
        "runs_s": times,
        "median_s": medians,
        "at_least_once_over_exactly_once": round(
            medians["at-least-once"] / medians["exactly-once"], 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    for guarantee in GUARANTEES:
        runs = times[guarantee]
        print(f"{guarantee:<14} median {medians[guarantee]:.2f}s  "
              f"(min {min(runs):.2f}, max {max(runs):.2f}, n={len(runs)})")
    print(f"time ratio at-least-once / exactly-once: "
          f"{summary['at_least_once_over_exactly_once']}")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
