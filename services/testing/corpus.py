"""Input of any size for jobs in tests and benchmarks, made of real text."""

from __future__ import annotations

import contextlib
from pathlib import Path

from mapreduce_kafka.examples import SAMPLES


def make_corpus(directory: Path, megabytes: float, files: int = 4) -> list[Path]:
    """Real text (the shipped samples), repeated to size; every repetition adds its own
    words, so the key set grows with the input."""
    directory.mkdir(parents=True, exist_ok=True)
    base = b"".join(p.read_bytes() for p in sorted((SAMPLES / "text").iterdir()))
    lines = base.splitlines()
    target = int(megabytes * 1e6)
    paths = [directory / f"input-{i:02d}.txt" for i in range(files)]
    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(open(p, "wb")) for p in paths]
        written = rep = 0
        while written < target:
            chunk = b"\n".join(line + b" rep%d" % (rep % 997) for line in lines) + b"\n"
            handles[rep % files].write(chunk)
            written += len(chunk)
            rep += 1
    return paths
