"""`mapreduce ui`: the dashboard and /metrics, served by Starlette on uvicorn.

  /            the dashboard: one HTML page whose script polls /api/state every second and
               redraws in place (no reload, nothing fetched from the internet)
  /api/state   the dashboard's data as JSON (services/ui/state.py)
  /metrics     Prometheus's text format (services/ui/metrics.py)
  /healthz     "ok" while the server runs
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mapreduce_kafka.services.client import api
from mapreduce_kafka.services.ui.metrics import registry
from mapreduce_kafka.services.ui.state import DashboardState

STATIC = Path(__file__).parent / "static"
DEFAULT_HOST = "127.0.0.1"  # loopback: the dashboard has no login
DEFAULT_PORT = 8765


def app(cluster: api.Cluster) -> Starlette:
    state = DashboardState(cluster)
    metrics = registry(cluster)

    # Plain functions: Starlette runs them on its thread pool (they block on Redis/Kafka).
    def index(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    def api_state(request: Request) -> Response:
        return JSONResponse(state.snapshot(everything="all" in request.query_params))

    def prometheus(_request: Request) -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        state.close()

    return Starlette(routes=[
        Route("/", index), Route("/api/state", api_state), Route("/metrics", prometheus),
        Route("/healthz", healthz), Mount("/static", StaticFiles(directory=STATIC)),
    ], lifespan=lifespan)


def serve(cluster: api.Cluster, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    # bound here, so that a port in use is an OSError (one line from the CLI); uvicorn
    # would log it and exit 1, the code of a failed job
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot serve the dashboard on {host}:{port}: "
                                 f"{exc.strerror}") from None
    server = uvicorn.Server(uvicorn.Config(app(cluster), access_log=False, log_level="warning"))
    server.run(sockets=[sock])
