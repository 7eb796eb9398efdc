"""Counters and a parameter: a word count of the words at least `min_length` long
(`--param min_length=N`, default 1) that also counts what it saw, as Hadoop and mrjob jobs
do: lines, blank lines, words kept and left out (in the mapper), and the distinct words
and those seen once (in the reducer). The counters are shown at the end of `run`, by
`mapreduce status ID`, on the dashboard and by `Job.counters()`; each task is counted
once, however often a worker dies.

    mapreduce run pipelines/counters.py --input pipelines/samples/text --output out/counted \\
        --param min_length=5
"""

from mapreduce_kafka import increment_counter, param


def mapper(line):
    increment_counter("input", "lines")
    words = line.split()
    if not words:
        increment_counter("input", "blank lines")
        return
    shortest = int(param("min_length", "1"))
    for word in words:
        if len(word) < shortest:
            increment_counter("words", "too short")
        else:
            increment_counter("words", "kept")
            yield word.lower(), 1


def reducer(word, ones):
    total = sum(ones)
    increment_counter("words", "distinct")
    if total == 1:
        increment_counter("words", "seen once")
    return total
