"""A map frame's groups cut into shuffle messages: partitioned by key, encoded, and chunked
under a size limit the same way on every replay. Pure: the mapper sends what it returns,
and the inline runner (services/client/inline.py) reads it back the way a shuffler would."""

from __future__ import annotations

from typing import Any

from mapreduce_kafka.shared.codec import (
    CodecError,
    encode_checked,
    encode_items,
    partition_for,
    problem_of,
    sort_items,
    split_by_size,
)

Unencodable = tuple[Any, Any, str]  # key, values, why they cannot be sent


def shuffle_frames(groups: dict[Any, list[Any]], partitions: int,
                   limit: int) -> tuple[list[tuple[int, int, bytes]], list[Unencodable]]:
    """A frame's groups as (shuffle partition, chunk, data) messages of at most `limit`
    bytes (a single group larger than that is one message, sent as fragments), and the
    groups that cannot be sent (a key or value that is not a JSON value). Pure and
    deterministic in the groups' contents: the order they were built in does not matter."""
    buckets: list[list[list[Any]]] = [[] for _ in range(partitions)]
    bad: list[Unencodable] = []
    for key, values in groups.items():
        try:
            buckets[partition_for(key, partitions)].append([key, values])
        except CodecError as exc:
            bad.append((key, values, str(exc)))
    frames: list[tuple[int, int, bytes]] = []
    for partition, items in enumerate(buckets):
        if not items:
            continue
        data, good, refused = encode_checked(items)
        if refused:
            good.extend(_salvage(refused, bad))
            if not good:
                continue
            data = encode_items(good)
        if len(data) > limit and len(good) > 1:
            good = sort_items(good)  # chunk boundaries that a replay cuts the same way
            chunks = list(split_by_size(good, limit))
        else:
            chunks = [data]
        frames.extend((partition, chunk, piece) for chunk, piece in enumerate(chunks))
    return frames, bad


def _salvage(refused: list[tuple[Any, str]], bad: list[Unencodable]) -> list[list[Any]]:
    """Of groups that could not be encoded, the values that can, under their key; the rest
    (a bad key with all its values, or each bad value) is added to `bad`."""
    kept = []
    for (key, values), reason in refused:
        if problem_of(key) is not None:
            bad.append((key, values, reason))
            continue
        good_values = []
        for value in values:
            why = problem_of(value)
            if why is None:
                good_values.append(value)
            else:
                bad.append((key, [value], why))
        if good_values:
            kept.append([key, good_values])
    return kept
