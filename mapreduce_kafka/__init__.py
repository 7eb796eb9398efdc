"""MapReduce in Python on Apache Kafka (data) and Redis (coordination).

    from mapreduce_kafka import Pipeline, connect

    wordcount = Pipeline.from_file("wordcount.py")
    job = connect().submit(wordcount, ["input/"], "out/wc")
    job.wait()

The package maps the project's folders under one name (pyproject.toml, package-dir):
`services/` is `mapreduce_kafka.services` (workers, command line, the user's side),
`shared/` is `mapreduce_kafka.shared` (the library every role uses) and `pipelines/` is
`mapreduce_kafka.examples` (the shipped pipelines and their sample inputs).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mapreduce_kafka.services.client.api import (
        Cluster,
        Job,
        Pipeline,
        connect,
        dead_letters,
        topic_results,
    )
    from mapreduce_kafka.shared.errors import (
        ClusterError,
        ConnectionFailed,
        JobTimedOut,
        MapReduceError,
        PipelineFailed,
    )
    from mapreduce_kafka.shared.settings import Settings
    from mapreduce_kafka.shared.spec import Step
    from mapreduce_kafka.shared.task_context import (
        increment_counter,
        input_context,
        param,
        params,
        side_file,
    )

from mapreduce_kafka.shared.legacy_modules import provide_pipes

provide_pipes()  # mrjob jobs import it; Python 3.13 removed it (shared/legacy_modules.py)

try:
    __version__ = version("mapreduce-kafka")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"

# The public names and the module each comes from. Loaded on first use, so that a worker,
# which imports `mapreduce_kafka.services.worker`, does not also load the client side.
_EXPORTS = {
    "Cluster": "mapreduce_kafka.services.client.api",
    "Job": "mapreduce_kafka.services.client.api",
    "Pipeline": "mapreduce_kafka.services.client.api",
    "connect": "mapreduce_kafka.services.client.api",
    "dead_letters": "mapreduce_kafka.services.client.api",
    "topic_results": "mapreduce_kafka.services.client.api",
    "Settings": "mapreduce_kafka.shared.settings",
    "Step": "mapreduce_kafka.shared.spec",
    "increment_counter": "mapreduce_kafka.shared.task_context",
    "param": "mapreduce_kafka.shared.task_context",
    "input_context": "mapreduce_kafka.shared.task_context",
    "params": "mapreduce_kafka.shared.task_context",
    "side_file": "mapreduce_kafka.shared.task_context",
    "ClusterError": "mapreduce_kafka.shared.errors",
    "ConnectionFailed": "mapreduce_kafka.shared.errors",
    "JobTimedOut": "mapreduce_kafka.shared.errors",
    "MapReduceError": "mapreduce_kafka.shared.errors",
    "PipelineFailed": "mapreduce_kafka.shared.errors",
}

__all__ = [
    "Cluster",
    "ClusterError",
    "ConnectionFailed",
    "Job",
    "JobTimedOut",
    "MapReduceError",
    "Pipeline",
    "PipelineFailed",
    "Settings",
    "Step",
    "__version__",
    "connect",
    "dead_letters",
    "increment_counter",
    "input_context",
    "param",
    "params",
    "side_file",
    "topic_results",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mapreduce_kafka' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
