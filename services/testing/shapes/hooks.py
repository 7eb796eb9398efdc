"""Hooks per task, a partitioner and sorted values: a word count that combines in the
mapper (mapper_init resets a table, the mapper fills it, mapper_final yields it), whose
combiner sums through its own hooks, whose partitioner sends words by their first letter,
and whose reducer sees each key's values sorted and keeps, per reduce task, how many
words and which first letters it reduced: reducer_final yields them once per partition.
Its output depends on every key of a partition reaching its task exactly once: a replay
must re-run the whole partition, never a tail of it."""

import re

from mapreduce_kafka import increment_counter

TOKEN = re.compile(r"[a-z]+")
table: dict[str, int] = {}  # this frame's counts (the mapper's task)
combined: dict[str, int] = {}
task: dict[str, object] = {}  # this reduce partition's (the reducer's task)


def mapper_init():
    table.clear()


def mapper(line):
    for word in TOKEN.findall(line.lower()):
        table[word] = table.get(word, 0) + 1
    return ()


def mapper_final():
    for word in sorted(table):
        yield word, table[word]


def combiner_init():
    combined.clear()


def combiner(word, counts):
    combined[word] = sum(counts)
    return combined[word]


def combiner_final():
    return ()  # a combiner's finals depend on how the input is cut: nothing to add


def partitioner(word, partitions):
    return ord(word[0]) % partitions


sort_values = True


def reducer_init():
    task["words"] = 0
    task["letters"] = ""


def reducer(word, counts):
    assert counts == sorted(counts), "values not sorted"
    task["words"] += 1
    task["letters"] = "".join(sorted(set(task["letters"]) | {word[0]}))
    return sum(counts)


def reducer_final():
    increment_counter("tasks", "ended")
    yield "~partition of " + task["letters"], task["words"]
