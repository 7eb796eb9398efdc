"""distinct: every different word of the input once, lower-cased (SQL's SELECT DISTINCT).
The combiner drops duplicates map-side; the reducer yields nothing but its key.

    mapreduce run pipelines/distinct.py --input pipelines/samples/text --output out/distinct
"""

import re

TOKEN = re.compile(r"[a-z]+")


def mapper(line):
    for word in TOKEN.findall(line.lower()):
        yield word, None


def combiner(word, nones):
    return None


def reducer(word, nones):
    return None
