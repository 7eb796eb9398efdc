"""The shipped example pipelines and their sample inputs (samples/), installed as
`mapreduce_kafka.examples` (pyproject.toml maps this folder). Run one from a checkout or
from an installed wheel:

    EXAMPLES=$(python -c 'import mapreduce_kafka.examples as e; print(e.HERE)')
    mapreduce run $EXAMPLES/wordcount.py --inline --input $EXAMPLES/samples/text -o out/wc

`python -m mapreduce_kafka.examples` (`make examples`) runs every one of them on the
cluster with `--verify`, and fails on any difference from a sequential run.
"""

from dataclasses import dataclass
from pathlib import Path

if __name__ != "mapreduce_kafka.examples":  # one name, so one copy of every module
    raise ImportError(f"import mapreduce_kafka.examples, not {__name__}")

HERE = Path(__file__).parent
SAMPLES = HERE / "samples"
WORDCOUNT = HERE / "wordcount.py"
INVERTED_INDEX = HERE / "inverted_index.py"
GREP = HERE / "grep.py"
ANAGRAMS = HERE / "anagrams.py"
TOP_WORDS = HERE / "top_words.py"
COUNTERS = HERE / "counters.py"
SECONDARY_SORT = HERE / "secondary_sort.py"
DISTINCT = HERE / "distinct.py"
JOIN = HERE / "join.py"
TERASORT = HERE / "terasort.py"
PAGERANK = HERE / "pagerank.py"


@dataclass(frozen=True)
class Example:
    """An example as `make examples` runs it: its input, format and parameters."""

    pipeline: Path
    inputs: tuple[Path, ...]
    fmt: str = "text"
    params: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.pipeline.stem


TEXT = (SAMPLES / "text",)
EXAMPLES = (
    Example(WORDCOUNT, TEXT),
    Example(TOP_WORDS, TEXT),
    Example(GREP, TEXT, params=(("pattern", r"\bdict\b"),)),
    Example(DISTINCT, TEXT),
    Example(ANAGRAMS, TEXT),
    Example(COUNTERS, TEXT, params=(("min_length", "5"),)),
    Example(INVERTED_INDEX, (SAMPLES / "docs.jsonl",), fmt="jsonl"),
    Example(SECONDARY_SORT, (SAMPLES / "events.jsonl",), fmt="jsonl"),
    Example(JOIN, (SAMPLES / "join",), fmt="jsonl"),
    Example(TERASORT, (SAMPLES / "terasort.txt",)),
    Example(PAGERANK, (SAMPLES / "graph.jsonl",), fmt="jsonl", params=(("nodes", "40"),)),
)
