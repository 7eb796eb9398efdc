"""Map-only: every line with a digit or a capital, keyed by its first word, duplicates kept
and several pairs per line, so that frames make several units and parts."""

import re

WANTED = re.compile(r"[0-9A-Z]")


def mapper(line):
    if WANTED.search(line):
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        yield first, line
        yield "length", len(line)
