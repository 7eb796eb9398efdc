"""Values and results that are dicts and lists, keys that are JSON arrays: per (word length,
first letter), how many words and the longest three, with a combiner that keeps dicts."""

import re

TOKEN = re.compile(r"[A-Za-z]+")


def mapper(line):
    for word in TOKEN.findall(line):
        yield (len(word), word[0].lower()), {"n": 1, "longest": [word]}


def _merge(values):
    n = sum(v["n"] for v in values)
    longest = sorted({w for v in values for w in v["longest"]}, key=lambda w: (-len(w), w))
    return {"n": n, "longest": longest[:3]}


def combiner(key, values):
    return _merge(values)


def reducer(key, values):
    merged = _merge(values)
    return [merged["n"], merged["longest"]]
