"""Every durable step of the processing path is followed by a crash point.

The crash-point suite arms the points that are declared; this test finds the boundaries
that should have one, from the code: in the modules a job's records pass through, each
durable call (a producer flush, an offset commit, a Redis write that records a pipeline's
progress, a rename that puts output in place) must be followed, in the same function and
before the next durable call, by a `crash_point(...)` call, or be in ALLOWED with the
reason a crash right after it needs no point of its own. A new flush or barrier mark
without a point therefore fails here until it gets one (declared in shared/crashpoints.py,
so that the suite arms it) or a reason."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The modules a job's records and barriers pass through (not the CLI, the UI, the local
# cluster, logging or the test helpers).
PROCESSING = ["services/roles/*.py", "services/runtime/*.py", "services/client/source.py",
              "shared/output.py"]

# Redis writes that record a pipeline's progress (read from shared/store/): its
# registration, its fields (frame count, part keys, state), barrier marks, mapped frames,
# its terminal state, the sink's claim and the ending's key drop. Not: liveness and worker
# heartbeats, error counts, the staging list (garbage collection), reads.
STORE_WRITES = {"create_pipeline", "update_pipeline", "mark_ended", "add_mapped",
                "finish_pipeline", "claim_finalizing", "forget_pipeline"}
RENAMES = {"replace", "rename"}  # os.replace / os.rename / Path.replace of a file

# (path, function, call) -> why a crash right after this call needs no point of its own.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("services/client/source.py", "submit", "create_pipeline"):
        "registered, not announced: the watchdog fails it, as at source.after_announce",
    ("services/client/source.py", "submit", "update_pipeline"):
        "the stream recorded complete: the rest of the job runs without the source",
    ("services/roles/dispatcher.py", "run", "commit"):
        "the end of a batch: a crash after it is a crash before the next batch",
    ("services/roles/dispatcher.py", "_process", "flush"):
        "forwarded frames durable, end not marked: dispatcher.batch_durable's state",
    ("services/roles/dispatcher.py", "_ensure_ready", "flush"):
        "READY durable; what follows is the batch's forwarding (dispatcher.batch_forwarded)",
    ("services/roles/dispatcher.py", "_resend_handoff", "flush"):
        "a repair, repeated by the next watch if cut short; the hand-offs it repeats have points",
    ("services/roles/mapper.py", "on_end", "flush"):
        "pairs durable, the partition's end not marked: mapper.batch_durable's state",
    ("services/roles/mapper.py", "after_durable", "add_mapped"):
        "called by _commit_durable, whose mapper.batch_durable point follows",
    ("services/roles/reducer.py", "on_end", "flush"):
        "results durable, the partition's end not marked: reducer.batch_durable's state",
    ("services/roles/sink.py", "emit", "update_pipeline"):
        "the part's key count, for display; the barrier mark and its point follow",
    ("services/roles/sink.py", "_produce_part", "flush"):
        "a part produced to a topic: sink.after_part_written follows in the caller",
    ("services/roles/sink.py", "_produce_success", "flush"):
        "the topic output's success record: sink.after_success follows in the caller",
    ("services/runtime/commit_policy.py", "commit", "commit"):
        "the commit primitive: its callers' points come before it",
    ("services/runtime/holding.py", "run", "flush"):
        "the batch's emits flushed and passed their own points already; also the shutdown path",
    ("services/runtime/holding.py", "_commit_low_watermarks", "commit"):
        "the end of a batch: a crash after it is a crash before the next batch",
    ("services/runtime/lifecycle.py", "cleanup", "forget_pipeline"):
        "the ending's last step: the pipeline's keys are gone, nothing is left to repair",
    ("services/runtime/pipeline_worker.py", "_commit_durable", "commit"):
        "the end of a batch: a crash after it is a crash before the next batch",
    ("services/runtime/process.py", "close", "flush"):
        "a shutdown path: a stopping worker flushes what it produced",
    ("services/runtime/producer.py", "flush", "flush"):
        "the flush primitive: its callers' points follow it",
    ("services/runtime/producer.py", "open_partitions", "flush"):
        "markers that open new partitions: dispatcher.before_ready follows in the caller",
    ("shared/output.py", "write_part", "replace"):
        "a part file in the staging directory: sink.after_part_written follows in the caller",
    ("shared/output.py", "finalize", "rename"):
        "the caller's after_rename hook (sink.after_rename) runs next",
}


@dataclass(frozen=True)
class Step:
    line: int
    col: int
    call: str  # the durable call's name, or "crash_point"


def durable_name(call: ast.Call) -> str | None:
    """The name of a durable call, or None. A flush counts on a producer only (not a file or
    a stream); a commit as a method or the commit_policy function."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id if func.id == "commit" else None
    if not isinstance(func, ast.Attribute):
        return None
    receiver = ast.unparse(func.value)
    if func.attr == "flush":
        return "flush" if "producer" in receiver.lower() or receiver == "self" else None
    if func.attr == "commit" or func.attr in STORE_WRITES:
        return func.attr
    if func.attr in RENAMES and receiver == "os":
        return func.attr
    return None


def steps_of(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[Step]:
    """The function's durable calls and crash points, in source order; a nested function is
    its own function, a lambda (a hook passed on) is part of this one."""
    found: list[Step] = []
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "crash_point":
                found.append(Step(node.lineno, node.col_offset, "crash_point"))
            else:
                name = durable_name(node)
                if name is not None:
                    found.append(Step(node.lineno, node.col_offset, name))
        stack.extend(ast.iter_child_nodes(node))
    return sorted(found, key=lambda s: (s.line, s.col))


def uncovered(source: str, where: str) -> list[tuple[str, str, str, int]]:
    """(path, function, call, line) of each durable call with no crash point after it in
    its function before the next durable call."""
    missing = []
    for node in ast.walk(ast.parse(source, where)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        steps = steps_of(node)
        for step, following in zip(steps, [*steps[1:], None], strict=False):
            if step.call != "crash_point" and (following is None
                                               or following.call != "crash_point"):
                missing.append((where, node.name, step.call, step.line))
    return missing


def processing_modules() -> list[Path]:
    return sorted({path for pattern in PROCESSING for path in REPO.glob(pattern)})


def all_uncovered() -> list[tuple[str, str, str, int]]:
    return [found for path in processing_modules()
            for found in uncovered(path.read_text(), str(path.relative_to(REPO)))]


def test_every_durable_step_is_followed_by_a_crash_point_or_has_a_reason():
    missing = [f"{where}:{line} {function}(): {call}" for where, function, call, line
               in all_uncovered() if (where, function, call) not in ALLOWED]
    assert not missing, ("durable calls with no crash_point() after them (add one, declared "
                         "in shared/crashpoints.py, or a reason in ALLOWED):\n"
                         + "\n".join(missing))


def test_every_allowed_call_still_exists():
    found = {(where, function, call) for where, function, call, _ in all_uncovered()}
    stale = sorted(set(ALLOWED) - found)
    assert not stale, f"ALLOWED entries that match no uncovered durable call: {stale}"


def test_the_scan_finds_durable_calls_in_every_role():
    """The scan is not vacuous: it sees the flushes, commits and barrier marks of the
    roles (a rename of the helpers it relies on would otherwise make it pass silently)."""
    calls: dict[str, set[str]] = {}
    for path in processing_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                calls.setdefault(path.stem, set()).update(
                    s.call for s in steps_of(node) if s.call != "crash_point")
    assert {"flush", "mark_ended"} <= calls["dispatcher"]
    assert {"flush", "mark_ended"} <= calls["mapper"]
    assert {"flush", "mark_ended"} <= calls["reducer"]
    assert {"flush", "mark_ended"} <= calls["shuffler"]
    assert {"mark_ended", "claim_finalizing"} <= calls["sink"]
    assert {"finish_pipeline", "forget_pipeline"} <= calls["lifecycle"]
    assert {"commit"} <= calls["pipeline_worker"]
    assert {"rename", "replace"} <= calls["output"]
    assert {"flush", "create_pipeline", "update_pipeline"} <= calls["source"]


def test_a_durable_call_without_its_point_is_found():
    code = ("def emit(self):\n"
            "    self.rt.producer.flush()\n"
            "    crash_point('x', p)\n"
            "    self.rt.store.mark_ended(p, s, 0, 4)\n"
            "    if done:\n"
            "        self.rt.producer.flush()\n"
            "        crash_point('y', p)\n"
            "    f.flush()\n"  # a file, not a producer
            "    commit(consumer)\n")
    assert uncovered(code, "m.py") == [("m.py", "emit", "mark_ended", 4),
                                       ("m.py", "emit", "commit", 9)]
