"""Submitting jobs from tests through the library (the same calls the CLI makes) and
checking them against the sequential oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services import output, reference, source
from shared.config import Settings

REPO = Path(__file__).resolve().parents[2]
WORDCOUNT = REPO / "pipelines" / "wordcount.py"
INVERTED_INDEX = REPO / "pipelines" / "inverted_index.py"


def submit(settings: Settings, pipeline: Path, inputs: list[Path], out: Path,
           fmt: str = "text", partitions: int = 4,
           guarantee: str = "exactly-once", input_mode: str = "auto") -> source.Job:
    job = source.Job(pipeline, inputs, out, fmt, partitions, guarantee=guarantee,
                     input_mode=input_mode)
    source.prepare(job, settings)
    source.submit(job, settings)
    return job


def wait(settings: Settings, job: source.Job, timeout: float = 180) -> dict[str, Any]:
    return source.wait(settings, job.pipeline_id, lambda status: None, timeout=timeout)


def assert_matches_sequential(job: source.Job) -> reference.Comparison:
    assert job.spec is not None
    assert output.is_complete(job.output_dir)
    comparison = reference.compare(reference.run_sequential(job.spec, job.files),
                                   output.read_output(job.output_dir))
    assert comparison.equal, comparison.summary()
    return comparison
