"""Word count: tokens are runs of [A-Za-z0-9], case-sensitive (as in the original project).

    mapreduce run pipelines/wordcount.py --input pipelines/samples/text --output out/wc
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


# Every byte that cannot be part of a token becomes a space: bytes.split() then yields
# exactly TOKEN's matches (a non-ASCII byte never belongs to a token, decoded or not).
_TOKEN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_SPACE = bytes(c if c in _TOKEN_BYTES else 0x20 for c in range(256))


def map_chunk(data):
    """The same as `mapper`, for a whole frame of input bytes at once: one C pass to
    split, one Counter, and a str only per distinct word (benchmarks/throughput.py: about
    twice as fast as a regex over decoded lines). The workers use this; `--verify` checks
    it against `mapper`."""
    counts = Counter(data.translate(_TO_SPACE).split())
    return [(word.decode("ascii"), n) for word, n in counts.items()]
