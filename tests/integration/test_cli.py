"""The `mapreduce` command as a user runs it: a clear one-line error for bad input, never a
traceback; a verified run prints its summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mapreduce_kafka.services.testing.ports import free_port
from tests import REPO

pytestmark = pytest.mark.integration
MAPREDUCE = [sys.executable, "-m", "mapreduce_kafka.services.cli"]


def cli(settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.env(), "COLUMNS": "80"}  # the width CI's pipes get
    return subprocess.run([*MAPREDUCE, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


def assert_clean_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    # one line, however long, so that a script can grep it
    error_line = next((line for line in result.stderr.splitlines() if "error:" in line.lower()), "")
    for fragment in fragments:
        assert fragment in error_line, result.stderr


@pytest.mark.smoke
def test_run_verify_prints_summary_and_top_words(pool, tmp_path):
    result = cli(pool, "run", "pipelines/wordcount.py", "--input", "pipelines/samples/text",
                 "--output", str(tmp_path / "out"), "--verify", "--top", "3")
    assert result.returncode == 0, result.stderr
    assert "verify: identical:" in result.stdout
    assert "done in" in result.stdout
    top = result.stdout.split("\n")[1].split()
    assert top[1] == "the" and int(top[0]) > 100


def test_submit_prints_the_pipeline_id_and_status_shows_it(pool, tmp_path):
    result = cli(pool, "submit", "pipelines/wordcount.py", "-i", "pipelines/samples/text",
                 "-o", str(tmp_path / "out"), "--id", "cli-submit-test")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cli-submit-test"
    status = cli(pool, "status", "--json")
    assert status.returncode == 0 and "cli-submit-test" in status.stdout
    assert '"role": "mapper"' in status.stdout


def test_missing_input(pool, tmp_path):
    result = cli(pool, "run", "pipelines/wordcount.py", "-i", str(tmp_path / "nope"),
                 "-o", str(tmp_path / "out"))
    assert_clean_error(result, "input path does not exist")


def test_pipeline_with_a_combiner_and_no_reducer(pool, tmp_path):
    module = tmp_path / "half.py"
    module.write_text("def mapper(line):\n    yield line, 1\n"
                      "def combiner(line, ones):\n    return sum(ones)\n")
    result = cli(pool, "run", str(module), "-i", "pipelines/samples/text",
                 "-o", str(tmp_path / "out"))
    assert_clean_error(result, "defines a `combiner` but no `reducer`")


def test_invalid_pipeline_id(pool, tmp_path):
    result = cli(pool, "run", "pipelines/wordcount.py", "-i", "pipelines/samples/text",
                 "-o", str(tmp_path / "out"), "--id", "bad---id")
    assert_clean_error(result, "reserved")
    result = cli(pool, "run", "pipelines/wordcount.py", "-i", "pipelines/samples/text",
                 "-o", str(tmp_path / "out"), "--id", "no spaces")
    assert_clean_error(result, "not allowed in a Kafka topic name")


def test_existing_output_is_refused_before_anything_is_sent(pool, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    result = cli(pool, "run", "pipelines/wordcount.py", "-i", "pipelines/samples/text",
                 "-o", str(tmp_path / "out"))
    assert_clean_error(result, "already exists")
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"


def test_bad_jsonl_fails_the_job_and_finalizes_nothing(pool, tmp_path):
    # a long path makes the message longer than any terminal: it must still be one line
    folder = tmp_path / ("deeply-nested-input-folder-" * 4)
    folder.mkdir()
    data = folder / "docs.jsonl"
    data.write_text('{"doc": "a", "text": "x"}\n{"doc": "b", "text": \n')
    result = cli(pool, "run", "pipelines/inverted_index.py", "--format", "jsonl",
                 "-i", str(data), "-o", str(tmp_path / "out"))
    assert_clean_error(result, "line 2 is not valid JSON")
    assert not (tmp_path / "out").exists()


def test_unreachable_kafka(pool, tmp_path):
    result = cli(pool, "--bootstrap-servers", f"127.0.0.1:{free_port()}", "run",
                 "pipelines/wordcount.py", "-i", "pipelines/samples/text",
                 "-o", str(tmp_path / "out"))
    assert_clean_error(result, "cannot reach Kafka at 127.0.0.1:")


def test_unreachable_redis(pool, tmp_path):
    result = cli(pool, "--redis-url", f"redis://127.0.0.1:{free_port()}/0", "run",
                 "pipelines/wordcount.py", "-i", "pipelines/samples/text",
                 "-o", str(tmp_path / "out"))
    assert_clean_error(result, "cannot reach Redis at redis://127.0.0.1:")


def test_help_explains_commands(pool):
    result = cli(pool, "--help")
    assert result.returncode == 0
    for command in ("up", "run", "submit", "status", "down"):
        assert command in result.stdout
    run_help = cli(pool, "run", "--help").stdout
    assert "--verify" in run_help and "--partitions" in run_help


def test_fresh_home_without_cluster_says_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAPREDUCE_")}
    env["MAPREDUCE_HOME"] = str(tmp_path / "home")
    result = subprocess.run([*MAPREDUCE, "status"], capture_output=True, text=True, env=env,
                            cwd=REPO, timeout=60)
    assert_clean_error(result, "mapreduce up")
    assert Path(tmp_path / "home").exists() is False


def test_status_marks_a_stopped_worker_silent_and_shows_lag(workers):
    import json
    import signal

    from mapreduce_kafka.services.localcluster import supervisor
    from mapreduce_kafka.services.testing.waiting import wait_for

    sink = next(w for w in supervisor.running(workers.home) if w.role == "sink")

    def rows() -> list[dict]:
        result = cli(workers, "status", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["workers"]

    def silent_with_sink() -> list[dict]:
        silent = [r for r in rows() if r["silent"]]
        return silent if str(sink.pid) in {r["pid"] for r in silent} else []

    wait_for(lambda: any(r["pid"] == str(sink.pid) and not r["silent"] for r in rows()),
             timeout=60, what="the sink's first heartbeat")  # a fresh pool is starting
    os.kill(sink.pid, signal.SIGSTOP)
    try:
        silent = wait_for(silent_with_sink, timeout=40, what="the stopped sink marked silent")
    finally:
        os.kill(sink.pid, signal.SIGCONT)
    # Workers earlier tests killed are listed SILENT too (for 10 minutes); every worker
    # still running, but the stopped sink, is not.
    running = {str(w.pid) for w in supervisor.running(workers.home)} - {str(sink.pid)}
    assert running and not running & {r["pid"] for r in silent}
    live = [r for r in rows() if r["role"] == "mapper" and r["pid"] in running]
    assert live and all(isinstance(r["lag"], int) and r["host"] for r in live)
    wait_for(lambda: not any(r["silent"] for r in rows() if r["pid"] == str(sink.pid)),
             timeout=40, what="the sink heard from again")


def test_worker_without_a_signing_key_exits_with_a_clear_error(pool, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAPREDUCE_")}
    env.update({**pool.env(), "MAPREDUCE_HOME": str(tmp_path / "keyless")})
    result = subprocess.run([sys.executable, "-m", "mapreduce_kafka.services.worker", "mapper"],
                            capture_output=True, text=True, env=env, timeout=60, cwd=REPO)
    assert result.returncode == 2
    assert "no pipeline signing key" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_status_says_what_a_running_pipeline_waits_on_and_keeps_final_figures(workers,
                                                                              tmp_path):
    """With no reducer running, a job waits on reduce, and `status` says so; once it is
    done, its final figures stay (not 0/N, as when its counts were forgotten)."""
    import json

    from mapreduce_kafka.services.localcluster import supervisor
    from tests.integration import jobs

    supervisor.scale(workers, {"reducer": 0})
    job = jobs.submit(workers, jobs.WORDCOUNT, [REPO / "pipelines/samples/text"],
                      tmp_path / "out", partitions=3)

    def waiting() -> str:
        pipelines = json.loads(cli(workers, "status", "--json").stdout)["pipelines"]
        return next(p for p in pipelines if p["id"] == job.pipeline_id).get("waiting_on", "")

    from mapreduce_kafka.services.testing.waiting import wait_for

    wait_for(lambda: waiting().startswith("reduce (0/3"), 60, "status to say it waits on reduce")
    supervisor.scale(workers, supervisor.DEFAULT_COUNTS)
    jobs.wait(workers, job)
    pipelines = json.loads(cli(workers, "status", "--json").stdout)["pipelines"]
    done = next(p for p in pipelines if p["id"] == job.pipeline_id)
    assert (done["state"], done["map"], done["reduce"], done["sink"]) == ("done", 3, 3, 3)
    assert done["mapped"] > 0 and "waiting_on" not in done
