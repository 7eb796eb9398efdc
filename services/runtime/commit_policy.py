"""The commit policy: which refused commits only mean "replay from the last commit" (logged
and swallowed), and which must surface. Every role commits through `commit`."""

from __future__ import annotations

from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException

# A commit refused because the group is rebalancing loses nothing: outputs are already
# durable, and the partition's next owner replays from the last commit (replays are
# de-duplicated downstream). Failing the worker instead would leave its member id in the
# group until the session times out, stalling everyone.
REBALANCE_COMMIT_ERRORS = {
    KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.UNKNOWN_MEMBER_ID, KafkaError._ASSIGNMENT_LOST, KafkaError._STATE,
    KafkaError.STALE_MEMBER_EPOCH, KafkaError.FENCED_MEMBER_EPOCH,
}


# The group coordinator is moving or unreachable (a broker restart, a network cut). Offsets
# are cumulative, so the next commit covers this one, and a crash before it only replays.
TRANSIENT_COMMIT_ERRORS = {
    KafkaError._WAIT_COORD, KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._TRANSPORT,
}


# The topic is gone: its pipeline finished and the dispatcher deleted it while a batch of
# its last records was still to be committed (seen in benchmarks/rebalance.py: the worker
# restarted, stalling the other pipelines by seconds). Nothing of it is left to replay.
GONE_TOPIC_COMMIT_ERRORS = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.UNKNOWN_TOPIC_ID}


def commit_refused(error: KafkaError) -> bool:
    """Log and swallow a commit error that only means "replay from the last commit"; False
    for anything else (a bug or a misconfiguration, which must surface)."""
    code = error.code()
    if code in REBALANCE_COMMIT_ERRORS:
        structlog.get_logger("commit").info("commit refused by a rebalance; the next owner "
                                            "replays from the last commit", error=error.str())
        return True
    if code in GONE_TOPIC_COMMIT_ERRORS:
        structlog.get_logger("commit").info("commit refused: the topic is gone with its "
                                            "finished pipeline", error=error.str())
        return True
    if code in TRANSIENT_COMMIT_ERRORS:
        structlog.get_logger("commit").warning("commit deferred: group coordinator "
                                               "unavailable; the next commit covers it",
                                               error=error.str())
        return True
    return False


def commit(consumer: Consumer, offsets: list[Any] | None = None,
           asynchronous: bool = False) -> bool:
    """Synchronous commit by default. Returns False when there was nothing to commit or it
    was refused harmlessly (see above); raises on anything else. An asynchronous commit's
    result goes to the consumer's `on_commit` callback."""
    try:
        if offsets is not None and not offsets:
            return False
        if offsets is None:
            consumer.commit(asynchronous=asynchronous)  # type: ignore[call-overload]
        else:
            consumer.commit(offsets=offsets, asynchronous=asynchronous)  # type: ignore[call-overload]
        return True
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError._NO_OFFSET or commit_refused(exc.args[0]):
            return False
        raise
