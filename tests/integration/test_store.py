"""The coordination store on the real Redis: what a late or repeated write can and cannot
do to a pipeline."""

from __future__ import annotations

import uuid

import pytest

from mapreduce_kafka.shared.barrier import Stage
from mapreduce_kafka.shared.store import Store, claims

pytestmark = pytest.mark.integration


@pytest.fixture
def store(cluster) -> Store:
    return Store(cluster.redis_url)


def new_pipeline(store: Store, **fields) -> str:
    pipeline_id = f"store-test-{uuid.uuid4().hex[:8]}"
    assert store.create_pipeline(pipeline_id, {"partitions": 2, **fields})
    return pipeline_id


def test_a_late_mark_does_not_recreate_a_forgotten_pipelines_keys(store):
    pid = new_pipeline(store)
    assert not store.mark_ended(pid, Stage.MAP, 0, 2)
    assert store.finish_pipeline(pid, "done") == "done"
    store.forget_pipeline(pid)
    # a zombie worker's marks, progress and errors after the pipeline was forgotten
    assert not store.mark_ended(pid, Stage.MAP, 1, 2)
    store.add_mapped(pid, [7])
    assert store.add_error(pid, "mapper:7:0") == 0
    store.record_counters(pid, "m0:7", {"late": {"write": 1}})
    assert not store.update_pipeline(pid, frames=3)
    left = set(store.redis.keys(f"mr:*{pid}*")) - {f"mr:pipeline:{pid}"}
    assert not left, f"keys recreated after the pipeline was forgotten: {left}"
    assert store.redis.ttl(f"mr:pipeline:{pid}") > 0  # the status itself expires
    assert store.pipeline(pid)["final.map"] == "1"  # the final figures are kept in it


def test_a_replayed_tasks_counters_replace_its_first_attempts_and_outlive_the_keys(store):
    pid = new_pipeline(store)
    store.record_counters(pid, "m0:1", {"lines": {"all": 10, "blank": 2}})
    store.record_counters(pid, "m0:2", {"lines": {"all": 5}})
    store.record_counters(pid, "r0:0", {"keys": {"reduced": 3}})
    store.record_counters(pid, "m0:1", {"lines": {"all": 10, "blank": 2}})  # a replay
    store.record_counters(pid, "r0:1", {})  # a task that counted nothing writes nothing
    expected = {"keys": {"reduced": 3}, "lines": {"all": 15, "blank": 2}}
    assert store.counters(pid) == expected
    assert store.redis.hlen(f"mr:counters:{pid}") == 3
    assert store.finish_pipeline(pid, "done") == "done"
    store.forget_pipeline(pid)
    assert not store.redis.exists(f"mr:counters:{pid}")
    assert store.counters(pid) == expected  # kept in the status, with the final figures


def test_a_failure_cannot_override_a_complete_output_being_finalized(store):
    pid = new_pipeline(store)
    assert store.claim_finalizing(pid) == "finalizing"
    assert store.finish_pipeline(pid, "failed", "source stopped mid-stream") == "finalizing"
    assert pid in store.active_pipeline_ids()
    assert store.finish_pipeline(pid, "done", force=True) == "done"
    assert store.claim_finalizing(pid) == "done"
    assert store.finish_pipeline(pid, "failed", force=True) == "done"  # the first end wins


def test_an_ended_pipeline_waits_on_the_finishing_list_until_its_cleanup(store):
    pid = new_pipeline(store)
    kept = new_pipeline(store, keep=1)
    store.finish_pipeline(pid, "failed", "because")
    store.finish_pipeline(kept, "failed", "because")
    assert pid in store.finishing(older_than_s=0)
    assert kept in store.finishing(older_than_s=0)  # kept: tombstoned too, keys kept
    assert pid not in store.finishing(older_than_s=3600)  # ended just now: not yet
    store.forget_pipeline(pid)
    store.forget_pipeline(kept)
    assert not {pid, kept} & set(store.finishing(older_than_s=0))
    assert store.redis.ttl(f"mr:pipeline:{pid}") > 0
    assert store.redis.ttl(f"mr:pipeline:{kept}") == -1  # a kept status stays


def test_pipelines_whose_status_expired_are_pruned_from_the_list(store):
    pid = new_pipeline(store)
    assert pid in store.pipeline_ids()
    store.redis.delete(f"mr:pipeline:{pid}")  # what the expiry does
    assert pid not in store.pipeline_ids()
    assert not store.redis.sismember("mr:pipelines", pid)


def test_the_running_state_never_overrides_an_end(store):
    pid = new_pipeline(store)
    store.finish_pipeline(pid, "failed", "spec refused")
    assert not store.update_pipeline(pid, if_state="submitted", state="running")
    assert store.pipeline(pid)["state"] == "failed"


def test_a_write_no_replica_confirms_does_not_count(cluster, monkeypatch):
    """With wait_replicas=1 a write is followed by WAIT on its connection; this Redis has no
    replica, so none confirms and the write is reported as not done (the caller retries
    it), never as done."""
    from mapreduce_kafka.shared.store import connection

    monkeypatch.setattr(connection, "WAIT_TIMEOUT_MS", 100)
    waiting = Store(cluster.redis_url + "?wait_replicas=1")
    assert waiting.target.wait_replicas == 1
    key = f"store-test-{uuid.uuid4().hex[:8]}"
    with pytest.raises(connection.NotReplicated, match="0 of the 1 replicas"):
        waiting._durably(lambda client: client.set(key, "v"))
    plain = Store(cluster.redis_url)
    assert plain._durably(lambda client: client.set(key, "w")) is True


def test_a_source_that_ends_its_stream_between_two_reads_is_not_taken_for_dead(store):
    """The dispatcher reads a pipeline's status, then the source's liveness key. A source
    that completes its stream in between (frame count recorded, then its key cleared) must
    not be failed as dead (a finished job was failed that way)."""
    from mapreduce_kafka.services.roles.dispatcher import source_died

    pid = new_pipeline(store)
    store.touch_source(pid, 30)
    read_before = store.pipeline(pid)
    assert not source_died(store, pid, read_before)  # alive, mid-stream
    assert store.update_pipeline(pid, frames=12)  # the source completes its stream...
    store.clear_source(pid)  # ...and clears its key, after the status was read
    assert "frames" not in read_before
    assert not source_died(store, pid, read_before)

    dead = new_pipeline(store)  # never beat, or its key expired: mid-stream and gone
    assert source_died(store, dead, store.pipeline(dead))


def test_a_claim_is_held_by_one_live_pipeline_and_released_at_its_end(store):
    tag = uuid.uuid4().hex[:8]
    first, colliding = f"claims.{tag}", f"claims_{tag}"
    out = claims.output_claim(f"/tmp/claims-{tag}")
    assert store.create_pipeline(first, {"keep": 1},
                                 claims.pipeline_claims(first, f"/tmp/claims-{tag}"))
    with pytest.raises(claims.ClaimHeld) as held:
        store.create_pipeline(colliding, {}, claims.pipeline_claims(colliding, f"/tmp/x-{tag}"))
    assert (held.value.kind, held.value.holder) == (claims.ID, first)
    other = f"other-{tag}"
    with pytest.raises(claims.ClaimHeld) as held:
        store.create_pipeline(other, {}, claims.pipeline_claims(other, f"/tmp/claims-{tag}"))
    assert (held.value.kind, held.value.holder) == (claims.DIRECTORY, first)
    # a refusal writes nothing: neither the refused pipeline nor any of its claims
    assert not store.pipeline(colliding) and not store.pipeline(other)
    assert store.redis.get(claims.id_claim(other)) is None
    # a retried registration of the holder itself is success
    token = store.pipeline(first)["token"]
    assert store.create_pipeline(first, {"token": token}, claims.pipeline_claims(
        first, f"/tmp/claims-{tag}"))
    # a kept pipeline releases its claims when it ends, like every other
    assert store.finish_pipeline(first, "done") == "done"
    assert store.redis.get(out) is None and store.redis.get(claims.id_claim(first)) is None
    assert store.create_pipeline(colliding, {}, claims.pipeline_claims(
        colliding, f"/tmp/claims-{tag}"))
    store.finish_pipeline(colliding, "failed", "test over")


def test_a_claim_of_a_pipeline_no_longer_active_is_free(store):
    """A release lost with its write (say the status was lost) does not block a name."""
    tag = uuid.uuid4().hex[:8]
    store.redis.set(claims.id_claim(f"gone.{tag}"), f"gone.{tag}")
    pid = f"gone_{tag}"
    assert store.create_pipeline(pid, {}, claims.pipeline_claims(pid, f"kafka:t-{tag}"))
    assert store.redis.get(claims.id_claim(pid)) == pid
    store.finish_pipeline(pid, "failed", "test over")


def test_a_running_job_of_several_steps_reports_its_current_steps_figures(store):
    from mapreduce_kafka.services.status.status_view import pipeline_progress
    from mapreduce_kafka.services.ui.metrics import pipeline_families

    pid = new_pipeline(store, steps=3, map_only="0,1,0", source_partitions=2,
                       shuffle_partitions=4, state="running")
    for stage, total in ((Stage.SOURCE, 2), (Stage.MAP, 2), (Stage.SHUFFLE, 4),
                         (Stage.REDUCE, 2), (Stage.SINK, 2)):
        for partition in range(total):
            store.mark_ended(pid, stage, partition, total)
    store.mark_ended(pid, Stage.MAP, 0, 2, step=1)  # step 2 (map-only) half way
    info = store.pipeline(pid)
    progress = pipeline_progress(store, pid, info)
    assert progress["step"] == 2 and progress["steps"] == 3
    assert (progress["map"], progress["sink"], progress["source"]) == (1, 0, 2)
    assert progress["waiting_on"].startswith("step 2/3")
    row = {"id": pid, **info, **progress}
    families = {f.name: f for f in pipeline_families([row])}
    assert [s.value for s in families["mapreduce_pipeline_step"].samples] == [2.0]
    stages = {s.labels["stage"]: s.value
              for s in families["mapreduce_pipeline_partitions"].samples}
    assert stages["map"] == 2 and stages["shuffle"] == 0  # the map-only step's totals
