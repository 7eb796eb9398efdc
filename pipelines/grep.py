"""grep, map-only: the lines that match a regular expression (`--param pattern=REGEX`,
case-insensitive; by default the word "error"), keyed by their length. A pipeline without
a reducer is map-only: its mapper's pairs are the output, in input order, duplicates kept,
with no shuffle.

    mapreduce run pipelines/grep.py --input pipelines/samples/text --output out/grep \
        --param pattern='\bwhale\b'
"""

import re

from mapreduce_kafka import param

DEFAULT = r"\berror\b"


def mapper(line):
    if re.search(param("pattern", DEFAULT), line, re.IGNORECASE):  # compiled once, cached
        yield len(line), line
