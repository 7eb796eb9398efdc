"""PageRank, an iteration per job, the iterations driven from the Python API. A record is
`[node, {"rank": r, "links": [node, ...]}]`; one job maps each node's rank out along its
links and reduces each node's shares to its new rank, in the same shape, so that one job's
output is the next one's input. `--param nodes=N` is the graph's size (for the damping's
teleport share).

    python pipelines/pagerank.py pipelines/samples/graph.jsonl out/pagerank --iterations 10
    python pipelines/pagerank.py ... --inline          # no cluster: the inline runner
    mapreduce run pipelines/pagerank.py --format jsonl --param nodes=40 \\
        --input pipelines/samples/graph.jsonl --output out/one-iteration   # one iteration
"""

import sys
from pathlib import Path

from mapreduce_kafka import param

DAMPING = 0.85


def mapper(record):
    node, state = record
    yield node, ["links", state["links"]]
    for link in state["links"]:
        yield link, ["share", state["rank"] / len(state["links"])]


def reducer(node, values):
    links = next((v[1] for v in values if v[0] == "links"), [])
    shares = sorted(v[1] for v in values if v[0] == "share")  # the same sum in any order
    rank = (1 - DAMPING) / int(param("nodes")) + DAMPING * sum(shares)
    return {"rank": rank, "links": links}


def pagerank(graph: Path, out: Path, iterations: int, cluster=None) -> Path:
    """Run `iterations` jobs on `cluster` (None: the inline runner), each on the output of
    the one before; the last one's output directory."""
    from mapreduce_kafka import Pipeline

    pipeline = Pipeline.from_file(__file__)
    nodes = str(sum(1 for line in graph.read_text().splitlines() if line.strip()))
    source = graph
    for step in range(1, iterations + 1):
        target = out / f"iteration-{step:03d}"
        if cluster is None:
            pipeline.run_inline([source], target, fmt="jsonl", params={"nodes": nodes})
        else:
            cluster.submit(pipeline, [source], target, fmt="jsonl",
                           params={"nodes": nodes}).wait()
        source = target
    return source


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="PageRank, one job per iteration")
    parser.add_argument("graph", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--inline", action="store_true")
    args = parser.parse_args()
    from mapreduce_kafka import connect

    last = pagerank(args.graph, args.out, args.iterations,
                    None if args.inline else connect())
    from mapreduce_kafka.shared.output import read_output

    ranked = sorted(read_output(last), key=lambda pair: -pair[1]["rank"])
    for node, state in ranked[:10]:
        print(f"{state['rank']:.6f}  {node}")
    sys.exit(0)
