"""`python -m mapreduce_kafka.examples` (`make examples`): every shipped example run on the
cluster (the configured one, or the local one, started if need be) with `--verify`, as a
user runs it; exit 1 if any output differs from a sequential run, or a run fails."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from mapreduce_kafka.examples import EXAMPLES, Example


def command(example: Example, output: Path) -> list[str]:
    args = [sys.executable, "-m", "mapreduce_kafka.services.cli", "run", str(example.pipeline),
            "--format", example.fmt, "--output", str(output), "--verify"]
    for path in example.inputs:
        args += ["--input", str(path)]
    for name, value in example.params:
        args += ["--param", f"{name}={value}"]
    return args


def main() -> int:
    failed = []
    with tempfile.TemporaryDirectory(prefix="mapreduce-examples-") as scratch:
        for example in EXAMPLES:
            ran = subprocess.run(command(example, Path(scratch) / example.name),
                                 capture_output=True, text=True)
            verdict = next((line for line in ran.stdout.splitlines()
                            if line.startswith("verify:")), "")
            ok = ran.returncode == 0 and verdict.startswith("verify: identical")
            print(f"{'ok  ' if ok else 'FAIL'} {example.name:<16} "
                  f"{verdict or ran.stderr.strip().splitlines()[-1:]}")
            if not ok:
                failed.append(example.name)
    if failed:
        print(f"{len(failed)} of {len(EXAMPLES)} examples differ or failed: {', '.join(failed)}")
        return 1
    print(f"all {len(EXAMPLES)} examples equal their sequential runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
