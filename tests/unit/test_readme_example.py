"""The README's example of testing a pipeline with the inline runner, as written there."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_readmes_pipeline_test_passes(tmp_path, monkeypatch):
    readme = (REPO / "README.md").read_text()
    example = re.search(
        r"```python\n(from mapreduce_kafka import Pipeline\n\ndef test_wordcount.*?)```", readme,
        re.S)
    assert example, "the README's inline-runner example moved or changed shape"
    namespace: dict = {}
    exec(example.group(1), namespace)  # noqa: S102 - the README's own code
    monkeypatch.chdir(REPO)
    namespace["test_wordcount"](tmp_path)
