"""The 10 most frequent words, in two steps: count the words (a word count with its
combiner), then send every count to one key and keep the top 10 there.

    mapreduce run pipelines/top_words.py --input pipelines/samples/text --output out/top
"""

import heapq
import re

from mapreduce_kafka import Step

TOKEN = re.compile(r"[a-z]+")
N = 10


def words(line):
    for word in TOKEN.findall(line.lower()):
        yield word, 1


def count(word, counts):
    return sum(counts)


def to_one_key(pair):  # a later step's record is the pair the step before gave
    word, n = pair
    yield "top", [n, word]


def top_so_far(key, counted):  # a combiner that yields: the top N of its share
    for n_word in heapq.nlargest(N, counted):
        yield key, n_word


def top(_key, counted):
    for n, word in heapq.nlargest(N, counted):
        yield word, n


steps = [
    Step(mapper=words, combiner=count, reducer=count),
    Step(mapper=to_one_key, combiner=top_so_far, reducer=top),
]
