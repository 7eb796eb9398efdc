"""One import name: `mapreduce_kafka`, with the project's folders linked under it; the bare
folder names refuse to import, so no module can be loaded under two names."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import mapreduce_kafka
from tests import REPO

LINKED = {"services": "services", "shared": "shared", "examples": "pipelines"}
BARE = ("services", "shared", "pipelines")


def test_the_public_api_resolves():
    for name in mapreduce_kafka.__all__:
        assert getattr(mapreduce_kafka, name) is not None, name
    from mapreduce_kafka import Pipeline, connect
    from mapreduce_kafka.services.client.api import Pipeline as ApiPipeline
    from mapreduce_kafka.services.client.api import connect as api_connect

    assert (Pipeline, connect) == (ApiPipeline, api_connect)
    with pytest.raises(AttributeError):
        mapreduce_kafka.no_such_name  # noqa: B018


def test_the_version_is_the_projects():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert mapreduce_kafka.__version__ == project["version"]


def test_each_folder_is_linked_under_the_package_name():
    package = REPO / "mapreduce_kafka"
    for name, folder in LINKED.items():
        link = package / name
        assert link.is_symlink(), link
        assert link.resolve() == (REPO / folder).resolve()
    assert (package / "py.typed").exists()


@pytest.mark.parametrize("bare", BARE)
def test_a_bare_folder_name_refuses_to_import(bare):
    result = subprocess.run([sys.executable, "-c", f"import {bare}"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "ImportError: import mapreduce_kafka." in result.stderr, result.stderr


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_nothing_in_the_repository_imports_a_bare_folder_name():
    offenders = [str(path.relative_to(REPO)) for path in sorted(REPO.rglob("*.py"))
                 if not {".venv", "build"} & set(path.relative_to(REPO).parts)
                 and "mapreduce_kafka" not in path.relative_to(REPO).parts[:1]
                 and set(BARE) & _imported_roots(path)]
    assert offenders == []


def test_the_cli_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "mapreduce_kafka", "--help"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "run" in result.stdout


def test_the_examples_and_their_samples_are_in_the_package():
    from mapreduce_kafka import examples

    assert examples.WORDCOUNT.exists() and examples.INVERTED_INDEX.exists()
    assert sorted(p.name for p in (examples.SAMPLES / "text").iterdir())
    assert (examples.SAMPLES / "docs.jsonl").exists()
