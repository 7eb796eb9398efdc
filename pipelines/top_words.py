"""The 10 most frequent words, in two steps: the word count of `wordcount.py` (its tokens,
its fast `map_chunk`, its combiner), then every count under one key, where the top 10 are
kept (a combiner that yields keeps each share's top 10 first).

    mapreduce run pipelines/top_words.py --input pipelines/samples/text --output out/top
"""

import heapq

from mapreduce_kafka import Step
from mapreduce_kafka.examples import wordcount

N = 10


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
    Step(mapper=wordcount.mapper, map_chunk=wordcount.map_chunk, combiner=wordcount.combiner,
         reducer=wordcount.reducer),
    Step(mapper=to_one_key, combiner=top_so_far, reducer=top),
]
