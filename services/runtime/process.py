"""The Runtime: what every worker process has: settings, Redis store, producer, pipeline
view, logger, a stop flag set by SIGTERM, heartbeats. Built at start-up, never at import."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from confluent_kafka import Message

from mapreduce_kafka.services.runtime import lifecycle
from mapreduce_kafka.services.runtime.pipeline_view import PipelineView
from mapreduce_kafka.services.runtime.producer import OutputProducer
from mapreduce_kafka.services.runtime.tasks import Tasks
from mapreduce_kafka.shared import kafka, side_files, topics
from mapreduce_kafka.shared.codec import Envelope
from mapreduce_kafka.shared.metrics import METRICS
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.spec import PipelineSpec
from mapreduce_kafka.shared.store import Store

# How many times this process restarted in place (services/worker.py re-executes itself
# with it raised by one): the same pid, so its heartbeat and metrics stay one series.
ENV_RESTARTS = "MAPREDUCE_WORKER_RESTARTS"
HEARTBEAT_S = 2.0  # how often a worker tells Redis it is alive (status shows silence)
UNAUTHENTICATED_LOG_INTERVAL_S = 1.0  # per partition: a flood of forgeries logs a line a second


@dataclass
class Runtime:
    role: str
    settings: Settings
    worker_id: str = ""
    store: Store = field(init=False)
    producer: OutputProducer = field(init=False)
    view: PipelineView = field(init=False)
    stopping: bool = False
    assignment: list[str] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)  # pipelines this worker saw fail
    tasks: Tasks = field(init=False)  # the message in hand (services/runtime/tasks.py)
    _last_beat: float = 0.0

    def __post_init__(self) -> None:
        self.worker_id = self.worker_id or f"{self.role}-{socket.gethostname()}-{os.getpid()}"
        structlog.contextvars.bind_contextvars(role=self.role, worker=self.worker_id)
        self.log = structlog.get_logger(self.role)
        self.tasks = Tasks(self.settings.task_timeout_s)
        self.store = Store(self.settings.redis_url)
        self.store.check_reachable()
        kafka.check_reachable(self.settings)
        client = kafka.admin(self.settings)
        # counted from the one answer that showed the topics, never a second request: with
        # several brokers, that may reach one that does not know them yet and count 0
        counts = kafka.fixed_topic_counts(client, self.settings)
        self.shuffle_partitions = counts[topics.SHUFFLE]
        self.output_partitions = counts[topics.OUTPUT]
        self.admin = client
        self.producer = OutputProducer(self.settings)
        self.auth = self.settings.message_auth()
        # unauthenticated messages not logged yet, and when the last was logged, per partition
        self._dropped: dict[tuple[str, int], tuple[int, float]] = {}
        self.view = PipelineView(self.settings, self._has_ended)
        self.view.catch_up()

    def spec_for(self, envelope: Envelope) -> PipelineSpec | None:
        """The spec of the step a message belongs to, or None (as `spec`; a step the
        pipeline does not have fails it)."""
        spec = self.spec(envelope.pipeline)
        if spec is None or envelope.step == 0:
            return spec
        if envelope.step >= spec.step_count:
            self.fail(spec.pipeline_id, f"a message for step {envelope.step + 1} of a "
                                        f"pipeline of {spec.step_count} steps")
            return None
        return spec.at_step(envelope.step)

    def spec(self, pipeline_id: str) -> PipelineSpec | None:
        """The spec of a live pipeline, or None. A spec that cannot be loaded here (say it
        imports a module this worker lacks) fails its pipeline, loudly, once."""
        if pipeline_id in self.failed:
            return None
        spec = self.view.spec(pipeline_id)
        if spec is None:
            entry = self.view.entries.get(pipeline_id)
            if entry is not None and entry.error:
                self.fail(pipeline_id, f"spec cannot be loaded on {self.worker_id}: "
                                       f"{entry.error}")
        return spec

    def _has_ended(self, pipeline_id: str) -> bool:
        return self.store.pipeline(pipeline_id).get("state") in ("done", "failed")

    def unauthenticated(self, msg: Message, envelope: Envelope) -> None:
        """A message whose tag does not verify: dropped and logged, at most once a second
        per partition with the number dropped since (an attacker's flood must not flood
        the logs too)."""
        where = (msg.topic() or "", msg.partition() or 0)
        count, last = self._dropped.get(where, (0, float("-inf")))
        now = time.monotonic()
        if now - last < UNAUTHENTICATED_LOG_INTERVAL_S:
            self._dropped[where] = (count + 1, last)
            return
        self._dropped[where] = (0, now)
        self.log.error("unauthenticated message dropped", topic=where[0],
                       partition=where[1], offset=msg.offset(), kind=envelope.kind.value,
                       pipeline=envelope.pipeline, dropped_since_last_line=count)

    def fail(self, pipeline_id: str, reason: str) -> None:
        if pipeline_id in self.failed:
            return
        self.failed.add(pipeline_id)
        self.log.error("pipeline failed", pipeline=pipeline_id, reason=reason)
        # only dispatchers write PIPELINES: they tombstone it (services/runtime/lifecycle.py)
        lifecycle.finish(self.store, self.producer if self.role == "dispatcher" else None,
                         pipeline_id, "failed", reason)

    def forget_finished(self) -> None:
        """Drop what this process remembers of pipelines that are gone (a long-lived worker
        must not grow with every job it ever saw)."""
        self.failed &= set(self.view.entries)
        side_files.forget(set(self.view.entries))

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            self.log.info("stop requested", signal=signal.Signals(signum).name)
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def heartbeat(self, force: bool = False, **fields: Any) -> None:
        now = time.monotonic()
        if force or now - self._last_beat >= HEARTBEAT_S:
            self._last_beat = now
            self.admin.poll(0)  # serves its log lines (the clients' own polls serve theirs)
            # a callable field (a lag, say) is only computed when a beat is due
            values = {k: v() if callable(v) else v for k, v in fields.items()}
            METRICS.set("consumer_lag", float(values.get("lag") or 0))
            METRICS.set("held_bytes", float(values.get("held_bytes") or 0))
            self.store.heartbeat(self.worker_id, {
                "role": self.role, "host": socket.gethostname(), "pid": os.getpid(),
                "partitions": ",".join(self.assignment),
                "strategy": self.settings.resubscribe,
                # restarts in place (services/worker.py): same pid, so the same series
                "restarts": os.environ.get(ENV_RESTARTS, "0"),
                "metrics": json.dumps(METRICS.snapshot()), **values})

    def close(self) -> None:
        self.producer.flush()
        self.view.close()
        self.store.remove_worker(self.worker_id)
