"""The package as a user gets it: a wheel built from the checkout, installed into a fresh
virtualenv, used from a directory outside the checkout. Everything it needs at run time (the
examples and their samples, the broker's config and jar list, the dashboard's files) must be
in the wheel, and it must install nothing at the top of site-packages but `mapreduce_kafka`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from mapreduce_kafka.services.testing.ports import free_port
from tests import REPO

pytestmark = pytest.mark.integration


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600,
         ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(the wheel, the virtualenv's bin directory, an environment without the checkout)."""
    base = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV"} and not k.startswith("MAPREDUCE_")}
    # Built from a copy of what git tracks: setuptools builds in the source tree, and the
    # build must neither leave files in the checkout nor pick up untracked ones.
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True).stdout.decode().split("\0")
    tree = base / "source"
    for name in filter(None, tracked):
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_symlink():
            target.symlink_to(os.readlink(REPO / name))
        else:
            shutil.copy2(REPO / name, target)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base / "dist"),
          str(tree)], cwd=base, env=env)
    wheel = next((base / "dist").glob("mapreduce_kafka-*.whl"))
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=base, env=env)
    _run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], cwd=base, env=env)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return wheel, venv / "bin", env


def test_the_wheel_holds_one_top_level_package(installed):
    wheel, _bin, _env = installed
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"mapreduce_kafka"}


def test_the_installed_package_imports_from_outside_the_checkout(installed, tmp_path):
    _wheel, bin_dir, env = installed
    result = _run([str(bin_dir / "python"), "-c",
                   "import mapreduce_kafka as m; from mapreduce_kafka import Pipeline, connect; "
                   "print(m.__version__); print(m.__file__)"], cwd=tmp_path, env=env)
    version, location = result.stdout.split()
    assert version and version != "0+unknown"
    assert Path(location).is_relative_to(bin_dir.parent), location
    refused = subprocess.run([str(bin_dir / "python"), "-c", "import services"], cwd=tmp_path,
                             env=env, capture_output=True, text=True)
    assert refused.returncode != 0


def test_an_installed_example_runs_inline(installed, tmp_path):
    _wheel, bin_dir, env = installed
    examples = Path(_run([str(bin_dir / "python"), "-c",
                          "import mapreduce_kafka.examples as e; print(e.HERE)"],
                         cwd=tmp_path, env=env).stdout.strip())
    _run([str(bin_dir / "mapreduce"), "run", str(examples / "wordcount.py"), "--inline",
          "--input", str(examples / "samples" / "text"), "--output", str(tmp_path / "out")],
         cwd=tmp_path, env=env)
    assert (tmp_path / "out" / "_SUCCESS").exists()
    assert any(p.name.startswith("part-") for p in (tmp_path / "out").iterdir())


def test_up_a_job_the_dashboard_and_down_from_the_installed_wheel(installed, tmp_path):
    """The local cluster from the wheel alone: its broker config, jar list and dashboard
    files come from the package, its state goes to its own home."""
    _wheel, bin_dir, env = installed
    env = {**env, "MAPREDUCE_HOME": str(tmp_path / "home"),
           "MAPREDUCE_KAFKA_PORT": str(free_port()),
           "MAPREDUCE_CONTROLLER_PORT": str(free_port()),
           "MAPREDUCE_REDIS_PORT": str(free_port())}
    mapreduce = str(bin_dir / "mapreduce")
    examples = Path(_run([str(bin_dir / "python"), "-c",
                          "import mapreduce_kafka.examples as e; print(e.HERE)"],
                         cwd=tmp_path, env=env).stdout.strip())
    try:
        _run([mapreduce, "up", "--mappers", "1", "--shufflers", "1", "--reducers", "1"],
             cwd=tmp_path, env=env)
        job = _run([mapreduce, "run", str(examples / "wordcount.py"),
                    "--input", str(examples / "samples" / "text"),
                    "--output", str(tmp_path / "out"), "--verify"], cwd=tmp_path, env=env)
        assert "verify: identical" in job.stdout, job.stdout
        port = free_port()
        ui = subprocess.Popen([mapreduce, "ui", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            page, state = _fetch_when_served(port, ui)
            assert "<html" in page.lower()
            assert any(p["state"] == "done" for p in state["pipelines"]), state["pipelines"]
        finally:
            ui.terminate()
            ui.wait(timeout=30)
    finally:
        down = subprocess.run([mapreduce, "down"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=180)
    assert down.returncode == 0, down.stderr
    assert "stopped 5 workers" in down.stdout + down.stderr


def _fetch_when_served(port: int, ui: subprocess.Popen[str]) -> tuple[str, dict]:
    """The dashboard's page and state once the server answers (it binds within seconds)."""
    deadline = time.monotonic() + 60
    while True:
        assert ui.poll() is None, ui.stderr.read() if ui.stderr else ui.returncode
        try:
            base = f"http://127.0.0.1:{port}"
            with urllib.request.urlopen(base + "/", timeout=5) as response:
                page = response.read().decode()
            with urllib.request.urlopen(base + "/api/state", timeout=10) as response:
                return page, json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
