"""A shuffler's groups for one (pipeline, partition): in memory up to a budget, the rest in
sorted runs on disk, merged when the groups are emitted (Hadoop's spill and merge).

Memory is accounted by the wire size of what was absorbed, times EXPANSION (measured: a
word count frame's groups take about 3.7 times their JSON size as Python objects). The
runs are local files: a crashed or revoked holder loses them with its memory, and the next
owner rebuilds both from the committed low watermark, so nothing on disk needs recovery.
"""

from __future__ import annotations

import heapq
import itertools
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from mapreduce_kafka.shared.codec import hashable

EXPANSION = 4
# Runs merged at once (Hadoop's io.sort.factor): past it, runs are first merged into bigger
# runs, so a small budget on a big input never needs more open files than this.
MERGE_FAN_IN = 64


class Groups:
    """`order`: the order of runs and merges, a function of the key; by default the key's
    JSON bytes (cheapest: runs store them). The sink orders part files by codec.key_order."""

    def __init__(self, spill_dir: Path, fan_in: int = MERGE_FAN_IN,
                 order: Callable[[Any], Any] | None = None) -> None:
        if fan_in < 2:
            raise ValueError("a merge needs a fan-in of at least 2")
        self._order = order
        self._entry_order: Callable[[Entry], Any] = (
            _first if order is None else (lambda entry: order(entry[1])))
        self.memory: dict[Any, list[Any]] = {}
        self.held_bytes = 0  # estimated memory of self.memory
        self.runs: list[Path] = []
        self.fan_in = fan_in
        self._spill_dir = spill_dir
        self._written = 0  # runs ever written: names stay unique after runs are merged

    def add(self, items: list[tuple[Any, list[Any]]], wire_bytes: int) -> None:
        memory = self.memory
        for key, values in items:
            bucket = memory.get(key)
            if bucket is None:
                memory[key] = values
            else:
                bucket.extend(values)
        self.held_bytes += wire_bytes * EXPANSION

    def spill(self) -> Path:
        """Write the groups in memory as one run sorted by the key's JSON bytes, and free
        them."""
        path = self._write_run((key_json, values)
                               for key_json, _, values in self._sorted_memory())

        self.memory = {}
        self.held_bytes = 0
        return path

    def _write_run(self, entries: Iterable[tuple[bytes, list[Any]]]) -> Path:
        self._spill_dir.mkdir(parents=True, exist_ok=True)
        path = self._spill_dir / f"run-{id(self):x}-{self._written:05d}"
        self._written += 1
        with open(path, "wb") as f:
            # key JSON, tab, values JSON: JSON escapes tabs and newlines inside strings
            f.writelines(b"%s\t%s\n" % (key_json, orjson.dumps(values))
                         for key_json, values in entries)
        self.runs.append(path)
        return path

    def _merge_down(self) -> None:
        """Merge the oldest runs into one until at most fan_in - 1 are left, so that the
        final merge reads them and the groups in memory with fan_in streams."""
        while len(self.runs) > self.fan_in - 1:
            # merging k runs removes k - 1: no more than needed (the oldest, unmerged first)
            k = min(self.fan_in, len(self.runs) - (self.fan_in - 1) + 1)
            batch, self.runs = self.runs[:k], self.runs[k:]
            with _opened(batch) as streams:
                self._write_run((key_json, values) for key_json, _, values
                                in _merge_streams(streams, self._entry_order))
            for path in batch:
                path.unlink()

    def merged(self) -> Iterator[tuple[Any, list[Any]]]:
        """Every key once, with all its values, in key-JSON order when there are runs."""
        if not self.runs:
            yield from self.memory.items()
            return
        yield from self.ordered()

    def ordered(self) -> Iterator[tuple[Any, list[Any]]]:
        """Every key once, with all its values, in this holding's order."""
        if not self.runs:  # all in memory: one sort, no merge
            yield from self._sorted_items()
            return
        self._merge_down()
        in_memory = self._sorted_memory()
        with _opened(self.runs) as streams:
            for _, key, values in _merge_streams([*streams, iter(in_memory)],
                                                 self._entry_order):
                yield key, values

    def _sorted_items(self) -> list[tuple[Any, list[Any]]]:
        if self._order is not None and set(map(type, self.memory)) <= {str}:
            return sorted(self.memory.items(), key=_first)  # str order: what key_order gives
        if self._order is not None:
            order = self._order
            return sorted(self.memory.items(), key=lambda kv: order(kv[0]))
        return [(k, v) for _, k, v in self._sorted_memory()]

    def _sorted_memory(self) -> list[Entry]:
        return sorted(((orjson.dumps(k), k, v) for k, v in self.memory.items()),
                      key=self._entry_order)

    def discard(self) -> None:
        for path in self.runs:
            path.unlink(missing_ok=True)
        self.runs = []
        self.memory = {}
        self.held_bytes = 0


def _first(entry: tuple[Any, ...]) -> Any:
    """The key's JSON bytes: the one order of runs, memory and merge."""
    return entry[0]


Entry = tuple[bytes, Any, list[Any]]  # key JSON, key, values


@contextmanager
def _opened(paths: list[Path]) -> Iterator[list[Iterator[Entry]]]:
    """The runs' entries as streams, their files closed at the end."""
    with ExitStack() as stack:
        yield [_read_run(stack.enter_context(open(path, "rb"))) for path in paths]


def _merge_streams(streams: list[Iterator[Entry]],
                   order: Callable[[Entry], Any] = _first) -> Iterator[Entry]:
    """Streams sorted by `order`, merged: every key once, with its values from each
    stream (distinct keys never compare equal in either order)."""
    merged = heapq.merge(*streams, key=order)
    for _, group in itertools.groupby(merged, key=order):
        entries = list(group)
        yield entries[0][0], entries[0][1], [v for entry in entries for v in entry[2]]


def _read_run(f: BinaryIO) -> Iterator[Entry]:
    for line in f:
        key_json, values_json = line.rstrip(b"\n").split(b"\t", 1)
        yield key_json, hashable(orjson.loads(key_json)), orjson.loads(values_json)


def fresh_spill_dir(root: Path, worker: str) -> Path:
    """This worker's spill directory, emptied; also removes the directories of workers on
    this host that no longer run (a SIGKILLed shuffler leaves its runs behind)."""
    root.mkdir(parents=True, exist_ok=True)
    for directory in root.iterdir():
        pid = directory.name.rsplit("-", 1)[-1]
        if directory.name == worker or (pid.isdigit() and not _alive(int(pid))):
            shutil.rmtree(directory, ignore_errors=True)
    return root / worker


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True
