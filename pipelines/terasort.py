"""TeraSort's shape: records (a 10-character key, then the rest of the line) sorted by key
across every output part. `total_order = True` samples the input's keys when the job is
submitted and gives each part a range of them: every key of part-00000 sorts before every
key of part-00001, and each part is sorted. `validate` checks an output the way Hadoop's
TeraValidate does.

    mapreduce run pipelines/terasort.py --input pipelines/samples/terasort.txt \\
        --output out/sorted --partitions 4
    python pipelines/terasort.py out/sorted      # validate: exit 1 if out of order
"""

import sys

total_order = True


def mapper(line):
    yield line[:10], line[10:]


def reducer(key, rests):  # a key twice in the input: both records kept
    for rest in sorted(rests):
        yield key, rest


def validate(parts):
    """The first problem of an output given as its parts' keys in order, or None."""
    previous = None
    for index, keys in enumerate(parts):
        for key in keys:
            if previous is not None and key < previous:
                return f"part {index}: key {key!r} after {previous!r}"
            previous = key
    return None


if __name__ == "__main__":
    from pathlib import Path

    from mapreduce_kafka.shared.output import decode_line

    parts = [[decode_line(line, "jsonl")[0] for line in part.read_bytes().splitlines()]
             for part in sorted(Path(sys.argv[1]).glob("part-*"))]
    problem = validate(parts)
    print(problem or f"sorted: {sum(map(len, parts))} records in {len(parts)} parts")
    sys.exit(1 if problem else 0)
