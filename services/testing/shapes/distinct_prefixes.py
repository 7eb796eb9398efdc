"""A set-based mapper without a combiner: for each line, every distinct word (iterated in
the process's hash order, which changes with PYTHONHASHSEED) paired with the line's first
24 characters. A 1 MiB split makes several chunks per shuffle partition, so a replayed
frame is only de-duplicated right if chunking does not depend on the mapper's order."""

import re

TOKEN = re.compile(r"[A-Za-z0-9]+")


def mapper(line):
    for word in set(TOKEN.findall(line)):
        yield word.lower(), line[:24]


def reducer(word, prefixes):
    distinct = sorted(set(prefixes))
    return [len(prefixes), len(distinct), distinct[:3]]
