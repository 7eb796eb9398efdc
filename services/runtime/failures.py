"""Failure classification: whether an exception raised while handling a pipeline's message
is the machinery's (the worker restarts) or the pipeline's (it fails, with a one-line
reason, and the worker goes on)."""

from __future__ import annotations

import redis
from confluent_kafka import KafkaException, Message

from mapreduce_kafka.services.runtime.producer import DeliveryFailed
from mapreduce_kafka.shared.crashpoints import CrashPointError
from mapreduce_kafka.shared.errors import ConnectionFailed, ConsumerFailed
from mapreduce_kafka.shared.user_code import raised_by_user

# Failures of the machinery, not of a pipeline's data: the worker restarts and replays
# from what is committed. Anything else raised while handling a pipeline's message is that
# pipeline's problem (a record, a value or an output it cannot be done with): the pipeline
# fails with the reason, and the worker goes on serving the others. A worker that raised
# instead would replay the same message, raise again, and be lost to every pipeline.
INFRASTRUCTURE_ERRORS = (DeliveryFailed, KafkaException, redis.RedisError, ConsumerFailed,
                         CrashPointError, MemoryError)


def is_infrastructure(exc: BaseException) -> bool:
    return isinstance(exc, INFRASTRUCTURE_ERRORS)


def is_pipelines(exc: BaseException) -> bool:
    """Whether an error raised while handling a pipeline's message fails that pipeline at
    once (and the worker goes on): the pipeline's code or data, not the machinery."""
    return raised_by_user(exc) and not is_infrastructure(exc)


def charged(exc: BaseException) -> bool:
    """Whether an error that took a worker down in a pipeline's task is charged to that
    pipeline (services/runtime/tasks.py): anything but an outage of the machinery. Out of
    memory is charged: one pipeline's data can cause it, and a restart meets it again."""
    outage = isinstance(exc, ConnectionFailed) or (is_infrastructure(exc)
                                                   and not isinstance(exc, MemoryError))
    return not outage


def processing_failure(role: str, exc: BaseException, msg: Message) -> str:
    """A pipeline's failure reason: one line saying what could not be done, where."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return (f"{role} could not process {msg.topic()}[{msg.partition()}]@{msg.offset()}: "
            f"{type(exc).__name__}: {text}")
