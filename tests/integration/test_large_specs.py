"""Specs of any size on the real cluster: a pipeline whose globals hold a 10 MB lookup
table, and a job over 20,000 small input files (whose spec lists them all), travel as
parts and run exactly."""

from __future__ import annotations

import pytest

from mapreduce_kafka.shared.store import Store
from tests.integration import jobs

pytestmark = pytest.mark.integration

BIG_GLOBALS = '''
import hashlib

# about 10 MB pickled: built when the module is loaded, shipped with the spec
LOOKUP = {f"k{i}": hashlib.sha256(str(i).encode()).hexdigest() for i in range(140_000)}


def mapper(line):
    for word in line.split():
        yield LOOKUP[f"k{len(word) * 997}"][:6], 1


def reducer(code, ones):
    return sum(ones)
'''


def test_a_job_with_a_10_mb_lookup_table_in_its_globals_runs_exactly(pool, tmp_path):
    pipeline = tmp_path / "big_globals.py"
    pipeline.write_text(BIG_GLOBALS)
    job = jobs.submit(pool, pipeline, [jobs.examples.SAMPLES / "text"], tmp_path / "out")
    jobs.wait(pool, job)
    jobs.assert_matches_sequential(job)
    status = Store(pool.redis_url).pipeline(job.pipeline_id)
    assert int(status["spec_bytes"]) > 10 << 20 and int(status["spec_parts"]) >= 20


def test_a_job_over_20000_small_input_files_runs_exactly(pool, tmp_path):
    inputs = tmp_path / "in"
    for group in range(20):
        directory = inputs / f"g{group:02d}"
        directory.mkdir(parents=True)
        for index in range(1000):
            (directory / f"f{index:04d}.txt").write_text(f"w{index % 97} common g{group}\n")
    job = jobs.submit(pool, jobs.WORDCOUNT, [inputs], tmp_path / "out")
    status = jobs.wait(pool, job, timeout=900)
    assert int(status["frames"]) == 20_000
    comparison = jobs.assert_matches_sequential(job)
    assert comparison.actual_keys == 97 + 1 + 20
    assert int(Store(pool.redis_url).pipeline(job.pipeline_id)["spec_parts"]) >= 2
