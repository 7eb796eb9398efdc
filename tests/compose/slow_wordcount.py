"""pipelines/wordcount.py with a mapper slowed to about 1 ms a line, so that a job on a
few megabytes lasts long enough for a container to be killed while it maps."""

import time

from mapreduce_kafka.examples.wordcount import TOKEN, combiner, reducer

__all__ = ["combiner", "mapper", "reducer"]


def mapper(line):
    time.sleep(0.001)
    for word in TOKEN.findall(line):
        yield word, 1
