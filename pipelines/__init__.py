"""The shipped example pipelines and their sample inputs (samples/), installed as
`mapreduce_kafka.examples` (pyproject.toml maps this folder). Run one from a checkout or
from an installed wheel:

    EXAMPLES=$(python -c 'import mapreduce_kafka.examples as e; print(e.HERE)')
    mapreduce run $EXAMPLES/wordcount.py --inline --input $EXAMPLES/samples/text -o out/wc
"""

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
