"""The dashboard's server for tests: `services.ui.server.app` on uvicorn, in a thread of the
test process, on a free port."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from mapreduce_kafka.services.client import api
from mapreduce_kafka.services.testing.ports import free_port
from mapreduce_kafka.services.ui.server import app


@contextmanager
def serving(settings) -> Iterator[str]:
    """The dashboard's base URL while the block runs."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app(api.Cluster(settings)), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard's server did not start")
        time.sleep(0.05)  # uvicorn has no "started" event to wait on
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.headers.get("Content-Type", ""), response.read()
