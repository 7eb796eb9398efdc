"""Hadoop Streaming's model of data: lines of bytes, each split at its first tab into a key
and a value, sorted by key between the map and the reduce side, through commands run as
subprocesses (tab-separated lines on stdin and stdout).

Inside the framework a streaming line travels as a (key, value) pair of *byte texts*: str
whose characters are the line's bytes, one each (latin-1). Any bytes pass unchanged, and
text order is byte order, the order Hadoop sorts in. A line without a tab is a key alone
(value None), and comes out again without a tab.

A command reports to the framework as Hadoop Streaming's do, on its stderr:
`reporter:counter:GROUP,NAME,AMOUNT` adds to a counter, `reporter:status:MESSAGE` is
logged; everything else it writes there goes to the worker's stderr."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import structlog

from mapreduce_kafka.shared import task_context

log = structlog.get_logger("streaming")

ENCODING = "latin-1"  # one character per byte, both ways


def pair_of(line: bytes) -> tuple[str, str | None]:
    """A line (without its newline) as (key, value): split at the first tab."""
    key, tab, value = line.partition(b"\t")
    return key.decode(ENCODING), (value.decode(ENCODING) if tab else None)


def line_of(key: Any, value: Any) -> bytes:
    """The line a (key, value) pair stands for, without its newline."""
    if value is None:
        return _bytes(key)
    return _bytes(key) + b"\t" + _bytes(value)


def _bytes(text: Any) -> bytes:
    if isinstance(text, str):
        return text.encode(ENCODING)
    raise TypeError(f"a streaming line's key and value are texts, not "
                    f"{type(text).__name__} {text!r:.60}")


def lines_of(data: bytes) -> list[bytes]:
    """A chunk of text input as lines: split at newlines, a trailing `\\r` dropped (mrjob
    reads lines so)."""
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def sorted_lines(lines: Iterable[bytes], sort_values: bool) -> list[bytes]:
    """Lines in the order a reduce (or combine) task reads them: by key, lines of one key in
    the order they came; with `sort_values`, by the whole line (key, then value)."""
    if sort_values:
        return sorted(lines)
    return sorted(lines, key=lambda line: line.split(b"\t", 1)[0])


class CommandFailed(Exception):
    """A step's command could not run, or exited with a non-zero status."""


def command_argv(command: str) -> list[str]:
    """A step command's argv: split as a shell would split words, run without a shell (as
    Hadoop Streaming and mrjob run `mapper_cmd`); write `sh -c '...'` for a pipe."""
    argv = shlex.split(command)
    if not argv:
        raise CommandFailed("a step command is empty")
    return argv


def shell_argv(command: str) -> list[str]:
    """A pre-filter's argv: it runs through `sh -c` (mrjob pipes it into the step)."""
    return ["sh", "-c", command]


def run_command(argv: list[str], lines: Iterable[bytes]) -> list[bytes]:
    """Run a command over lines (each given a newline), return the lines it prints. It
    runs in the worker's current directory and environment (a task's). A status other
    than 0 is CommandFailed, with the last line the command wrote to stderr."""
    data = b"".join(line + b"\n" for line in lines)
    try:
        done = subprocess.run(argv, input=data, capture_output=True, check=False)
    except OSError as exc:
        raise CommandFailed(f"cannot run `{shlex.join(argv)}`: {exc.strerror or exc}") from exc
    other = report(done.stderr)
    if done.returncode != 0:
        last = other.strip().splitlines()[-1:] if other.strip() else []
        said = f": {last[0].decode(errors='replace')[:200]}" if last else ""
        status = (f"was killed by signal {-done.returncode}" if done.returncode < 0
                  else f"exited with status {done.returncode}")
        raise CommandFailed(f"`{shlex.join(argv)[:200]}` {status}{said}")
    if other:
        sys.stderr.buffer.write(other)
        sys.stderr.buffer.flush()
    return lines_of(done.stdout)


def report(stderr: bytes) -> bytes:
    """Take Hadoop Streaming's reporter lines out of what a task wrote to stderr: counters
    go to the task's counters, statuses to the log. Returns the other lines."""
    if b"reporter:" not in stderr:
        return stderr
    other = []
    for line in stderr.splitlines(keepends=True):
        if not report_line(line.rstrip(b"\r\n")):
            other.append(line)
    return b"".join(other)


def report_line(line: bytes) -> bool:
    """Act on one reporter line; False for a line that is not one (left to the caller)."""
    if line.startswith(b"reporter:counter:"):
        fields = line[len(b"reporter:counter:"):].decode("utf-8", "replace").rsplit(",", 1)
        if len(fields) == 2 and "," in fields[0]:
            group, name = fields[0].split(",", 1)
            try:
                amount = int(fields[1])
            except ValueError:
                return False
            task_context.increment_counter(group, name, amount)
            return True
        return False
    if line.startswith(b"reporter:status:"):
        log.info("task status", status=line[len(b"reporter:status:"):].decode(
            "utf-8", "replace"))
        return True
    return False


class Reporter:
    """A task's stderr as a binary file: reporter lines are acted on (mrjob's
    `increment_counter` and `set_status` write them), anything else goes to the process's
    stderr."""

    def __init__(self) -> None:
        self._pending = b""

    def write(self, data: bytes | str) -> int:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._pending += data
        *complete, self._pending = self._pending.split(b"\n")
        for line in complete:
            if not report_line(line):
                sys.stderr.buffer.write(line + b"\n")
        return len(data)

    def flush(self) -> None:
        sys.stderr.buffer.flush()
