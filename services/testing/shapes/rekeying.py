"""A reducer that yields: per word, nothing for a word seen once (filtering), else one pair
keyed by the word's first letter (re-keying: many keys' pairs under one key) and one per
distinct length of its neighbours (exploding). The sink keeps a key's pairs together and
drops a replay's copy, whatever keys the pairs have."""

import re

TOKEN = re.compile(r"[a-z]+")


def mapper(line):
    words = TOKEN.findall(line.lower())
    for i, word in enumerate(words):
        yield word, len(words[i + 1]) if i + 1 < len(words) else 0


def combiner(word, lengths):
    for length in sorted(lengths):  # a combiner that yields its own key's values
        yield word, length


def reducer(word, lengths):
    if len(lengths) < 2:
        return
    yield word[0], [word, len(lengths)]
    for length in sorted(set(lengths)):
        yield [word, length], 1
