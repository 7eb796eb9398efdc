"""grep, map-only: the lines that contain the word "error", keyed by their length. A
pipeline without a reducer is map-only: its mapper's pairs are the output, in input order,
duplicates kept, with no shuffle. Change PATTERN to search for something else.

    mapreduce run pipelines/grep.py --input pipelines/samples/text --output out/grep
"""

import re

PATTERN = re.compile(r"\berror\b", re.IGNORECASE)


def mapper(line):
    if PATTERN.search(line):
        yield len(line), line
