"""Inverted index over jsonl records {"doc": ..., "text": ...}: for each word, the sorted
list of distinct documents it appears in.

    mapreduce run pipelines/inverted_index.py --format jsonl --input docs.jsonl --output out/ii
"""

import re

TOKEN = re.compile(r"[A-Za-z0-9]+")


def mapper(record):
    doc = record["doc"]
    for word in set(TOKEN.findall(record["text"])):
        yield word, doc


def reducer(word, docs):
    return sorted(set(docs))
