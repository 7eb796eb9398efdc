"""--keep keeps a job's data, never its place: a kept pipeline is tombstoned like any other,
so that mappers and reducers give up the consumer they held for it (the default pool serves
MAPREDUCE_PIPELINE_CONSUMERS pipelines at once: one kept pipeline more than that made every
later job wait forever), while its topics and Redis keys stay to be looked at."""

from __future__ import annotations

import pytest

from mapreduce_kafka.services.client import source
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import kafka, topics
from mapreduce_kafka.shared.barrier import Stage
from mapreduce_kafka.shared.store import Store, keys
from tests.integration import jobs

pytestmark = pytest.mark.integration


def test_kept_jobs_hold_no_consumer_slot_and_keep_their_topics(pool, tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("a kept job keeps its topics\nnot its place\n")
    kept = []
    for index in range(pool.pipeline_consumers + 1):
        job = source.Job(jobs.WORDCOUNT, [text], tmp_path / f"kept-{index}", partitions=1,
                         keep=True)
        source.prepare(job, pool)
        source.submit(job, pool)
        jobs.wait(pool, job, timeout=60)
        kept.append(job.pipeline_id)
    # one more than the slots: it runs only if the kept ones gave theirs up
    last = jobs.submit(pool, jobs.WORDCOUNT, [text], tmp_path / "after", partitions=1)
    jobs.wait(pool, last, timeout=60)
    jobs.assert_matches_sequential(last)

    # The dispatcher acts on tombstones in order: once the last job's topics are gone, it
    # has passed every kept job's tombstone, and left their topics alone.
    admin = kafka.admin(pool)
    wait_for(lambda: topics.map_topic(last.pipeline_id) not in admin.list_topics().topics,
             30, "the last job's topics deleted")
    existing = admin.list_topics().topics
    for pid in kept:
        assert topics.map_topic(pid) in existing and topics.reduce_topic(pid) in existing
    store = Store(pool.redis_url)
    assert not set(kept) & set(store.finishing(older_than_s=0))  # cleaned up, tombstoned
    assert store.redis.scard(keys.ended(kept[0], Stage.SINK)) == 1  # its keys stay
    assert store.redis.ttl(keys.pipeline(kept[0])) == -1  # and its status
