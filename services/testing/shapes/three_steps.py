"""Three steps: a word count; a map-only step that keeps the words seen more than once,
keyed by their count (re-keying, duplicates kept); a reducer that yields, per count, the
count's words in groups of at most five, under keys made of the count and the group
(with a combiner that yields)."""

import re

from mapreduce_kafka import Step

TOKEN = re.compile(r"[a-z]+")


def words(line):
    for word in TOKEN.findall(line.lower()):
        yield word, 1


def count(word, ones):
    return sum(ones)


def repeated_by_count(pair):
    word, n = pair
    if n > 1:
        yield n, word


def in_order(n, words):  # a combiner that yields its own key's values, sorted
    for word in sorted(words):
        yield n, word


def in_groups(n, words):
    ordered = sorted(words)
    for start in range(0, len(ordered), 5):
        yield [n, start // 5], ordered[start:start + 5]


steps = [
    Step(mapper=words, combiner=count, reducer=count),
    Step(mapper=repeated_by_count),
    Step(combiner=in_order, reducer=in_groups),
]
