"""Three steps: a word count; a map-only step that keeps the words seen more than once,
keyed by their count (re-keying, duplicates kept); a reducer that yields, per count, the
count's words in groups of at most five, under keys made of the count and the group
(with a combiner that yields). Each step counts (increment_counter): the first step's
mapper its words, the map-only step the words it keeps, the last step's reducer its groups
(counters of a mapper, of a map-only step, and of a reducer feeding the output).
The first step's reducer counts the distinct words (a reducer's counters in a step that
feeds the next through the sinks)."""

import re

from mapreduce_kafka import Step, increment_counter

TOKEN = re.compile(r"[a-z]+")


def words(line):
    found = TOKEN.findall(line.lower())
    increment_counter("step 1", "words", len(found))
    for word in found:
        yield word, 1


def count(word, ones):
    return sum(ones)


def count_distinct(word, ones):
    increment_counter("step 1", "distinct words")
    return sum(ones)


def repeated_by_count(pair):
    word, n = pair
    if n > 1:
        increment_counter("step 2", "words kept")
        yield n, word


def in_order(n, words):  # a combiner that yields its own key's values, sorted
    for word in sorted(words):
        yield n, word


def in_groups(n, words):
    ordered = sorted(words)
    for start in range(0, len(ordered), 5):
        increment_counter("step 3", "groups")
        yield [n, start // 5], ordered[start:start + 5]


steps = [
    Step(mapper=words, combiner=count, reducer=count_distinct),
    Step(mapper=repeated_by_count),
    Step(combiner=in_order, reducer=in_groups),
]
