"""Pipelines of several shapes for the crash-point suite and the fault runs: each reaches
the framework's paths that word count never takes. Loaded by path, as a user's pipeline
is: these are their files."""

from pathlib import Path

HERE = Path(__file__).parent
DISTINCT_PREFIXES = HERE / "distinct_prefixes.py"
NESTED_VALUES = HERE / "nested_values.py"
REKEYING = HERE / "rekeying.py"  # a reducer (and a combiner) that yields pairs
MAP_ONLY = HERE / "map_only.py"  # no reducer
THREE_STEPS = HERE / "three_steps.py"  # a map-only step and a re-keying reducer among three
HOOKS = HERE / "hooks.py"  # hooks per task, a partitioner, sorted values
MRJOB = HERE / "mr_features.py"  # an mrjob job: two steps, every hook, its own protocols
