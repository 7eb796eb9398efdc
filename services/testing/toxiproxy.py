"""Shopify's toxiproxy, the fault proxy: its server built once from its Go module (the
kernel here has no netem), run on a lab host, driven through its HTTP API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from mapreduce_kafka.services.localcluster.kafka_jars import cache_dir
from mapreduce_kafka.services.localcluster.processes import terminate

VERSION = "v2.5.0"
MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"


def binary_path() -> Path:
    return cache_dir() / f"toxiproxy-{VERSION}" / "server"


def ensure_binary() -> Path:
    """Build toxiproxy's server with `go install` (about a minute, once per cache)."""
    path = binary_path()
    if path.exists():
        return path
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists()
                                else None)
    if go is None:
        raise FileNotFoundError("Go is not installed: toxiproxy is built from its Go module")
    path.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([go, "install", f"{MODULE}@{VERSION}"], capture_output=True,
                            text=True, env={**os.environ, "GOBIN": str(path.parent)})
    if result.returncode != 0:
        raise RuntimeError(f"building toxiproxy failed: {result.stderr[-2000:]}")
    return path


class Toxiproxy:
    def __init__(self, launcher: list[str], host: str, port: int, log: Path) -> None:
        self.api = f"http://{host}:{port}"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([*launcher, str(ensure_binary()), "-host", host,
                                          "-port", str(port)], stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                self._call("GET", "/proxies")
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"toxiproxy did not start; see {log}") from None
                time.sleep(0.1)  # waiting for a server to listen: no event to wait on

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            text = response.read()
        return json.loads(text) if text else None

    def proxy(self, name: str, listen: str, upstream: str) -> None:
        self._call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream,
                                        "enabled": True})

    def add_toxic(self, proxy: str, name: str, kind: str, stream: str = "downstream",
                  **attributes: int) -> None:
        self._call("POST", f"/proxies/{proxy}/toxics",
                   {"name": name, "type": kind, "stream": stream, "toxicity": 1.0,
                    "attributes": attributes})

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/proxies/{proxy}/toxics")  # type: ignore[no-any-return]

    def close(self) -> None:
        terminate(self.proc.pid, 5)
        self.proc.wait(timeout=10)

