"""No import runs upward: each part of the package imports only the parts below it (or
itself), so the layout shows the architecture and a lower part can be read, tested and
reused without the ones above it."""

from __future__ import annotations

import ast
import os
from pathlib import Path

from tests import REPO

# Lowest first. A module may import modules of its own layer and of the layers before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("mapreduce_kafka.shared",),
    ("mapreduce_kafka.services.runtime",),
    ("mapreduce_kafka.services.roles",),
    ("mapreduce_kafka.services.localcluster",),
    ("mapreduce_kafka.services.status",),
    ("mapreduce_kafka.services.client",),
    ("mapreduce_kafka.services.ui",),
    # the entry points: the public names, the CLI and the worker process
    ("mapreduce_kafka.services.cli", "mapreduce_kafka.services.worker",
     "mapreduce_kafka.__main__", "mapreduce_kafka"),
    # test and benchmark support, and the examples it runs: nothing below imports them
    ("mapreduce_kafka.services.testing", "mapreduce_kafka.examples"),
)


def layer_of(module: str) -> int:
    """The layer of a module: that of the longest prefix named in LAYERS."""
    best, best_length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    if best < 0:
        raise ValueError(f"{module} is in no layer: add it to LAYERS")
    return best


def upward_imports(module: str, imported: list[str]) -> list[str]:
    own = layer_of(module)
    return [name for name in imported if layer_of(name) > own]


def _modules() -> dict[str, Path]:
    """Every module of the package, by name (the links under mapreduce_kafka/ followed)."""
    found = {}
    for directory, _dirs, files in os.walk(REPO / "mapreduce_kafka", followlinks=True):
        for name in files:
            if name.endswith(".py"):
                path = Path(directory, name)
                parts = list(path.relative_to(REPO).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("mapreduce_kafka")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("mapreduce_kafka"):
            # `from package import module` imports the module, not the package
            names += [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules
                      else node.module for a in node.names]
    return names


def test_the_layer_rule():
    assert upward_imports("mapreduce_kafka.shared.kafka", ["mapreduce_kafka.shared.codec"]) == []
    worker = "mapreduce_kafka.services.worker"
    assert upward_imports("mapreduce_kafka.services.runtime.process", [worker]) == [worker]
    assert layer_of("mapreduce_kafka") > layer_of("mapreduce_kafka.services.client.api")


def test_no_import_runs_upward():
    modules = _modules()
    assert "mapreduce_kafka.services.roles.mapper" in modules
    offenders = {module: up for module, path in sorted(modules.items())
                 if (up := upward_imports(module, _imports(path, modules)))}
    assert offenders == {}
