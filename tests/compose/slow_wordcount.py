"""pipelines/wordcount.py with a mapper slowed to about 1 ms a line, so that a job on a
few megabytes lasts long enough for a container to be killed while it maps."""

import re
import time

TOKEN = re.compile(r"[A-Za-z0-9]+")


def mapper(line):
    time.sleep(0.001)
    for word in TOKEN.findall(line):
        yield word, 1


def combiner(word, counts):
    return sum(counts)


def reducer(word, counts):
    return sum(counts)
