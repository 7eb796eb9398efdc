"""Standard-library modules that newer Pythons removed and mrjob still imports.

mrjob 0.7.4, its last release, imports `pipes` (removed in Python 3.13) for `pipes.quote`
alone, so that an mrjob job cannot even be imported there. Where `pipes` is missing, it is
provided as the module it was for that use: `quote` is `shlex.quote`, which it had become.
Called when the package is imported, before any pipeline file is loaded or any spec is
unpickled (either may import mrjob)."""

from __future__ import annotations

import importlib.util
import shlex
import sys
import types


def provide_pipes() -> None:
    if "pipes" in sys.modules or importlib.util.find_spec("pipes") is not None:
        return
    pipes = types.ModuleType("pipes", "pipes.quote, for code written before Python 3.13")
    pipes.quote = shlex.quote  # type: ignore[attr-defined]
    sys.modules["pipes"] = pipes
