"""structlog set-up, done once at each entry point: JSON when stderr is not a terminal, or
into a size-bounded rotating file (a worker the supervisor started: MAPREDUCE_LOG_FILE).
librdkafka's own log lines come through here too (`librdkafka_logger`), as JSON events
with their facility and client, instead of raw `%7|...` lines on stderr."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import IO, Any

import structlog

ENV_LOG_FILE = "MAPREDUCE_LOG_FILE"
ENV_LOG_MAX_MB = "MAPREDUCE_LOG_MAX_MB"
ENV_LOG_BACKUPS = "MAPREDUCE_LOG_BACKUPS"
DEFAULT_LOG_MAX_MB = 20
DEFAULT_LOG_BACKUPS = 3


class RotatingFile:
    """A file that, once it holds `max_bytes`, becomes NAME.1 (NAME.1 becomes NAME.2, ...,
    the oldest of `backups` is dropped) and starts again empty: what structlog's
    PrintLogger writes a worker's events to."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, text: str) -> int:
        with self._lock:
            if self._file.tell() + len(text) > self.max_bytes and self._file.tell() > 0:
                self._rotate()
            return self._file.write(text)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def _rotate(self) -> None:
        self._file.close()
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.backups > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115


def _log_file() -> RotatingFile | None:
    path = os.environ.get(ENV_LOG_FILE)
    if not path:
        return None
    max_mb = float(os.environ.get(ENV_LOG_MAX_MB) or DEFAULT_LOG_MAX_MB)
    backups = int(os.environ.get(ENV_LOG_BACKUPS) or DEFAULT_LOG_BACKUPS)
    return RotatingFile(Path(path), int(max_mb * 1024 * 1024), backups)


def configure(level: str | None = None, *, json: bool | None = None, **context: object) -> None:
    level = (level or os.environ.get("MAPREDUCE_LOG_LEVEL") or "INFO").upper()
    target: Any = _log_file()
    if target is not None:
        json = True
    else:
        target = sys.stderr
        if json is None:
            json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=target),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(**context)


class _ToStructlog(logging.Handler):
    """confluent-kafka logs librdkafka's lines as logger.log(level, "%s [%s] %s", facility,
    client name, message): each becomes one structured event."""

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) == 3:
            facility, client, message = (str(a) for a in args)
        else:
            facility, client, message = "", "", record.getMessage()
        structlog.get_logger("librdkafka").log(record.levelno, message, facility=facility,
                                               client=client, source="librdkafka")


def librdkafka_logger() -> logging.Logger:
    """The logger every Kafka client of this process is given (`logger` in its config)."""
    logger = logging.getLogger("mapreduce.librdkafka")
    if not logger.handlers:
        logger.addHandler(_ToStructlog())
        logger.setLevel(logging.DEBUG)  # librdkafka's log_level decides what comes
        logger.propagate = False
    return logger
