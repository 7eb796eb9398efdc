"""Every shipped example on the real cluster: its output equals the sequential oracle's,
and the inline runner writes the same part files (`make examples` runs them through the
command line with --verify)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mapreduce_kafka.examples import EXAMPLES, Example
from mapreduce_kafka.services.client.inline import run_inline
from mapreduce_kafka.shared.spec import PipelineCode
from tests.integration import jobs

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_the_example_matches_its_sequential_run_and_the_inline_runner(pool, tmp_path,
                                                                      example: Example):
    params = dict(example.params)
    job = jobs.submit(pool, example.pipeline, list(example.inputs), tmp_path / "out",
                      fmt=example.fmt, partitions=3, params=params)
    jobs.wait(pool, job)
    comparison = jobs.assert_matches_sequential(job)
    assert comparison.actual_keys > 0
    inline = run_inline(PipelineCode.from_file(example.pipeline, params), example.inputs,
                        tmp_path / "inline", fmt=example.fmt, partitions=3, params=params)
    assert jobs.part_lines(tmp_path / "out") == jobs.part_lines(tmp_path / "inline")
    assert not inline.dead_letters
    jobs.assert_counters_exact(pool, job)


def test_the_examples_command_runs_every_example():
    from mapreduce_kafka.examples.__main__ import command

    names = [example.name for example in EXAMPLES]
    assert len(set(names)) == len(names)
    args = command(next(e for e in EXAMPLES if e.params), Path("/tmp/out"))
    assert "--verify" in args and "--param" in args


def test_terasort_gives_every_part_a_range_of_keys(pool, tmp_path):
    from mapreduce_kafka import examples
    from mapreduce_kafka.shared.spec import load_module

    job = jobs.submit(pool, examples.TERASORT, [examples.SAMPLES / "terasort.txt"],
                      tmp_path / "out", partitions=4)
    jobs.wait(pool, job)
    assert job.spec is not None and len(job.spec.boundaries or ()) == 3
    parts = [[orjson.loads(line)[0] for line in lines]
             for lines in jobs.part_lines(tmp_path / "out").values()]
    assert len(parts) == 4 and all(len(keys) > 300 for keys in parts)
    assert load_module(examples.TERASORT).validate(parts) is None
    assert parts[0][-1] < job.spec.boundaries[0] <= parts[1][0]


def test_pagerank_iterations_driven_from_the_api_match_a_plain_computation(pool, tmp_path):
    from mapreduce_kafka.examples import PAGERANK, SAMPLES
    from mapreduce_kafka.services.client import api
    from mapreduce_kafka.shared import output
    from mapreduce_kafka.shared.spec import load_module

    graph = SAMPLES / "graph.jsonl"
    module = load_module(PAGERANK)
    last = module.pagerank(graph, tmp_path / "out", 3, api.Cluster(pool))
    states = [orjson.loads(line) for line in graph.read_bytes().splitlines()]
    ranks = {node: state["rank"] for node, state in states}
    links = {node: state["links"] for node, state in states}
    for _ in range(3):  # the same iteration in plain Python
        shares: dict[str, list[float]] = {node: [] for node in ranks}
        for node, targets in links.items():
            for target in targets:
                shares[target].append(ranks[node] / len(targets))
        ranks = {node: (1 - module.DAMPING) / len(ranks) + module.DAMPING * sum(sorted(got))
                 for node, got in shares.items()}
    found = dict(output.read_output(last))
    assert {node: state["rank"] for node, state in found.items()} == ranks
    inline = module.pagerank(graph, tmp_path / "inline", 3)
    assert jobs.part_lines(inline) == jobs.part_lines(last)
