"""A drain whose flush found a lost delivery must never be retried into a commit: the
reconnect strategy's runner used to treat it as a failed step, retry it, see the retried
flush succeed (the error list had been cleared), and commit input past the lost output."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer

from mapreduce_kafka.services.runtime.producer import DeliveryFailed
from mapreduce_kafka.services.runtime.resubscriber import ReconnectStrategy


def idle_consumer() -> Consumer:
    """A real client that is never subscribed (the runner only creates and closes it)."""
    return Consumer({"group.id": "never-joins", "bootstrap.servers": "127.0.0.1:9"})


def test_a_failed_delivery_in_a_drain_stops_the_worker_instead_of_being_retried():
    drains: list[str] = []

    def drain() -> None:
        drains.append("drain")
        if len(drains) == 1:
            raise DeliveryFailed("SHUFFLE[3]: Broker: Not leader for partition")
        # a retry would get here, find nothing pending, and commit

    strategy = ReconnectStrategy(idle_consumer, drain, lambda consumer, topics: None,
                                 sleep=lambda seconds: None)
    strategy.topics_changed(("MAP---a",), "startup")  # connect + subscribe
    with pytest.raises(DeliveryFailed, match="Not leader"):
        strategy.topics_changed(("MAP---a", "MAP---b"), "a new pipeline")
    assert drains == ["drain"], "the drain was retried after its output was lost"
