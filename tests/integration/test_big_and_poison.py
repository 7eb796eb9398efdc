"""Legitimate data of any size, and poison that ends as a dead letter or as its pipeline's
failure within seconds, never as a worker crash-looping, while a healthy job beside it
finishes exactly."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mapreduce_kafka.services.client import source
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.shared import inputs, output
from mapreduce_kafka.shared.errors import PipelineFailed
from tests import REPO
from tests.integration import jobs
from tests.integration.test_bad_records import dead_letters

pytestmark = pytest.mark.integration
SAMPLES = [REPO / "pipelines" / "samples" / "text"]

BIG = """\
import re
TOKEN = re.compile('[A-Za-z]+')


def mapper(line):
    yield 'hot', line  # every line under one key: a hot key with all the input as values
    if line.startswith('HUGE'):
        yield 'huge', 'z' * (64 * 1024 * 1024)  # one value of 64 MiB
    for word in TOKEN.findall(line)[:1]:
        yield word, 1


def reducer(key, values):
    if key == 'hot':
        return [len(values), sum(map(len, values)), sorted(values)[0][:40]]
    if key == 'huge':
        return values[0] + '!'  # a result of 64 MiB
    if key == 'the':
        return 'r' * 2_000_000  # a result of 2 MB
    return sum(values)
"""


def test_a_hot_key_a_2mb_result_and_64mb_values_and_results_are_exact(pool, tmp_path):
    pipeline = tmp_path / "big.py"
    pipeline.write_text(BIG)
    inputs = make_corpus(tmp_path / "in", 20, files=2)
    with open(inputs[0], "ab") as f:
        f.write(b"HUGE value follows\n")
    job = jobs.submit(pool, pipeline, inputs, tmp_path / "out")
    status = jobs.wait(pool, job, timeout=300)
    assert int(status.get("errors") or 0) == 0
    comparison = jobs.assert_matches_sequential(job)
    result = dict(output.read_output(job.output_dir))
    assert result["hot"][1] > 20_000_000 - 2_000_000  # 20 MB of values (minus newlines)
    assert len(result["huge"]) == 64 * 1024 * 1024 + 1
    assert len(result["the"]) == 2_000_000
    assert comparison.actual_keys > 50


POISON = """\
def map_chunk(data):
    # surrogateescape keeps undecodable bytes as lone surrogates: not valid Unicode
    for word in data.decode('utf-8', 'surrogateescape').split():
        yield word, 1


def reducer(key, values):
    if key == 'nan':
        return float('nan')  # JSON has no NaN: orjson would have written null
    if key == 'set':
        return {1, 2}  # not a JSON value
    return sum(values)
"""


def test_unencodable_keys_and_results_are_dead_lettered_and_the_job_finishes(pool, tmp_path):
    pipeline = tmp_path / "poison.py"
    pipeline.write_text(POISON)
    data = tmp_path / "in.txt"
    data.write_bytes(b"nan set good good \xff\xfe bad\n" * 50 + b"more words here\n")
    healthy = jobs.submit(pool, jobs.WORDCOUNT, SAMPLES, tmp_path / "healthy")
    job = jobs.submit(pool, pipeline, [data], tmp_path / "out")
    status = jobs.wait(pool, job, timeout=60)
    jobs.assert_matches_sequential(job)  # the oracle leaves out the same keys
    assert dict(output.read_output(job.output_dir))["good"] == 100
    letters = dead_letters(pool, job.pipeline_id)
    reasons = {letter["identity"].split(":")[0]: letter["error"] for letter in letters}
    assert "not valid Unicode" in reasons["encode"] or "surrogates" in reasons["encode"]
    assert "NaN" in " ".join(x["error"] for x in letters if x["identity"] == "reducer:nan")
    assert any(x["identity"] == "reducer:set" for x in letters)
    assert int(status["errors"]) == 3
    jobs.wait(pool, healthy)
    jobs.assert_matches_sequential(healthy)


def _unwritable_by_a_file(out: Path) -> None:
    """The output's parent turns into a file after submission: not a directory."""
    shutil.rmtree(out.parent)
    out.parent.write_text("not a directory")


def test_an_output_that_cannot_be_written_fails_its_job_in_seconds(workers, tmp_path):
    """Mappers stopped while the job is submitted, the output made unwritable, workers back:
    the sink cannot write, the job fails with a one-line reason, a healthy job beside it
    finishes exactly, and the sink goes on serving (it does not crash-loop)."""
    from mapreduce_kafka.services.localcluster import supervisor

    supervisor.scale(workers, {"mapper": 0})
    out = tmp_path / "parent" / "out"
    job = source.Job(jobs.WORDCOUNT, SAMPLES, out)
    source.prepare(job, workers)
    source.submit(job, workers)
    _unwritable_by_a_file(out)
    healthy = jobs.submit(workers, jobs.WORDCOUNT, SAMPLES, tmp_path / "healthy")
    supervisor.scale(workers, supervisor.DEFAULT_COUNTS)
    started = time.monotonic()
    with pytest.raises(PipelineFailed, match="sink cannot write the output .*Not a directory"):
        jobs.wait(workers, job, timeout=60)
    assert time.monotonic() - started < 30
    jobs.wait(workers, healthy, timeout=60)
    jobs.assert_matches_sequential(healthy)
    again = jobs.submit(workers, jobs.WORDCOUNT, SAMPLES, tmp_path / "again")
    jobs.wait(workers, again, timeout=60)  # the sink is still serving


def _tmpfs(directory: Path, size: str) -> bool:
    directory.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                           str(directory)], capture_output=True)
    return done.returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_fails_the_job_with_the_reason(pool, tmp_path):
    disk = tmp_path / "small-disk"
    if not _tmpfs(disk, "4k"):
        pytest.skip("mount -t tmpfs is not allowed here")
    try:
        job = jobs.submit(pool, jobs.WORDCOUNT, make_corpus(tmp_path / "in", 1), disk / "out")
        with pytest.raises(PipelineFailed, match="No space left on device"):
            jobs.wait(pool, job, timeout=60)
        assert not output.is_complete(disk / "out")
        healthy = jobs.submit(pool, jobs.WORDCOUNT, SAMPLES, tmp_path / "healthy")
        jobs.wait(pool, healthy, timeout=60)
        jobs.assert_matches_sequential(healthy)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_line_just_under_the_record_limit_among_short_lines_is_exact(pool, tmp_path):
    """Frames sent through Kafka never outgrow a message, whatever precedes a long line."""
    data = tmp_path / "in.txt"
    longest = inputs.MAX_RECORD_BYTES - 1
    with open(data, "wb") as f:
        f.write(b"short line one\n")
        f.write(b"a" * longest + b"\n")
        f.write(b"x y z short\n" * 30_000)
        f.write(b"b" * longest + b"\n" + b"end\n")
    job = jobs.submit(pool, jobs.WORDCOUNT, [data], tmp_path / "out", input_mode="kafka")
    jobs.wait(pool, job, timeout=60)
    jobs.assert_matches_sequential(job)
