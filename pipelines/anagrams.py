"""Anagram classes: words that are anagrams of one another, and how often each class was
seen. The reducer yields: nothing for a word without an anagram (filtering), and one pair
per member of a class, keyed by the word (exploding and re-keying).

    mapreduce run pipelines/anagrams.py --input pipelines/samples/text --output out/anagrams
"""

import re

TOKEN = re.compile(r"[a-z]+")


def mapper(line):
    for word in TOKEN.findall(line.lower()):
        yield "".join(sorted(word)), word


def reducer(letters, words):
    members = sorted(set(words))
    if len(members) < 2:
        return  # not an anagram of anything: no output
    for word in members:
        yield word, [m for m in members if m != word]
