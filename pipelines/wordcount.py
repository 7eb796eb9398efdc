"""Word count: tokens are runs of [A-Za-z0-9], case-sensitive (as in the original project).

    mapreduce run pipelines/wordcount.py --input samples/ --output out/wc
"""

import re

TOKEN = re.compile(r"[A-Za-z0-9]+")


def mapper(line):
    for word in TOKEN.findall(line):
        yield word, 1


def combiner(word, counts):
    return sum(counts)


def reducer(word, counts):
    return sum(counts)
