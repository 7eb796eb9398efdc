"""Map-only: every line with a digit or a capital, keyed by its first word, duplicates kept
and several pairs per line, so that frames make several units and parts. It counts the
lines it keeps and those it does not (a mapper's counters, per frame)."""

import re

from mapreduce_kafka import increment_counter

WANTED = re.compile(r"[0-9A-Z]")


def mapper(line):
    if not WANTED.search(line):
        increment_counter("lines", "skipped")
    else:
        increment_counter("lines", "kept")
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        yield first, line
        yield "length", len(line)
