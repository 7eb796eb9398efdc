"""mrjob jobs on the cluster, against mrjob itself: the examples mrjob ships and jobs using
every feature the framework takes over give the lines mrjob's own runner gives (its inline
runner; its local runner for command steps, which the inline runner cannot run), with the
same counters. Jobs that cannot run here are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mrjob")

import mrjob.examples  # noqa: E402

from mapreduce_kafka.services.client.inline import run_inline  # noqa: E402
from mapreduce_kafka.services.testing import shapes  # noqa: E402
from mapreduce_kafka.services.testing.mrjob_oracle import run_with_mrjob  # noqa: E402
from mapreduce_kafka.shared import output, streaming  # noqa: E402
from mapreduce_kafka.shared.errors import PipelineDefinitionError  # noqa: E402
from mapreduce_kafka.shared.pipeline_files import load_code  # noqa: E402
from mapreduce_kafka.shared.store import Store  # noqa: E402
from tests import REPO  # noqa: E402
from tests.integration import jobs  # noqa: E402
from tests.integration.test_cli import assert_clean_error, cli  # noqa: E402

pytestmark = pytest.mark.integration

EXAMPLES = Path(mrjob.examples.__file__).parent
OURS = REPO / "tests" / "mrjobs"
TEXT = sorted((REPO / "pipelines" / "samples" / "text").glob("*.txt"))

# (script, arguments after --, mrjob's runner for the oracle)
JOBS = [
    (EXAMPLES / "mr_word_freq_count.py", [], "inline"),
    (EXAMPLES / "mr_most_used_word.py", [], "inline"),
    (EXAMPLES / "mr_next_word_stats.py", [], "inline"),
    (EXAMPLES / "mr_wc.py", [], "inline"),
    (EXAMPLES / "mr_count_lines_right.py", [], "inline"),
    (EXAMPLES / "mr_count_lines_by_file.py", [], "inline"),
    (EXAMPLES / "mr_words_containing_u_freq_count.py", [], "local"),
    (EXAMPLES / "mr_grep.py", ["-e", "assert"], "local"),
    (shapes.MRJOB, ["--min-length", "4", "--weights", str(OURS / "weights.txt")], "inline"),
    (OURS / "mr_commands.py", [], "local"),
    (OURS / "mr_raw_files.py", [], "inline"),
]


def lines_of(directory: Path) -> list[bytes]:
    return sorted(streaming.line_of(key, value)
                  for key, value in output.read_output(directory, "lines"))


@pytest.mark.parametrize(("script", "args", "runner"), JOBS, ids=lambda v: getattr(v, "stem", ""))
def test_the_job_gives_mrjobs_lines_and_counters(pool, tmp_path, script, args, runner):
    job = jobs.submit(pool, script, TEXT, tmp_path / "out", partitions=3, job_args=args)
    jobs.wait(pool, job)
    expected = run_with_mrjob(script, TEXT, args, runner)
    assert output.is_complete(tmp_path / "out")
    found = lines_of(tmp_path / "out")
    assert found == expected.lines, f"{len(found)} lines, mrjob {len(expected.lines)}"
    assert found, "the oracle and the job agree on nothing"
    assert Store(pool.redis_url).counters(job.pipeline_id) == expected.counters


PROTOCOL_CASES = [  # (input lines, --input-protocol, --internal-protocol, --output-protocol)
    ("text", "RawValueProtocol", "JSONProtocol", "JSONValueProtocol"),
    ("text", "TextValueProtocol", "PickleProtocol", "ReprProtocol"),
    ("text", "BytesValueProtocol", "ReprProtocol", "PickleProtocol"),
    ("tsv", "RawProtocol", "StandardJSONProtocol", "ReprValueProtocol"),
    ("tsv", "TextProtocol", "JSONProtocol", "PickleValueProtocol"),
    ("json", "JSONValueProtocol", "PickleProtocol", "JSONProtocol"),
    ("jsontsv", "JSONProtocol", "ReprProtocol", "StandardJSONProtocol"),
]


def protocol_input(kind: str, directory: Path) -> Path:
    lines = [line for path in TEXT for line in path.read_text().splitlines()][:600]
    path = directory / f"{kind}.txt"
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "text":
        path.write_text("\n".join(lines) + "\n")
    elif kind == "tsv":
        path.write_text("".join(f"k{i % 7}\t{line}\n" for i, line in enumerate(lines)))
    elif kind == "json":
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    else:
        path.write_text("".join(f"{json.dumps([i % 5, 'x'])}\t{json.dumps(line)}\n"
                                for i, line in enumerate(lines)))
    return path


@pytest.mark.parametrize("case", PROTOCOL_CASES, ids=lambda case: "-".join(case))
def test_protocols_read_and_write_as_mrjob_does(tmp_path, case):
    """Every protocol, through the inline runner (the workers run the same step code)."""
    kind, read, internal, write = case
    args = ["--input-protocol", read, "--internal-protocol", internal,
            "--output-protocol", write]
    script = OURS / "mr_protocols.py"
    source = protocol_input(kind, tmp_path / "in")
    result = run_inline(load_code(script, None, args), [source], tmp_path / "out",
                        partitions=3)
    expected = run_with_mrjob(script, [source], args)
    assert not result.dead_letters, result.dead_letters[:1]
    assert lines_of(tmp_path / "out") == expected.lines


def test_a_protocol_job_on_the_cluster(pool, tmp_path):
    script = OURS / "mr_protocols.py"
    source = protocol_input("json", tmp_path / "in")
    args = ["--input-protocol", "JSONValueProtocol", "--internal-protocol", "PickleProtocol",
            "--output-protocol", "ReprProtocol"]
    job = jobs.submit(pool, script, [source], tmp_path / "out", partitions=2, job_args=args)
    jobs.wait(pool, job)
    assert lines_of(tmp_path / "out") == run_with_mrjob(script, [source], args).lines


def test_the_command_line_passes_what_follows_the_double_dash(pool, tmp_path):
    result = cli(pool, "run", str(EXAMPLES / "mr_grep.py"), "-i", "pipelines/samples/text",
                 "-o", str(tmp_path / "out"), "--verify", "--", "-e", "assert")
    assert result.returncode == 0, result.stderr
    assert "verify: identical" in result.stdout
    assert lines_of(tmp_path / "out") == run_with_mrjob(EXAMPLES / "mr_grep.py", TEXT,
                                                        ["-e", "assert"], "local").lines


def test_hadoop_streaming_commands_from_the_command_line(pool, tmp_path):
    from tests.mrjobs.mr_commands import SPLIT_WORDS, SUM_BY_KEY

    result = cli(pool, "run", "--mapper-cmd", SPLIT_WORDS, "--combiner-cmd", SUM_BY_KEY,
                 "--reducer-cmd", SUM_BY_KEY, "-i", "pipelines/samples/text",
                 "-o", str(tmp_path / "out"), "--partitions", "3")
    assert result.returncode == 0, result.stderr
    counts = {key: int(value) for key, value in output.read_output(tmp_path / "out", "lines")}
    words = [word for path in TEXT for word in path.read_text().lower().split()]
    assert counts["the"] == sum(1 for word in words if "".join(
        c for c in word if "a" <= c <= "z") == "the")
    assert len(counts) > 1000


def test_a_failing_command_is_its_jobs_error_within_the_failure_budget(pool, tmp_path):
    """A command that exits non-zero fails its frame like a mapper that raises: within the
    budget the frame is a dead letter naming the command's last words; past it the job
    fails. Another job goes on."""
    broken = "sh -c 'echo broken >&2; exit 3'"
    failing = cli(pool, "run", "--mapper-cmd", broken, "--max-errors", "0",
                  "-i", "pipelines/samples/text", "-o", str(tmp_path / "bad"))
    assert failing.returncode == 1, failing.stderr
    assert "exited with status 3: broken" in failing.stderr, failing.stderr
    assert not output.is_complete(tmp_path / "bad")
    tolerated = cli(pool, "run", "--mapper-cmd", broken, "-i", "pipelines/samples/text",
                    "-o", str(tmp_path / "tolerated"))
    assert tolerated.returncode == 0, tolerated.stderr
    assert "were left out" in tolerated.stdout
    good = jobs.submit(pool, EXAMPLES / "mr_wc.py", TEXT, tmp_path / "good", partitions=2)
    jobs.wait(pool, good)
    assert lines_of(tmp_path / "good") == run_with_mrjob(EXAMPLES / "mr_wc.py", TEXT).lines


@pytest.mark.parametrize(("script", "args", "says"), [
    (EXAMPLES / "mr_jar_step_example.py", [], "step 1 is a JarStep"),
    (EXAMPLES / "mr_spark_wordcount.py", [], "step 1 is a SparkStep"),
    (EXAMPLES / "mr_nick_nack_input_format.py", [], "HADOOP_INPUT_FORMAT"),
    (EXAMPLES / "mr_grep.py", ["-e", "x", "-r", "emr"], "option -r/--runner"),
    (EXAMPLES / "mr_grep.py", ["-e", "x", "--instance-type", "m5.xlarge"],
     "option --instance-type"),
    (EXAMPLES / "mr_grep.py", [], "the following arguments are required: -e"),
    (EXAMPLES / "mr_grep.py", ["-e", "x", "some/input"], "give the input with --input"),
], ids=lambda v: getattr(v, "stem", "-".join(v) if isinstance(v, list) else str(v)[:20]))
def test_what_cannot_run_is_refused_in_one_line(pool, tmp_path, script, args, says):
    with pytest.raises(PipelineDefinitionError, match=says):
        load_code(script, None, args)
    result = cli(pool, "run", str(script), "-i", "pipelines/samples/text",
                 "-o", str(tmp_path / "out"), "--", *args)
    assert_clean_error(result, says)
    assert not (tmp_path / "out").exists()


def test_a_task_finds_its_job_configuration_and_files(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("one\ntwo\n")
    result = run_inline(load_code(OURS / "mr_jobconf.py"), [source], partitions=1)
    found = {json.loads(key): json.loads(value) for key, value in result.pairs}
    [seen] = found["map"]
    directory = seen["mapreduce.job.local.dir"]
    assert seen == {
        "mapreduce.job.id": "inline", "mapreduce.task.ismap": "true",
        "mapreduce.map.input.file": f"file://{source}", "map.input.file": f"file://{source}",
        "mapreduce.map.input.start": "0", "mapreduce.map.input.length": "8",
        "mapreduce.job.local.dir": directory,
        "mapreduce.job.cache.local.files": f"{directory}/weights.txt",
        "my.setting": "42", "cwd files": ["weights.txt"]}
    assert found["reduce"] == {"ismap": "false", "input": None}


def test_a_file_of_two_jobs_arguments_for_a_plain_pipeline_and_jsonl_are_refused(tmp_path):
    two = tmp_path / "two.py"
    two.write_text("from mrjob.job import MRJob\nclass A(MRJob):\n    pass\n"
                   "class B(MRJob):\n    pass\n")
    with pytest.raises(PipelineDefinitionError, match=r"several MRJob classes \(A, B\)"):
        load_code(two)
    with pytest.raises(PipelineDefinitionError, match="defines no MRJob class"):
        load_code(REPO / "pipelines" / "wordcount.py", None, ["-e", "x"])
    with pytest.raises(PipelineDefinitionError, match="drop --format jsonl"):
        run_inline(load_code(EXAMPLES / "mr_wc.py"), TEXT, fmt="jsonl")
    broken = tmp_path / "broken.py"
    broken.write_text("from mrjob.job import MRJob\nclass Broken(MRJob):\n"
                      "    def configure_args(self):\n        raise OSError('no config')\n")
    with pytest.raises(PipelineDefinitionError, match="failed to start: OSError: no config"):
        load_code(broken)
    empty = tmp_path / "empty.py"
    empty.write_text("from mrjob.job import MRJob\nclass Nothing(MRJob):\n    pass\n")
    with pytest.raises(PipelineDefinitionError, match="defines no steps"):
        load_code(empty)
