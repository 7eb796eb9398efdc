"""Every worker's view of the PIPELINES topic, read whole (assigned, not shared through a
consumer group: every worker needs every spec). Compacted, keyed by pipeline id; the latest
record of an id is its state: ANNOUNCED, READY (topics exist), or a tombstone (finished).

Nothing is taken on trust: a record whose message tag does not verify (shared/auth.py) is
dropped and logged; a spec is loaded only if its signature verifies (shared/signing.py);
an id that has ended (tombstoned here, or done or failed in Redis) is never announced again,
and a spec older than the spec age limit is refused: a signed spec cannot be replayed. The
age is checked at admission only: a READY record (the dispatcher admitted the spec) of a
pipeline Redis says is running loads at any age, so a job may run longer than the limit
and its workers still restart. A record whose key is not UTF-8 is dropped and logged. Once
an id has a verified spec, a different record for it that does not verify is ignored: junk
under a live id cannot replace or fail it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from mapreduce_kafka.shared import kafka, retry, signing, spec_parts, topics
from mapreduce_kafka.shared.codec import CodecError, Envelope, Kind, load_spec
from mapreduce_kafka.shared.errors import ConsumerFailed
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.spec import PipelineSpec
from mapreduce_kafka.shared.store.pipelines import FINALIZING, Pipelines

log = structlog.get_logger("pipeline_view")

AWAIT_ANNOUNCEMENT_S = 0.5
# Finished ids remembered (so that a late record of one costs no read to the end of the
# topic): the newest this many, so that a long-lived worker does not grow with every job.
REMEMBER_FINISHED = 10_000


@dataclass
class Entry:
    raw: bytes  # the announcement's value: the spec, or the manifest of its parts
    ready: bool
    spec: PipelineSpec | None  # None when the spec was refused or could not be unpickled
    error: str = ""
    signature: bytes | None = None  # copied onto the READY record
    payload: bytes = b""  # the spec's bytes, verified (the parts assembled)


class PipelineView:
    def __init__(self, settings: Settings,
                 has_ended: Callable[[str], bool] = lambda pipeline_id: False,
                 is_running: Callable[[str], bool] | None = None) -> None:
        self._policy = settings.spec_policy()
        self._auth = settings.message_auth()
        self._max_age_s = settings.spec_max_age_s
        self._has_ended = has_ended  # Redis's word: the id is done or failed
        # Redis's word: the id was admitted and has not ended (asked only of a READY spec
        # past the age limit, so a view that never meets one never connects)
        self._is_running = is_running or _running_in(settings.redis_url)
        self.refused: dict[str, str] = {}  # ids whose announcement was refused, and why
        no_eof: dict[str, Any] = {"enable.partition.eof": False}
        self._consumer = Consumer(settings.consumer_config(
            f"pipeline-view-{uuid.uuid4().hex}", **no_eof))
        self._tp = TopicPartition(topics.PIPELINES, 0, OFFSET_BEGINNING)
        self._consumer.assign([self._tp])
        self.entries: dict[str, Entry] = {}
        self._finished: dict[str, None] = {}  # tombstoned ids, oldest first
        # ids whose tombstone this view has read: one deemed finished otherwise (a spec
        # lookup that found only a skipped announcement) still reports its tombstone
        self._tombstoned: dict[str, None] = {}
        # parts of large specs whose announcement has not come yet (shared/spec_parts.py)
        self._parts: dict[str, dict[int, bytes]] = {}
        self._changed: set[str] = set()  # applied, not yet returned by poll()
        self._caught_up = False  # past the records that were there when this view started

    def close(self) -> None:
        self._consumer.close()

    @property
    def finished(self) -> set[str]:
        """Ids tombstoned (or never announced) that this view has met, the newest
        REMEMBER_FINISHED of them."""
        return set(self._finished)

    def _finish(self, pipeline_id: str) -> None:
        self._parts.pop(pipeline_id, None)
        _remember(self._finished, pipeline_id)

    def poll(self, timeout: float = 0.0) -> set[str]:
        """Apply what has arrived; return the ids whose state changed since the last poll,
        including changes applied meanwhile by `spec()` (a worker's loop must see them all:
        a tombstone or a refused spec it never hears of is never acted on)."""
        self._read(timeout)
        return self._take_changed()

    def catch_up(self, timeout: float = 10.0) -> set[str]:
        """Read to the end of the topic as it is now: afterwards every spec announced before
        this call is known. Returns (and reports no more) what changed."""
        self._read_to_end(timeout)
        self._caught_up = True
        return self._take_changed()

    def _take_changed(self) -> set[str]:
        changed, self._changed = self._changed, set()
        return changed

    def _read(self, timeout: float) -> None:
        while True:
            messages = kafka.consume_ready(self._consumer, 200, timeout)
            if not messages:
                return
            for msg in messages:
                error = msg.error()  # each record is authenticated in _apply
                if error is not None:
                    if error.fatal() or error.code() == KafkaError._FATAL:
                        raise ConsumerFailed(f"fatal pipelines consumer error: {error.str()}")
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("pipelines topic error", error=error.str())
                    continue
                key = msg.key()
                if key is None:
                    log.error("pipelines record without a key skipped", offset=msg.offset())
                    continue
                try:
                    pipeline_id = key.decode()
                except UnicodeDecodeError:
                    # PIPELINES is compacted: such a record stays, and every worker meets it
                    log.error("pipelines record whose key is not UTF-8 dropped",
                              offset=msg.offset(), key=key[:64].hex())
                    continue
                part = self._part_of(pipeline_id, msg)
                if part is not None:
                    self._add_part(*part, msg)
                elif self._apply(pipeline_id, msg):
                    self._changed.add(pipeline_id)
            timeout = 0.0

    def _read_to_end(self, timeout: float = 10.0) -> None:
        _, high = retry.until_deadline(  # a new topic's leader may not be known yet
            "pipelines watermarks",
            lambda: self._consumer.get_watermark_offsets(self._tp, timeout=timeout, cached=False),
            seconds=30, on=(KafkaException,))
        while True:
            position = self._consumer.position([self._tp])[0].offset
            if position >= high or (position < 0 and high == 0):
                return
            self._read(timeout=0.5)

    def _part_of(self, key: str, msg: Message) -> tuple[str, int] | None:
        try:
            return spec_parts.parse_part_key(key)
        except CodecError as exc:
            log.error("pipelines record with a malformed key skipped", offset=msg.offset(),
                      error=str(exc))
            return ("", -1)

    def _add_part(self, pipeline_id: str, index: int, msg: Message) -> None:
        """A part of a large spec, kept until its announcement assembles it (a tombstone,
        or one that fails its tag, is dropped)."""
        value = msg.value()
        if index < 0 or value is None or pipeline_id in self._finished:
            return
        headers = cast(list[tuple[str, bytes | None]], msg.headers() or [])
        try:
            envelope = Envelope.from_headers(headers)
        except CodecError as exc:
            log.error("undecodable spec part skipped", pipeline=pipeline_id, error=str(exc))
            return
        if not self._auth.check(pipeline_id, topics.PIPELINES, -1, envelope, msg.key(), value,
                                headers):
            log.error("spec part whose tag does not verify skipped", pipeline=pipeline_id,
                      offset=msg.offset())
            return
        self._parts.setdefault(pipeline_id, {})[index] = value

    def _payload(self, pipeline_id: str, value: bytes) -> bytes:
        """The spec an announcement stands for: itself, or its parts assembled (CodecError
        when they are missing or not the announced bytes)."""
        manifest = spec_parts.Manifest.parse(value)
        if manifest is None:
            return value
        payload = spec_parts.assemble(manifest, self._parts.get(pipeline_id, {}))
        self._parts.pop(pipeline_id, None)
        return payload

    def _apply(self, pipeline_id: str, msg: Message) -> bool:
        # a consumer's headers are (str, bytes) pairs; the client's type also covers a producer's
        value = msg.value()
        headers = cast(list[tuple[str, bytes | None]], msg.headers() or [])
        envelope = None
        if value is not None:
            try:
                envelope = Envelope.from_headers(headers)
            except CodecError as exc:
                log.error("undecodable pipelines record", pipeline=pipeline_id, error=str(exc))
                return False
        if not self._auth.check(pipeline_id, topics.PIPELINES, -1, envelope, msg.key(), value,
                                headers):
            self._refuse(pipeline_id, msg, "its message tag does not verify (forged, or "
                                           "written with another cluster's key)")
            return False
        if value is None:
            # A change also for an id whose announcement this view refused or skipped (it
            # had ended before a restart), even once a spec lookup deemed it finished:
            # whoever cleans up must still hear of its tombstone, the first time.
            changed = (self.entries.pop(pipeline_id, None) is not None
                       or pipeline_id not in self._tombstoned)
            self._finish(pipeline_id)
            _remember(self._tombstoned, pipeline_id)
            return changed
        assert envelope is not None
        ready = envelope.kind is Kind.READY
        old = self.entries.get(pipeline_id)
        if old is not None and old.raw == value and old.spec is not None:
            if old.ready == ready or old.ready:
                return False
            old.ready = True
            return True
        if pipeline_id in self._finished or self._has_ended(pipeline_id):
            if self._caught_up or pipeline_id in self._finished:
                self._refuse(pipeline_id, msg,
                             "its id has ended: a spec is never announced twice")
            else:  # history read at start: its tombstone follows (every restart meets it)
                log.debug("announcement of an ended pipeline skipped", pipeline=pipeline_id)
            return False
        signature = dict(headers).get(signing.HEADER)
        spec: PipelineSpec | None = None
        error = ""
        refusal: str | None
        try:
            payload = self._payload(pipeline_id, value)
        except CodecError as exc:
            payload, refusal = b"", f"pipeline spec refused: {exc}"
        else:  # checked before unpickling: unpickling a spec runs code
            refusal = self._policy.refusal(pipeline_id, payload, signature)
        if refusal is None:
            try:
                spec = _as_spec(load_spec(payload))
            except CodecError as exc:
                error = str(exc)
                log.error("pipeline spec cannot be loaded", pipeline=pipeline_id, error=error)
            else:
                refusal = self._too_old(spec, pipeline_id, ready)
        if refusal is not None:
            if old is not None and old.spec is not None:
                self._refuse(pipeline_id, msg, f"{refusal}; the verified spec stays")
                return False
            spec, error = None, refusal
            self._refuse(pipeline_id, msg, refusal)
        if spec is not None:
            self.refused.pop(pipeline_id, None)  # its history held an older refusal
        self.entries[pipeline_id] = Entry(value, ready, spec, error, signature, payload)
        return True

    def _too_old(self, spec: PipelineSpec, pipeline_id: str, ready: bool) -> str | None:
        """The age limit guards admission: a READY record of a pipeline that Redis says is
        running was admitted when it was young (a replayed one of an id that never ran, or
        ended, is still refused)."""
        age = time.time() - spec.created
        if not self._max_age_s or age <= self._max_age_s:
            return None
        if ready and self._is_running(pipeline_id):
            return None
        return (f"pipeline spec refused: created {age:.0f} s ago, older than the spec age "
                f"limit ({self._max_age_s} s): a replayed spec, or a clock far off")

    def _refuse(self, pipeline_id: str, msg: Message, reason: str) -> None:
        self.refused[pipeline_id] = reason
        log.error("pipeline spec refused", pipeline=pipeline_id, reason=reason,
                  topic=topics.PIPELINES, offset=msg.offset())

    def spec(self, pipeline_id: str) -> PipelineSpec | None:
        """The spec of a live pipeline. One new to us was announced (flushed) before any of
        its data was sent, so its announcement is usually a few milliseconds away: wait for
        it first. Only if it does not come, read to the end of the topic to be sure (a
        watermark query can queue behind this consumer's long-poll fetch on the broker
        connection: measured 0.3-0.5 s, paid by every new pipeline when it came first)."""
        entry = self.entries.get(pipeline_id)
        if entry is None and pipeline_id not in self._finished:
            deadline = time.monotonic() + AWAIT_ANNOUNCEMENT_S
            while entry is None and time.monotonic() < deadline:
                self._read(timeout=0.01)
                entry = self.entries.get(pipeline_id)
            if entry is None:
                self._read_to_end()
                entry = self.entries.get(pipeline_id)
            if entry is None:
                self._finish(pipeline_id)  # never coming back: ids are not reused
        return entry.spec if entry is not None else None

    def private_copy(self, pipeline_id: str) -> PipelineSpec | None:
        """A copy of a held spec of its own, unpickled again from its verified record:
        its functions' module state is shared with no other copy (a reduce task's hooks,
        services/runtime/reduce_tasks.py)."""
        entry = self.entries.get(pipeline_id)
        if entry is None or entry.spec is None:
            return None
        return _as_spec(load_spec(entry.payload))

    def known_spec(self, pipeline_id: str) -> PipelineSpec | None:
        """The spec of a pipeline this view already holds, without reading or waiting
        (for a rebalance callback: a pipeline none of whose records were processed here
        has nothing to replay)."""
        entry = self.entries.get(pipeline_id)
        return entry.spec if entry is not None else None

    def ready_ids(self) -> set[str]:
        return {pid for pid, e in self.entries.items() if e.ready and e.spec is not None}


def _running_in(redis_url: str) -> Callable[[str], bool]:
    """Whether Redis says a pipeline is running (or finalizing its output)."""
    store: Pipelines | None = None

    def is_running(pipeline_id: str) -> bool:
        nonlocal store
        store = store or Pipelines(redis_url)
        return store.pipeline(pipeline_id).get("state") in ("running", FINALIZING)
    return is_running


def _as_spec(loaded: object) -> PipelineSpec:
    """A signed record that is not a pipeline spec fails its pipeline, not the worker."""
    if not isinstance(loaded, PipelineSpec):
        raise CodecError(f"not a pipeline spec: a {type(loaded).__name__}")
    return loaded


def _remember(ids: dict[str, None], pipeline_id: str) -> None:
    """Add an id as the newest, keeping the newest REMEMBER_FINISHED."""
    ids.pop(pipeline_id, None)
    ids[pipeline_id] = None
    while len(ids) > REMEMBER_FINISHED:
        del ids[next(iter(ids))]
