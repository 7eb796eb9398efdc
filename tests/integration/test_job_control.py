"""Job control through the `mapreduce` command, and the interface's promises: one-line
errors with their exit codes, several inputs after one --input, workers only where they
belong, global flags honoured by `mapreduce worker`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading

import pytest
from confluent_kafka.admin import AdminClient

from mapreduce_kafka.services.client import api
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import topics
from mapreduce_kafka.shared.errors import PipelineFailed
from mapreduce_kafka.shared.store import Store
from tests import REPO
from tests.integration import jobs
from tests.integration.test_cli import MAPREDUCE, assert_clean_error, cli

pytestmark = pytest.mark.integration
SAMPLES = str(REPO / "pipelines" / "samples" / "text")


def test_submit_then_wait_then_status_of_one_pipeline(pool, tmp_path):
    submitted = cli(pool, "submit", "pipelines/wordcount.py", "--input", SAMPLES,
                    "-o", str(tmp_path / "out"))
    assert submitted.returncode == 0, submitted.stderr
    pipeline_id = submitted.stdout.strip()
    waited = cli(pool, "wait", pipeline_id)
    assert waited.returncode == 0, waited.stderr
    assert f"pipeline {pipeline_id}: done" in waited.stdout
    one = json.loads(cli(pool, "status", pipeline_id, "--json").stdout)["pipeline"]
    assert (one["state"], one["map"], one["sink"]) == ("done", 4, 4) and one["keys"] > 100
    shown = cli(pool, "status", pipeline_id)
    assert "keys written" in shown.stdout and "sink ended" in shown.stdout


def test_several_inputs_after_one_flag_and_a_repeated_flag_are_the_same(pool, tmp_path):
    files = [str(p) for p in make_corpus(tmp_path / "in", 0.2, files=3)]
    one_flag = cli(pool, "run", "pipelines/wordcount.py", "--input", *files,
                   "--output", str(tmp_path / "a"), "--verify")
    assert one_flag.returncode == 0, one_flag.stderr
    repeated = cli(pool, "run", "pipelines/wordcount.py", *[a for f in files for a in ("-i", f)],
                   "--output", str(tmp_path / "b"), "--verify")
    assert repeated.returncode == 0, repeated.stderr
    assert "verify: identical" in one_flag.stdout and "verify: identical" in repeated.stdout
    assert (tmp_path / "a" / "part-00000").read_bytes() == (
        tmp_path / "b" / "part-00000").read_bytes()


def test_cancel_stops_a_running_job_and_cleans_up(pool, tmp_path):
    # the paused source learns of the cancellation and stops, saying why
    with pytest.raises(PipelineFailed, match="cancelled"), jobs.paused_mid_stream(
            pool, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 8), tmp_path / "out",
            still_running=False) as job:
        cancelled = cli(pool, "cancel", job.pipeline_id)
        assert cancelled.returncode == 0, cancelled.stderr
        waited = cli(pool, "wait", job.pipeline_id)
        assert waited.returncode == 1 and "cancelled" in waited.stderr
        job_state = Store(pool.redis_url).pipeline(job.pipeline_id)
        assert (job_state["state"], job_state["reason"]) == ("failed", "cancelled")
    admin = AdminClient(pool.admin_config())
    names = {topics.map_topic(job.pipeline_id), topics.reduce_topic(job.pipeline_id)}
    wait_for(lambda: not names & set(admin.list_topics(timeout=10).topics), 30,
             "the cancelled pipeline's topics to be deleted")
    assert not list(tmp_path.glob(".out.*.staging")) and not (tmp_path / "out").exists()
    again = cli(pool, "cancel", job.pipeline_id)
    assert_clean_error(again, "has already ended")


def test_deadletters_prints_one_json_object_a_line(pool, tmp_path):
    from tests.integration.test_bad_records import POISON_MAPPER

    pipeline = tmp_path / "poison.py"
    pipeline.write_text(POISON_MAPPER)
    job = jobs.submit(pool, pipeline, make_corpus(tmp_path / "in", 0.3), tmp_path / "out")
    jobs.wait(pool, job)
    printed = cli(pool, "deadletters", job.pipeline_id, "--limit", "3")
    assert printed.returncode == 0, printed.stderr
    letters = [json.loads(line) for line in printed.stdout.splitlines()]
    assert len(letters) == 3 and all("cannot map" in x["error"] for x in letters)
    shown = json.loads(cli(pool, "status", job.pipeline_id, "--json").stdout)
    assert len(shown["dead_letters"]) == 5 and shown["pipeline"]["errors"] > 5


def test_status_watch_refreshes_until_interrupted(pool):
    env = {**os.environ, **pool.env(), "COLUMNS": "200"}
    proc = subprocess.Popen([*MAPREDUCE, "status", "--watch"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shown: list[str] = []
    reader = threading.Thread(target=lambda: shown.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        wait_for(lambda: "".join(shown).count("workers (silent") >= 2, 30,
                 "the watched display to be drawn and refreshed")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    assert proc.returncode == 130, proc.stderr.read() if proc.stderr else ""


def test_a_timeout_has_its_own_exit_code(pool, tmp_path):
    make_corpus(tmp_path / "in", 3)
    result = cli(pool, "run", "pipelines/wordcount.py", "-i", str(tmp_path / "in"),
                 "-o", str(tmp_path / "out"), "--timeout", "0.01")
    assert result.returncode == 3, result.stderr
    assert "did not finish within 0.01s" in result.stderr


def test_errors_are_one_line_never_a_traceback(pool, tmp_path):
    bad_level = cli(pool, "--log-level", "LOUD", "status")
    assert bad_level.returncode == 2 and "Traceback" not in bad_level.stderr
    assert "'LOUD' is not one of" in bad_level.stderr
    other_db = pool.redis_url.rsplit("/", 1)[0] + "/5"
    Store(other_db).redis.set("mr:pipelines", "not a set")  # Redis refuses SMEMBERS on it
    redis_error = cli(pool.with_(redis_url=other_db), "status")
    assert_clean_error(redis_error, "Redis error", "WRONGTYPE")
    unreadable = tmp_path / "no-such-dir" / "config.toml"
    missing_config = cli(pool, "--config", str(unreadable), "status")
    assert_clean_error(missing_config, "does not exist")


def test_a_remote_cluster_gets_no_workers_started_by_the_submitter(pool, tmp_path):
    """spark-submit never starts executors on the submitting host: with a cluster named
    by flags, run and up start nothing here."""
    home = tmp_path / "submitter-home"
    flags = ["--bootstrap-servers", pool.bootstrap_servers, "--redis-url", pool.redis_url,
             "--home", str(home)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAPREDUCE_")}
    env["MAPREDUCE_SIGNING_KEY_FILE"] = str(pool.home / "signing.key")
    result = subprocess.run([*MAPREDUCE, *flags, "run", "pipelines/wordcount.py", "-i", SAMPLES,
                             "-o", str(tmp_path / "out")], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not list((home / "workers").glob("*.pid")) if (home / "workers").exists() else True
    up = subprocess.run([*MAPREDUCE, *flags, "up"], env=env, cwd=REPO, capture_output=True,
                        text=True, timeout=60)
    assert_clean_error(up, "manages the local cluster only")


def test_a_foreground_worker_takes_the_global_flags(pool, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAPREDUCE_")}
    # Its log goes to a file: a pipe nobody reads fills up (the worker logs every refused
    # spec it meets in PIPELINES) and blocks the worker.
    log = tmp_path / "worker.log"
    with log.open("wb") as sink_log:
        proc = subprocess.Popen([*MAPREDUCE, "--bootstrap-servers", pool.bootstrap_servers,
                                 "--redis-url", pool.redis_url, "--home", str(tmp_path),
                                 "--signing-key-file", str(pool.home / "signing.key"),
                                 "worker", "sink"], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=sink_log)
    store = Store(pool.redis_url)
    try:
        wait_for(lambda: any(w.get("pid") == str(proc.pid) for w in store.workers()), 60,
                 "the foreground worker's first heartbeat in the cluster's Redis")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its log ends: {log.read_text()[-2000:]}") from exc
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_local_brokers_port_variable_does_not_break_workers(pool, tmp_path, monkeypatch):
    """MAPREDUCE_KAFKA_PORT is the local broker's port, not a librdkafka property."""
    monkeypatch.setenv("MAPREDUCE_KAFKA_PORT", "29092")
    worker = supervisor.start(pool, "reducer", 70)
    store = Store(pool.redis_url)
    try:
        wait_for(lambda: any(w.get("pid") == str(worker.pid) for w in store.workers()), 60,
                 "the reducer with MAPREDUCE_KAFKA_PORT set to report")
    finally:
        supervisor.stop(pool.home, worker)


def test_the_api_lists_running_and_recent_pipelines(pool, tmp_path):
    cluster = api.Cluster(pool)
    job = cluster.submit(api.Pipeline.from_file(jobs.WORDCOUNT), [SAMPLES], tmp_path / "o")
    job.wait()
    listed = {p["id"]: p for p in cluster.pipelines()}
    assert job.pipeline_id in listed and listed[job.pipeline_id]["mapped"] > 0
    assert not {p["id"] for p in cluster.pipelines(recent_s=0)} & {job.pipeline_id}
    assert job.pipeline_id in {p["id"] for p in cluster.pipelines(everything=True,
                                                                   recent_s=0)}

