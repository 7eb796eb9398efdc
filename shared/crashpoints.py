"""Crash points: a named place between two durable steps where a test can make a worker die.

A crash point is a call ``crash_point("shuffler.after_shuffle_mark", pipeline)`` at a boundary
such as "the barrier is marked in Redis, the end markers are not sent yet" (etcd's gofail,
TiKV's fail-rs). Every point is declared once, in POINTS below, with what a crash there
proves; the crash-point suite (tests/crashpoints) arms each in turn, so a new point is
tested as soon as it is declared, and a test fails if a call names an undeclared point or
a declared point has no call.

Disarmed (the default) a call is one check of a module-level flag. A worker is armable only
when it starts with MAPREDUCE_CRASH_POINTS_FILE naming a file; each line of that file arms
one point: ``<name> [crash|raise|stall:<seconds>]`` (crash, the default, is SIGKILL of the
process itself). The file is re-read when it changes, so a running pool can be armed
between jobs. A point fires once per pipeline (once per point when the call names no
pipeline) across every process that shares the file's directory: the process that
restarts after the crash does not die there again.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

import structlog

ENV_FILE = "MAPREDUCE_CRASH_POINTS_FILE"

# name -> the state a crash there leaves behind, which recovery must repair.
POINTS: dict[str, str] = {
    # the source (user side): before its end markers are durable the job must end failed
    "source.after_announce": "spec announced, no record sent",
    "source.mid_stream": "part of the input sent",
    "source.before_end_markers": "every frame durable, no end marker sent",
    # from here the stream is complete in Kafka but not yet recorded so in Redis
    "source.after_end_markers": "every end marker durable, the frame count not recorded",
    # dispatcher
    "dispatcher.after_topics_created": "a pipeline's topics exist, its partitions are "
                                       "not opened, it is not READY",
    "dispatcher.before_ready": "partitions opened and state running, READY not published",
    "dispatcher.batch_forwarded": "frames forwarded to MAP---<id>, not flushed",
    "dispatcher.batch_durable": "forwarded frames durable, SOURCE offsets not committed",
    "dispatcher.after_source_mark": "SOURCE barrier marked complete, MAP end markers not "
                                    "sent",
    "dispatcher.after_map_handoff": "MAP end markers durable, SOURCE offset not committed",
    # mapper
    "mapper.batch_produced": "a batch's pairs sent to SHUFFLE, not acknowledged",
    "mapper.batch_durable": "a batch's pairs durable, MAP offsets not committed",
    "mapper.after_map_mark": "MAP barrier marked complete, SHUFFLE end markers not sent",
    "mapper.after_shuffle_handoff": "SHUFFLE end markers durable, offset not committed",
    # a map-only pipeline's mapper: it hands each part to the sink itself
    "mapper.after_part_mark": "MAP barrier marked for a map-only part, its OUTPUT end "
                              "marker not sent",
    "mapper.after_output_handoff": "a map-only part's end marker durable, offset not "
                                   "committed",
    # shuffler
    "shuffler.mid_emit": "the first of a partition's group messages sent to REDUCE---<id>, "
                         "not flushed",
    "shuffler.after_emit": "a partition's groups durable, SHUFFLE barrier not marked",
    "shuffler.after_shuffle_mark": "SHUFFLE barrier marked complete, REDUCE end markers "
                                   "not sent",
    "shuffler.after_reduce_handoff": "REDUCE end markers durable, low watermark not "
                                     "committed",
    # reducer
    "reducer.batch_produced": "a batch's results sent to OUTPUT, not acknowledged",
    "reducer.batch_durable": "a batch's results durable, REDUCE offsets not committed",
    "reducer.after_reduce_mark": "REDUCE barrier marked, the part's end marker not sent",
    "reducer.after_output_handoff": "the part's end marker durable, offset not committed",
    # sink
    "sink.after_part_written": "a part file written and synced, SINK barrier not marked",
    "sink.after_sink_mark": "SINK barrier marked complete, output not finalized",
    "sink.after_claim": "the pipeline claimed for finalizing, staging not renamed",
    "sink.after_rename": "staging renamed to the output, no _SUCCESS",
    "sink.after_success": "_SUCCESS written, the pipeline not recorded done",
    # a step before the last: the sink hands its parts to the next step
    "sink.after_step_part_sent": "a step's part durable as the next step's input, SINK "
                                 "barrier of the step not marked",
    "sink.after_step_mark": "a step's SINK barrier marked complete, the next step's end "
                            "markers not sent",
    "sink.after_step_handoff": "the next step's end markers durable, OUTPUT low watermark "
                               "not committed",
    # ending a pipeline, from whichever worker ends it
    "lifecycle.after_terminal": "terminal state recorded, spec not tombstoned",
    "lifecycle.after_tombstone": "spec tombstoned, coordination keys not dropped",
}

ACTIONS = ("crash", "raise", "stall")


class CrashPointError(RuntimeError):
    """Raised by a point armed with `raise`: the worker's in-place restart path."""


_file: Path | None = Path(os.environ[ENV_FILE]) if os.environ.get(ENV_FILE) else None
_armed: dict[str, tuple[str, float]] = {}
_mtime: int | None = None


def parse(text: str) -> dict[str, tuple[str, float]]:
    """The points an arming file arms: name -> (action, stall seconds). Unknown names and
    actions are errors: a typo must not silently arm nothing."""
    armed: dict[str, tuple[str, float]] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        name, action = words[0], (words[1] if len(words) > 1 else "crash")
        if name not in POINTS:
            raise ValueError(f"unknown crash point {name!r}")
        kind, _, seconds = action.partition(":")
        if kind not in ACTIONS:
            raise ValueError(f"crash point {name}: unknown action {action!r}; one of {ACTIONS}")
        armed[name] = (kind, float(seconds or 0))
    return armed


def _refresh() -> None:
    global _armed, _mtime
    assert _file is not None
    try:
        mtime = _file.stat().st_mtime_ns
    except FileNotFoundError:
        _armed, _mtime = {}, None
        return
    if mtime != _mtime:
        _armed, _mtime = parse(_file.read_text()), mtime


def _claim(name: str, pipelines: Iterable[str]) -> bool:
    """Whether this call fires: the first call for each (point, pipeline) does."""
    assert _file is not None
    fired = False
    for pipeline in list(pipelines) or ["*"]:
        marker = _file.parent / f"fired.{name}.{pipeline}"
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            fired = True
        except FileExistsError:
            continue
    return fired


def armable() -> bool:
    return _file is not None


def crash_point(name: str, *pipelines: str) -> None:
    """Die here if a test armed this point (see the module's docstring); else nothing."""
    if _file is None:
        return
    if name not in POINTS:
        raise ValueError(f"crash_point({name!r}) is not declared in shared/crashpoints.py")
    _refresh()
    armed = _armed.get(name)
    if armed is None or not _claim(name, pipelines):
        return
    action, seconds = armed
    structlog.get_logger("crashpoints").warning("crash point fired", point=name,
                                                action=action, pipelines=list(pipelines))
    if action == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise CrashPointError(f"crash point {name} raised")
    else:
        time.sleep(seconds)


def fired(directory: Path, name: str, pipeline: str = "*") -> bool:
    """Whether a point fired (for a pipeline): for tests, reading an arming file's directory."""
    return (directory / f"fired.{name}.{pipeline}").exists()
