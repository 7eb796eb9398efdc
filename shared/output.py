"""A job's output directory: written all or nothing (Hadoop's convention).

Each reduce partition becomes `part-NNNNN` (JSON lines, one [key, value] array per line,
sorted by key) in a staging directory beside the output: written to a temporary name,
fsynced, renamed. When every part exists, the staging directory is renamed to the output
directory and an empty `_SUCCESS` is written last. A directory without `_SUCCESS` is not a
result."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

SUCCESS = "_SUCCESS"


def staging_dir(output_dir: str | Path, pipeline_id: str) -> Path:
    output = Path(output_dir)
    return output.parent / f".{output.name}.{pipeline_id}.staging"


def part_name(part: int) -> str:
    return f"part-{part:05d}"


def sorted_items(data: dict[Any, Any]) -> list[tuple[Any, Any]]:
    try:
        return sorted(data.items())
    except TypeError:  # keys of mixed types: order by their JSON text instead
        return sorted(data.items(), key=lambda kv: orjson.dumps(kv[0]))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_part(staging: Path, part: int, items: Iterable[tuple[Any, Any]]) -> int:
    """Write a part file durably (temporary name, fsync, rename); returns its line count."""
    staging.mkdir(parents=True, exist_ok=True)
    final = staging / part_name(part)
    temporary = staging / f".{part_name(part)}.{os.getpid()}.tmp"
    lines = 0
    with open(temporary, "wb") as f:
        for k, v in items:
            f.write(orjson.dumps([k, v]) + b"\n")
            lines += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, final)
    _fsync_dir(staging)
    return lines


def finalize(staging: Path, output_dir: str | Path,
             after_rename: Callable[[], None] = lambda: None) -> None:
    """Idempotent: a replay after a crash half-way through finishes the job."""
    output = Path(output_dir)
    if (output / SUCCESS).exists():  # finished already: a zombie's late staging is garbage
        shutil.rmtree(staging, ignore_errors=True)
        return
    if staging.exists():
        for leftover in staging.glob(".part-*.tmp"):
            leftover.unlink()
        if output.exists() and not any(output.iterdir()):
            output.rmdir()  # an empty directory the user made in advance
        os.rename(staging, output)
        _fsync_dir(output.parent)
    after_rename()
    success = output / SUCCESS
    with open(success, "wb") as f:
        os.fsync(f.fileno())
    _fsync_dir(output)


def is_complete(output_dir: str | Path) -> bool:
    return (Path(output_dir) / SUCCESS).exists()


def read_output(output_dir: str | Path) -> list[tuple[Any, Any]]:
    """Every [key, value] line of every part, in part order."""
    items: list[tuple[Any, Any]] = []
    for part in sorted(Path(output_dir).glob("part-*")):
        with open(part, "rb") as f:
            items.extend((k, v) for k, v in map(orjson.loads, f))
    return items
