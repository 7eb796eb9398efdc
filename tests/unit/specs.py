"""A pipeline spec from plain functions, for the unit tests of what a spec does with them."""

from __future__ import annotations

from typing import Any

from mapreduce_kafka.shared.spec import PipelineSpec, spec_from_module


def spec_from_functions(partitions: int = 2, fmt: str = "text",
                        **functions: Any) -> PipelineSpec:
    module = type("M", (), functions)
    return spec_from_module(module, pipeline_id="t", fmt=fmt, partitions=partitions,
                            output_dir="-", source_partitions=1, where="test")
