"""Counters, parameters and shipped files on the real broker and Redis: a job's counters
(mapper, reducer, map-only and later steps) are the inline runner's, shown by `status
--json` and the API, kept once the job's keys are dropped; `--param` and `--file` reach
the code on every worker."""

from __future__ import annotations

import json

import pytest

from mapreduce_kafka import examples
from mapreduce_kafka.services.client.inline import run_inline
from mapreduce_kafka.services.testing import shapes
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import output
from mapreduce_kafka.shared.spec import PipelineCode
from mapreduce_kafka.shared.store import Store, keys
from tests.integration import jobs
from tests.integration.test_cli import cli

pytestmark = pytest.mark.integration


def test_counters_and_a_parameter_through_the_command_line(pool, tmp_path):
    out = tmp_path / "out"
    ran = cli(pool, "run", "pipelines/counters.py", "-i", "pipelines/samples/text",
              "-o", str(out), "--param", "min_length=5", "--id", "counted-cli", "--verify")
    assert ran.returncode == 0, ran.stderr
    assert "verify: identical" in ran.stdout
    inline = run_inline(PipelineCode.from_file(examples.COUNTERS), [examples.SAMPLES / "text"],
                        params={"min_length": "5"})
    assert "  words: too short: " in ran.stdout  # the counters close the summary
    for group, names in inline.counters.items():
        for name, count in names.items():
            assert f"  {group}: {name}: {count}\n" in ran.stdout
    words = inline.counters["words"]
    assert words["too short"] > 0 and words["distinct"] == len(inline.pairs)
    assert all(len(word) >= 5 for word, _ in output.read_output(out))
    # once the job's keys are dropped, its status keeps the counters
    store = Store(pool.redis_url)
    wait_for(lambda: not store.redis.exists(keys.counters("counted-cli")), 60,
             "the cleanup of the job's counters")
    shown = cli(pool, "status", "counted-cli", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["pipeline"]["counters"] == inline.counters


def test_counters_of_every_step_match_the_inline_runners(pool, tmp_path):
    inputs = make_corpus(tmp_path / "in", 1, files=2)
    stepped = jobs.submit(pool, shapes.THREE_STEPS, inputs, tmp_path / "steps", partitions=2)
    mapped = jobs.submit(pool, shapes.MAP_ONLY, inputs, tmp_path / "map_only", partitions=3)
    for job in (stepped, mapped):
        jobs.wait(pool, job)
        jobs.assert_matches_sequential(job)
        jobs.assert_counters_exact(pool, job)
    counted = Store(pool.redis_url).counters(stepped.pipeline_id)
    assert set(counted) == {"step 1", "step 2", "step 3"}, counted
    assert counted["step 1"]["distinct words"] > 50


def test_a_parameter_reaches_every_worker_and_the_oracle(pool, tmp_path):
    inputs = [examples.SAMPLES / "text"]
    job = jobs.submit(pool, examples.GREP, inputs, tmp_path / "out", partitions=2,
                      params={"pattern": r"\bdict\b"})
    jobs.wait(pool, job)
    comparison = jobs.assert_matches_sequential(job)
    lines = [line for _, line in output.read_output(tmp_path / "out")]
    assert comparison.actual_keys == len(lines) > 5
    assert all("dict" in line.lower() for line in lines)
    inline = run_inline(PipelineCode.from_file(examples.GREP), inputs, tmp_path / "inline",
                        partitions=2, params={"pattern": r"\bdict\b"})
    assert jobs.part_lines(tmp_path / "out") == jobs.part_lines(tmp_path / "inline")
    assert len(inline.pairs) == len(lines)


def test_a_bad_parameter_is_a_one_line_error(pool, tmp_path):
    result = cli(pool, "run", "pipelines/grep.py", "-i", "pipelines/samples/text",
                 "-o", str(tmp_path / "out"), "--param", "no-equals-sign")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "--param" in result.stderr and "NAME=VALUE" in result.stderr


STOP_WORDS = '''
from mapreduce_kafka import side_file

stop = None


def mapper(line):
    global stop
    if stop is None:  # read once per worker process, from the copy shipped with the job
        stop = set(side_file("stop.txt").read_text().split())
    for word in line.lower().split():
        if word not in stop:
            yield word, 1


def reducer(word, ones):
    return sum(ones)
'''


def test_a_shipped_file_is_read_by_name_on_every_worker(pool, tmp_path):
    pipeline = tmp_path / "stop_words.py"
    pipeline.write_text(STOP_WORDS)
    (tmp_path / "stop.txt").write_text("the a an of to and\n")
    ran = cli(pool, "run", str(pipeline), "-i", "pipelines/samples/text",
              "-o", str(tmp_path / "out"), "--file", str(tmp_path / "stop.txt"), "--verify")
    assert ran.returncode == 0, ran.stderr
    assert "verify: identical" in ran.stdout
    words = dict(output.read_output(tmp_path / "out"))
    assert "the" not in words and "of" not in words and words["for"] > 10
    inline = run_inline(PipelineCode.from_file(pipeline), [examples.SAMPLES / "text"],
                        files=[tmp_path / "stop.txt"])
    assert inline.results == words


def test_a_missing_or_doubled_shipped_file_is_a_one_line_error(pool, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "stop.txt").write_text("x\n")
    (tmp_path / "stop.txt").write_text("y\n")
    for files, message in ((["nope.txt"], "no such file"),
                           ([str(tmp_path / "stop.txt"), str(tmp_path / "a" / "stop.txt")],
                            "is shipped already")):
        args = [a for f in files for a in ("--file", f)]
        result = cli(pool, "run", "pipelines/wordcount.py", "-i", "pipelines/samples/text",
                     "-o", str(tmp_path / "out"), *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert message in result.stderr
