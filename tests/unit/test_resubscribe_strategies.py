"""The strategy registry (shared/resubscribe_strategies.py) is the one list: every name in
it builds a runner that answers to that name, and an unknown name is refused."""

from __future__ import annotations

import pytest

from mapreduce_kafka.services.runtime.resubscriber import build_strategy
from mapreduce_kafka.shared.resubscribe_strategies import (
    DEFAULT_STRATEGY,
    REGISTRY,
    STRATEGIES,
    consumer_overrides,
)


class FakeConsumer:
    def close(self) -> None:
        """Nothing to leave."""


def build(name):
    return build_strategy(name, "MAP---", lambda topic: FakeConsumer(), drain=lambda: None,
                          forget=lambda topic: None, subscribe=lambda consumer, topics: None)


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_registered_strategy_builds_a_runner_of_that_name(name):
    assert build(name).name == name


def test_the_default_is_registered():
    assert DEFAULT_STRATEGY in REGISTRY


@pytest.mark.parametrize("lookup", [build, consumer_overrides])
def test_an_unknown_strategy_is_refused(lookup):
    with pytest.raises(ValueError, match="unknown resubscribe strategy 'eventually'"):
        lookup("eventually")
