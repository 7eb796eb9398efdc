"""The dashboard's data and /metrics against the real cluster: a job's figures as Prometheus
scrapes them (checked with Prometheus's own text parser) match what the job is known to
have done, and the dashboard's state shows the job, its timeline and the workers."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mapreduce_kafka import examples
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing.ports import free_port
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import output
from mapreduce_kafka.shared.codec import count_lines
from mapreduce_kafka.shared.store import SILENT_AFTER_S, Store
from tests import REPO
from tests.integration import jobs
from tests.integration.dashboard import get, serving
from tests.integration.test_cli import MAPREDUCE, assert_clean_error, cli

pytestmark = pytest.mark.integration
SAMPLES = [REPO / "pipelines" / "samples" / "text"]
RAISING_MAPPER = ("import re\n"
                  "def mapper(line):\n"
                  "    if 'ChainMap' in line:\n"
                  "        raise ValueError('no ChainMap here')\n"
                  "    for w in re.findall('[A-Za-z0-9]+', line):\n"
                  "        yield w, 1\n"
                  "def reducer(k, vs):\n"
                  "    return sum(vs)\n")


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    content_type, body = get(f"{base}/metrics")
    assert content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict, metric: str, **labels: str) -> float:
    return sum(value for (sample, got), value in samples.items() if sample == metric
               and all(dict(got).get(k) == v for k, v in labels.items()))


def grown(before: dict, now: dict, name: str, **labels: str) -> float:
    """How much a per-worker counter grew between two scrapes, series by series: a worker
    whose record went away in between (one an earlier test stopped, leaving its group as it
    exits) takes its past counts with it, and a new worker's series starts from zero."""
    return sum(value - before.get((sample, got), 0.0)
               for (sample, got), value in now.items() if sample == name
               and all(dict(got).get(k) == v for k, v in labels.items()))


def input_lines() -> int:
    return sum(count_lines(p.read_bytes()) for d in SAMPLES for p in sorted(d.iterdir()))


def figures_settled(settings) -> None:
    """Wait until every live worker has beaten since now: its published figures then hold
    all it did before (workers publish them with their heartbeat, every 2 s). Else the
    records of a job that ended a moment ago land in the next scrape, not in this one."""
    store = Store(settings.redis_url)
    since = store.now()

    def beaten() -> bool:
        live = [w for w in store.workers()
                if float(w.get("last_seen") or 0) > since - SILENT_AFTER_S]
        return all(float(w["last_seen"]) > since for w in live)

    wait_for(beaten, 15, "a heartbeat of every live worker")


def test_metrics_match_a_known_job(pool, tmp_path):
    with serving(pool) as base:
        figures_settled(pool)
        before = scrape(base)
        job = jobs.submit(pool, jobs.WORDCOUNT, SAMPLES, tmp_path / "out")
        status = jobs.wait(pool, job)
        keys = len(output.read_output(tmp_path / "out"))
        pid = job.pipeline_id

        def caught_up() -> bool:  # workers publish their figures every 2 s
            now = scrape(base)
            return (grown(before, now, "mapreduce_records_out_total", role="sink") >= keys
                    and grown(before, now, "mapreduce_records_in_total",
                              role="mapper") >= input_lines())

        wait_for(caught_up, 20, "the workers' figures to include the job")
        after = scrape(base)
        # a worker killed by an earlier test beats no more, and is counted silent within
        # the silent threshold (10 s)
        mappers = sum(1 for w in supervisor.running(pool.home) if w.role == "mapper")
        wait_for(lambda: total(scrape(base), "mapreduce_workers", role="mapper",
                               state="live") == mappers, 15, "live mappers to be counted")
    assert total(after, "mapreduce_frames_mapped_total", pipeline=pid) == int(status["frames"])
    assert total(after, "mapreduce_pipeline_frames", pipeline=pid) == int(status["frames"])
    for stage in ("map", "reduce", "sink"):
        assert total(after, "mapreduce_pipeline_partitions_ended", pipeline=pid,
                     stage=stage) == 4
    # the sink writes each result once; replays (a partition moving when both mappers join
    # the new pipeline's group) can only add to the mappers' input figures
    assert grown(before, after, "mapreduce_records_out_total", role="sink") == keys
    mapped = grown(before, after, "mapreduce_records_in_total", role="mapper")
    assert mapped < 2 * input_lines()
    assert (total(after, "mapreduce_job_duration_seconds_count", state="done")
            > total(before, "mapreduce_job_duration_seconds_count", state="done"))


def test_dead_letters_are_counted_per_pipeline_and_their_reasons_shown(pool, tmp_path):
    pipeline = tmp_path / "raising.py"
    pipeline.write_text(RAISING_MAPPER)
    with serving(pool) as base:
        job = jobs.submit(pool, pipeline, SAMPLES, tmp_path / "out")
        letters = int(jobs.wait(pool, job)["errors"])
        assert letters > 0
        assert total(scrape(base), "mapreduce_pipeline_dead_letters_total",
                     pipeline=job.pipeline_id) == letters

        def shown() -> dict:
            state = json.loads(get(f"{base}/api/state")[1])
            return next((p for p in state["pipelines"] if p["id"] == job.pipeline_id), {})

        wait_for(lambda: shown().get("dead_letters"), 20, "the first dead-letter reasons")
        row = shown()
    assert row["errors"] == letters
    assert all(reason.startswith("mapper: ValueError") for reason in row["dead_letters"])
    assert 1 <= len(row["dead_letters"]) <= 3


def test_the_state_shows_the_job_its_timeline_the_workers_and_the_cluster(pool, tmp_path):
    job = jobs.submit(pool, jobs.WORDCOUNT, SAMPLES, tmp_path / "out")
    jobs.wait(pool, job)
    with serving(pool) as base:
        state = json.loads(get(f"{base}/api/state")[1])
        _, page = get(f"{base}/")
        _, script = get(f"{base}/static/app.js")
    row = next(p for p in state["pipelines"] if p["id"] == job.pipeline_id)
    assert row["state"] == "done" and row["stages"]["sink"] == [4, 4]
    phases = [p["phase"] for p in row["timeline"]]
    assert phases == ["submit", "source", "map", "shuffle", "reduce", "sink", "finalize"]
    assert all(p["end"] is not None for p in row["timeline"])
    roles = {w["role"] for w in state["workers"]}
    assert roles == {"dispatcher", "mapper", "shuffler", "reducer", "sink"}
    assert all("records_in" in w["metrics"] for w in state["workers"])
    assert [b["state"] for b in state["cluster"]["kafka"]["brokers"]] == ["up"]
    assert b"/static/app.js" in page and b"http" not in page.replace(b"http-equiv", b"")
    assert b"fetch(\"/api/state\"" in script


def test_mapreduce_ui_serves_and_a_port_in_use_is_a_one_line_error(pool):
    """The command itself: it serves the page and the metrics on the port asked for, and a
    port that is taken is one line on stderr with exit 2, not uvicorn's log and exit 1."""
    port = free_port()
    env = {**os.environ, **pool.env()}
    proc = subprocess.Popen([*MAPREDUCE, "ui", "--port", str(port)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def answers() -> bool:
            try:
                return get(f"http://127.0.0.1:{port}/healthz")[1] == b"ok"
            except OSError:
                assert proc.poll() is None, proc.communicate()
                return False

        wait_for(answers, 30, "mapreduce ui to answer")
        assert b"<title>" in get(f"http://127.0.0.1:{port}/")[1]
        taken = cli(pool, "ui", "--port", str(port), timeout=60)
        assert_clean_error(taken, f"127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_a_jobs_counters_are_on_the_dashboard_and_in_metrics(pool, tmp_path):
    job = jobs.submit(pool, examples.COUNTERS, SAMPLES, tmp_path / "out",
                      params={"min_length": "4"})
    jobs.wait(pool, job)
    counted = Store(pool.redis_url).counters(job.pipeline_id)
    assert counted["input"]["lines"] == input_lines()
    with serving(pool) as base:
        samples = scrape(base)
        state = json.loads(get(f"{base}/api/state")[1])
    row = next(p for p in state["pipelines"] if p["id"] == job.pipeline_id)
    assert row["counters"] == counted
    for group, names in counted.items():
        for name, count in names.items():
            assert total(samples, "mapreduce_pipeline_counter_total", pipeline=job.pipeline_id,
                         group=group, name=name) == count
