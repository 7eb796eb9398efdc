"""A compose project of this repository's containers, driven the way a user drives it:
through compose/podman-compose (podman-compose with the settings these machines need)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mapreduce_kafka.examples.wordcount import TOKEN
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared import output
from tests import REPO

WRAPPER = REPO / "compose" / "podman-compose"
CONTAINERS_CONF = REPO / "compose" / "containers.conf"
SLOW_WORDCOUNT = Path(__file__).parent / "slow_wordcount.py"


def unavailable() -> str | None:
    """Why this machine cannot run the containers, in one line, or None when it can."""
    if shutil.which("podman") is None:
        return "podman is not installed (make install adds it on Debian)"
    if shutil.which("debootstrap") is None and os.environ.get("MAPREDUCE_BASE_IMAGE") is None:
        return "debootstrap is not installed and MAPREDUCE_BASE_IMAGE names no base image"
    if os.geteuid() != 0:
        return "not root: debootstrap and podman's networks here need root"
    probe = subprocess.run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
                           capture_output=True, text=True,
                           env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)})
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines()
        return f"podman cannot run here: {lines[-1] if lines else probe.returncode}"
    return None


def sequential_word_count(directory: Path) -> dict[str, int]:
    """The word count of every file under `directory`, in plain Python, as the original
    project's compare script counted: the oracle shares no code with the framework, only
    the pipeline's definition of a word."""
    counts: Counter[str] = Counter()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            counts.update(TOKEN.findall(path.read_text()))
    return dict(counts)


@dataclass
class ComposeProject:
    name: str
    data_dir: Path
    replicated: bool = False

    def env(self) -> dict[str, str]:
        return {**os.environ, "COMPOSE_PROJECT_NAME": self.name,
                "MAPREDUCE_DATA_DIR": str(self.data_dir),
                "CONTAINERS_CONF": str(CONTAINERS_CONF)}

    def argv(self, *args: str) -> list[str]:
        return [str(WRAPPER), *(["--replicated"] if self.replicated else []), *args]

    def compose(self, *args: str, timeout: float = 600,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.argv(*args), capture_output=True, text=True, env=self.env(),
                                timeout=timeout, cwd=REPO)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def podman(self, *args: str, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["podman", *args], capture_output=True, text=True,
                                env=self.env(), timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}: "
                                 f"{result.stderr[-2000:]}")
        return result

    def container(self, service: str, index: int = 1) -> str:
        return f"{self.name}_{service}_{index}"

    def containers(self) -> list[str]:
        listed = self.podman("ps", "-a", "--filter", f"label=io.podman.compose.project={self.name}",
                             "--format", "{{.Names}}")
        return sorted(listed.stdout.split())

    def mapreduce(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The CLI inside the running dispatcher's container."""
        return self.podman("exec", self.container("dispatcher"), "mapreduce", *args,
                           check=False, timeout=timeout)

    def status(self, pipeline_id: str | None = None) -> dict[str, Any] | None:
        result = self.mapreduce("status", *([pipeline_id] if pipeline_id else []), "--json")
        return json.loads(result.stdout) if result.returncode == 0 else None

    def wait_ready(self, counts: dict[str, int], brokers: int, timeout: float = 300) -> None:
        """Until `brokers` brokers are up and the live workers number `counts` by role
        (each has reached Kafka and Redis)."""
        def ready() -> bool:
            snapshot = self.status()
            if snapshot is None:
                return False
            live = Counter(row["role"] for row in snapshot["workers"] if not row.get("silent"))
            up = [b for b in snapshot["cluster"]["kafka"]["brokers"] if b["state"] == "up"]
            return len(up) == brokers and all(live[role] >= n for role, n in counts.items())
        try:
            wait_for(ready, timeout, f"{brokers} brokers and workers {counts} in {self.name}",
                     interval=2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    def live_workers(self, role: str) -> list[dict[str, Any]]:
        snapshot = self.status()
        assert snapshot is not None, "status failed"
        return [row for row in snapshot["workers"]
                if row["role"] == role and not row.get("silent")]

    def run_job(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """`mapreduce run ...` in a fresh `source` container, as a user submits a job."""
        return self.compose("run", "--rm", "source", "run", *args, timeout=timeout)

    def start_job(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv("run", "--rm", "source", "run", *args),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=self.env(), cwd=REPO)

    def wait_mapping(self, pipeline_id: str, timeout: float = 120) -> dict[str, Any]:
        """Until the job has mapped part of its input, and not all of it."""
        def mapping() -> dict[str, Any] | None:
            snapshot = self.status(pipeline_id)
            info = snapshot["pipeline"] if snapshot else {}
            mapped, frames = int(info.get("mapped") or 0), int(info.get("frames") or 0)
            return info if info.get("state") == "running" and 0 < mapped < frames else None
        info: dict[str, Any] = wait_for(mapping, timeout, f"{pipeline_id} mapping",
                                        interval=0.5)
        return info

    def stage(self, *paths: Path) -> None:
        """Copy files or directories into the data volume, where containers see /data."""
        for path in paths:
            if path.is_dir():
                shutil.copytree(path, self.data_dir / path.name, dirs_exist_ok=True)
            else:
                shutil.copy(path, self.data_dir / path.name)

    def killed_mid_map(self, pipeline_id: str, megabytes: float,
                       kill: Callable[[], None]) -> None:
        """A slow word count of `megabytes` of text, `kill` called while it maps: the job
        must end done, its output equal to the plain count of its input."""
        make_corpus(self.data_dir / pipeline_id, megabytes)
        self.stage(SLOW_WORDCOUNT)
        job = self.start_job(f"/data/{SLOW_WORDCOUNT.name}", "--input", f"/data/{pipeline_id}",
                             "--output", f"/data/out/{pipeline_id}", "--id", pipeline_id)
        try:
            self.wait_mapping(pipeline_id)
            kill()
            report, _ = job.communicate(timeout=600)
        finally:
            if job.poll() is None:
                job.kill()
        assert job.returncode == 0, f"{report[-3000:]}\n{self.logs()}"
        assert self.output_counts(f"out/{pipeline_id}") == \
            sequential_word_count(self.data_dir / pipeline_id)

    def output_counts(self, relative: str) -> dict[str, int]:
        directory = self.data_dir / relative
        assert output.is_complete(directory), f"no _SUCCESS in {directory}"
        items = output.read_output(directory)
        assert len(items) == len({key for key, _ in items}), "a key written twice"
        return dict(items)

    def logs(self, tail: int = 40) -> str:
        parts = []
        for name in self.containers():
            result = self.podman("logs", "--tail", str(tail), name, check=False)
            parts.append(f"--- {name}\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
        return "\n".join(parts)

    def volumes(self) -> list[str]:
        listed = self.podman("volume", "ls", "--format", "{{.Name}}")
        return sorted(v for v in listed.stdout.split() if v.startswith(f"{self.name}_"))

    def down(self, check: bool = False) -> None:
        """Containers, network and volumes removed (with `check`: and proven gone)."""
        result = self.compose("down", "-v", "-t", "10", check=check, timeout=300)
        if check:
            left = self.containers() + self.volumes()
            assert not left, f"down left {left}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
