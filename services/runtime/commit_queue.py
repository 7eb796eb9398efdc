"""Batches whose outputs are still in flight, oldest first: the bookkeeping that lets a
worker map the next batch while the last one's outputs travel to the broker.

A batch's input offsets may be committed once every output produced up to the end of that
batch is acknowledged (outputs durable, then offsets: never the other way round). The
producer numbers its outputs by epoch (one epoch per batch, see OutputProducer.mark); this
queue turns "everything up to epoch N is acknowledged" into the offsets to commit and what
the role has to record for the batches that became durable. Pure: no Kafka, no clock."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Partition = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True)
class PendingBatch:
    epoch: int  # the producer epoch that holds every output of this batch
    offsets: dict[Partition, int]  # next offset to read, per input partition
    payload: Any = None  # what the role records once the batch is durable


@dataclass
class Settled:
    offsets: dict[Partition, int] = field(default_factory=dict)
    payloads: list[Any] = field(default_factory=list)


def next_offsets(positions: Iterable[tuple[str, int, int]]) -> dict[Partition, int]:
    """(topic, partition, offset) of the messages of a batch -> the offset to commit for
    each partition: one past the highest read."""
    offsets: dict[Partition, int] = {}
    for topic, partition, offset in positions:
        if offset + 1 > offsets.get((topic, partition), -1):
            offsets[(topic, partition)] = offset + 1
    return offsets


class CommitQueue:
    def __init__(self) -> None:
        self._pending: deque[PendingBatch] = deque()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, batch: PendingBatch) -> None:
        if self._pending and batch.epoch < self._pending[-1].epoch:
            raise ValueError(f"epoch {batch.epoch} added after {self._pending[-1].epoch}")
        self._pending.append(batch)

    def settle(self, acked_through: int) -> Settled:
        """Remove the batches whose epoch is at most `acked_through`; their offsets merged
        (a later batch's offset for a partition is never lower) and their payloads."""
        settled = Settled()
        while self._pending and self._pending[0].epoch <= acked_through:
            batch = self._pending.popleft()
            for where, offset in batch.offsets.items():
                settled.offsets[where] = max(offset, settled.offsets.get(where, offset))
            if batch.payload is not None:
                settled.payloads.append(batch.payload)
        return settled

    def forget(self, lost: set[Partition]) -> None:
        """Partitions this worker no longer owns: their offsets are not ours to commit (the
        next owner replays from the last commit, and replays are dropped downstream)."""
        self._pending = deque(
            PendingBatch(b.epoch, {w: o for w, o in b.offsets.items() if w not in lost},
                         b.payload)
            for b in self._pending)

    def forget_topic(self, topic: str) -> None:
        """A topic whose pipeline ended: nothing of it needs committing any more."""
        self.forget({where for batch in self._pending for where in batch.offsets
                     if where[0] == topic})
