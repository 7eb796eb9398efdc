"""Word count: tokens are runs of [A-Za-z0-9], case-sensitive (as in the original project).

    mapreduce run pipelines/wordcount.py --input samples/ --output out/wc
"""

import re
from collections import Counter

TOKEN = re.compile(r"[A-Za-z0-9]+")


def mapper(line):
    for word in TOKEN.findall(line):
        yield word, 1


def combiner(word, counts):
    return sum(counts)


def reducer(word, counts):
    return sum(counts)


def map_batch(lines):
    """The same as `mapper`, a whole frame of lines at a time: one regex pass and one
    Counter per frame instead of a Python call and a pair per word (benchmarks/throughput.py
    measures both). The workers use this; `--verify` checks it against `mapper`."""
    return Counter(TOKEN.findall("\n".join(lines))).items()
