"""Stall repair gives up: a pipeline whose inputs are complete and that shows no progress for
the stall limit is failed with what it waits on (shared/liveness.py), so that every job
ends, done or failed with a reason."""

from __future__ import annotations

import json

from mapreduce_kafka.shared import liveness
from mapreduce_kafka.shared.barrier import FLOW, Stage
from mapreduce_kafka.shared.liveness import FINALIZE, StallWatch


def test_only_a_pipeline_whose_inputs_are_complete_is_given_up_on():
    assert liveness.gives_up(Stage.REDUCE, 600, 600)
    assert liveness.gives_up(FINALIZE, 900, 600)
    assert not liveness.gives_up(Stage.REDUCE, 599, 600)
    assert not liveness.gives_up(Stage.REDUCE, 10**6, 0)  # 0: never
    # the source's stream is the source's to end (its own watchdog fails it if it dies)
    assert not liveness.gives_up(Stage.SOURCE, 10**6, 600)
    assert not liveness.gives_up(None, 10**6, 600)  # a total not known yet


def test_stillness_is_counted_from_the_last_progress_not_the_last_repair():
    watch = StallWatch(stall_s=10)
    assert not watch.stalled("p", (1, 2), now=0)
    assert watch.stalled("p", (1, 2), now=10)  # a repair: its clock restarts
    assert watch.still_for("p", now=15) == 15  # the stillness does not
    assert not watch.stalled("p", (1, 3), now=16)  # progress
    assert watch.still_for("p", now=20) == 4
    assert watch.still_for("unknown", now=20) == 0


def test_the_reason_names_the_stage_and_the_partitions_nobody_holds():
    totals = dict.fromkeys(FLOW, 2)
    waiting = liveness.describe({**dict.fromkeys(FLOW, 2), Stage.REDUCE: 0,
                                 Stage.SINK: 0}, totals)
    partitions = liveness.stage_input(Stage.REDUCE, "p1", totals)
    reason = liveness.stall_reason(waiting, 612.4, liveness.unheld(partitions, set()))
    assert reason == ("stalled: no progress for 612 s with its inputs complete, waiting on "
                      "reduce (0/2 partitions ended); no live worker holds REDUCE---p1[0], "
                      "REDUCE---p1[1]")
    many = [f"SHUFFLE[{p}]" for p in range(10)]
    assert liveness.stall_reason("x", 1, many).endswith("SHUFFLE[7] and 2 more")
    assert "holds" not in liveness.stall_reason("x", 1, [])


def test_workers_reading_the_waiting_stage_input_count_as_progress():
    def beat(partitions: str, messages_in: float) -> dict[str, str]:
        return {"partitions": partitions, "metrics": json.dumps({"messages_in": messages_in})}

    reduce_input = liveness.activity_input(Stage.REDUCE, "p1", dict.fromkeys(FLOW, 2), 4)
    workers = [beat("REDUCE---p1[0],REDUCE---p2[0]", 30), beat("REDUCE---p1[1]", 12),
               beat("REDUCE---p2[1]", 1000), beat("", 5), {"partitions": "REDUCE---p1[0]"}]
    assert liveness.reading(reduce_input, workers) == 42
    assert liveness.activity_input(FINALIZE, "p1", dict.fromkeys(FLOW, 2), 3) == [
        "OUTPUT[0]", "OUTPUT[1]", "OUTPUT[2]"]
    assert liveness.reading(reduce_input, [{"partitions": "REDUCE---p1[0]",
                                            "metrics": "not json"}]) == 0
