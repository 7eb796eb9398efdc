"""Putting oversized messages back together: the reading side of fragments (shared/codec.py).

A Kafka message has a size limit; a hot key's values or one large result do not. A writer
cuts such a message into fragments that carry one random group id, their index and the
count, and sends them in order to one partition. Readers feed every fragment here and get
the whole message back once every piece of its group has arrived.

The group id is new for each attempt: a writer that crashed mid-message and its replay
send two groups, the first never complete. Its pieces are dropped with their owner (the
pipeline's data on that partition, when its end marker is read or it finishes). Until a
group is complete, a reader must not commit past its first fragment, or a crash would lose
the pieces already read: `first_offsets()` is that low watermark. Pure: no Kafka, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from mapreduce_kafka.shared.codec import CodecError, Fragment

Partition = tuple[str, int]  # (topic, partition)


@dataclass
class _Group:
    count: int
    where: Partition
    first_offset: int
    owner: Hashable
    pieces: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}
        self.held_bytes = 0

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, fragment: Fragment, data: bytes, where: Partition, offset: int,
            owner: Hashable) -> bytes | None:
        """Take one fragment; the whole message when this was its last missing piece. A
        piece seen before (a replay of the same group) is harmless."""
        group = self._groups.get(fragment.group)
        if group is None:
            group = self._groups[fragment.group] = _Group(fragment.count, where, offset, owner)
        elif group.count != fragment.count:
            raise CodecError(f"fragment group {fragment.group} announced {group.count} pieces, "
                             f"then {fragment.count}")
        if fragment.index not in group.pieces:
            group.pieces[fragment.index] = data
            group.size += len(data)
            self.held_bytes += len(data)
        if len(group.pieces) < group.count:
            return None
        del self._groups[fragment.group]
        self.held_bytes -= group.size
        return b"".join(group.pieces[i] for i in range(group.count))

    def first_offsets(self) -> dict[Partition, int]:
        """Per partition, the offset of the first fragment of a group still incomplete."""
        offsets: dict[Partition, int] = {}
        for group in self._groups.values():
            if group.first_offset < offsets.get(group.where, group.first_offset + 1):
                offsets[group.where] = group.first_offset
        return offsets

    def drop(self, which: Callable[[Hashable, Partition], bool]) -> int:
        """Forget the incomplete groups `which(owner, partition)` selects; how many."""
        doomed = [gid for gid, g in self._groups.items() if which(g.owner, g.where)]
        for gid in doomed:
            self.held_bytes -= self._groups.pop(gid).size
        return len(doomed)


def clamp(offsets: dict[Partition, int], pending: dict[Partition, int]) -> dict[Partition, int]:
    """Offsets to commit, none past the first fragment of an incomplete group."""
    return {where: min(offset, pending.get(where, offset)) for where, offset in offsets.items()}
