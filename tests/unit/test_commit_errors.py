"""Which commit and consumer errors only mean "replay from the last commit" (swallowed,
logged) and which must surface."""

import pytest
import structlog
from confluent_kafka import KafkaError

from mapreduce_kafka.services.runtime.commit_policy import commit_refused
from mapreduce_kafka.services.runtime.consuming import check_consumer_error
from mapreduce_kafka.shared.errors import ConsumerFailed


@pytest.mark.parametrize("code", [
    KafkaError.REBALANCE_IN_PROGRESS, KafkaError._ASSIGNMENT_LOST,
    KafkaError.STALE_MEMBER_EPOCH,  # KIP-848: the member's epoch moved on
    KafkaError._WAIT_COORD, KafkaError.NOT_COORDINATOR,  # coordinator moving or cut off
    KafkaError.UNKNOWN_TOPIC_OR_PART,  # a finished pipeline's topic, deleted
])
def test_replay_only_errors_are_swallowed(code):
    assert commit_refused(KafkaError(code))


@pytest.mark.parametrize("code", [
    KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.OFFSET_METADATA_TOO_LARGE, KafkaError.INVALID_COMMIT_OFFSET_SIZE,
])
def test_other_errors_surface(code):
    assert not commit_refused(KafkaError(code))


@pytest.mark.parametrize("error", [
    KafkaError(KafkaError.INVALID_REQUEST, "Invalid request", fatal=True),
    # how librdkafka reports it to a consumer: the event's code is _FATAL
    KafkaError(KafkaError._FATAL, "Fatal error: Broker: The group id does not exist"),
])
def test_a_fatal_consumer_error_stops_the_consumer_for_good(error):
    """A fatal error (seen: KIP-848 heartbeats answered INVALID_REQUEST and
    GROUP_ID_NOT_FOUND) must restart the worker, not be logged and ignored while the dead
    consumer fetches nothing."""
    with pytest.raises(ConsumerFailed, match="fatal consumer error"):
        check_consumer_error(structlog.get_logger("test"), error)


@pytest.mark.parametrize("code", [KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART,
                                  KafkaError._TRANSPORT])
def test_other_consumer_errors_are_logged_and_skipped(code):
    check_consumer_error(structlog.get_logger("test"), KafkaError(code))
