"""The processing guarantee: what the shuffler does with a frame a mapper replayed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapreduce_kafka.services.roles.shuffler import accepts
from mapreduce_kafka.services.runtime.pipeline_worker import drains_on_revoke
from mapreduce_kafka.shared.errors import PipelineDefinitionError
from mapreduce_kafka.shared.spec import load_module, spec_from_module

REPO = Path(__file__).resolve().parents[2]


def replayed(guarantee: str) -> list[bool]:
    """The same tag three times, as a mapper that replays a frame after crashes sends it."""
    seen: set[tuple[int, int]] = set()
    return [accepts(seen, (7, 0), guarantee) for _ in range(3)] + [accepts(seen, (7, 1),
                                                                           guarantee)]


def test_exactly_once_drops_a_replayed_frame():
    assert replayed("exactly-once") == [True, False, False, True]


def test_at_least_once_counts_a_replayed_frame_again():
    assert replayed("at-least-once") == [True, True, True, True]


def test_unknown_guarantee_is_refused():
    with pytest.raises(PipelineDefinitionError, match="exactly-once"):
        spec_from_module(load_module(REPO / "pipelines/wordcount.py"), pipeline_id="p",
                         fmt="text", partitions=2, output_dir="/tmp/o", source_partitions=4,
                         where="wordcount.py", guarantee="at-most-once")


@pytest.mark.parametrize("strategy_drains, guarantees, drains", [
    (True, set(), True),  # one consumer for every pipeline: always drained
    (True, {"exactly-once"}, True),
    (False, {"exactly-once"}, False),  # the replay is dropped downstream
    (False, {"at-least-once"}, True),  # a replay would be counted again
    (False, {"exactly-once", "at-least-once"}, True),
    (False, set(), False),
])
def test_a_revocation_drains_when_a_replay_would_change_a_result(strategy_drains, guarantees,
                                                                 drains):
    assert drains_on_revoke(strategy_drains, guarantees) is drains
