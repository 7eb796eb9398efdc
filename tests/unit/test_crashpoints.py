"""The crash-point registry: every call names a declared point, every declared point has a
call, so the crash-point suite (which arms every declared point) covers every call."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mapreduce_kafka.shared import crashpoints

REPO = Path(__file__).resolve().parents[2]


def _calls() -> tuple[set[str], list[str]]:
    """Point names used in the code: literal arguments of crash_point(...), and the
    `point_*` class attributes that shared code passes as `self.point_*`. Returns the
    names, and the calls whose name is neither (which this test cannot check)."""
    names: set[str] = set()
    unchecked: list[str] = []
    for path in [*REPO.glob("services/**/*.py"), *REPO.glob("shared/**/*.py")]:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if (isinstance(target, ast.Name) and target.id.startswith("point_")
                        and isinstance(node.value, ast.Constant) and node.value.value):
                    names.add(node.value.value)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "crash_point" and node.args):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
                elif not (isinstance(arg, ast.Attribute) and arg.attr.startswith("point_")):
                    unchecked.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return names, unchecked


def test_every_call_names_a_declared_point_and_every_point_is_called():
    used, unchecked = _calls()
    assert not unchecked, f"crash_point() with a name this test cannot read: {unchecked}"
    assert used - set(crashpoints.POINTS) == set(), "calls of undeclared points"
    assert set(crashpoints.POINTS) - used == set(), "declared points that no code calls"


def test_an_arming_file_names_points_and_actions():
    armed = crashpoints.parse("# comment\nshuffler.after_shuffle_mark\n"
                              "sink.after_rename raise\nmapper.batch_durable stall:2.5\n")
    assert armed == {"shuffler.after_shuffle_mark": ("crash", 0.0),
                     "sink.after_rename": ("raise", 0.0),
                     "mapper.batch_durable": ("stall", 2.5)}


@pytest.mark.parametrize("text", ["no.such.point", "sink.after_rename explode"])
def test_a_typo_in_an_arming_file_is_an_error(text):
    with pytest.raises(ValueError, match="unknown"):
        crashpoints.parse(text)


def test_points_fire_once_per_pipeline(tmp_path, monkeypatch):
    armed = tmp_path / "armed"
    armed.write_text("sink.after_rename raise\n")
    monkeypatch.setattr(crashpoints, "_file", armed)
    monkeypatch.setattr(crashpoints, "_mtime", None)
    with pytest.raises(crashpoints.CrashPointError):
        crashpoints.crash_point("sink.after_rename", "p1")
    crashpoints.crash_point("sink.after_rename", "p1")  # fired already: nothing
    crashpoints.crash_point("mapper.batch_durable", "p1")  # not armed: nothing
    with pytest.raises(crashpoints.CrashPointError):
        crashpoints.crash_point("sink.after_rename", "p2")
    assert crashpoints.fired(tmp_path, "sink.after_rename", "p1")
    with pytest.raises(ValueError, match="not declared"):
        crashpoints.crash_point("sink.after_renamed", "p1")


def test_a_process_started_without_the_file_is_never_armed():
    # this test process was started without MAPREDUCE_CRASH_POINTS_FILE
    assert crashpoints._file is None
    crashpoints.crash_point("lifecycle.after_terminal", "any")  # returns at once
