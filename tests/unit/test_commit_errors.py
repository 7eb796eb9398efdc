"""Which commit errors only mean "replay from the last commit" (swallowed, logged) and which
must surface."""

import pytest
from confluent_kafka import KafkaError

from services.runtime import commit_refused


@pytest.mark.parametrize("code", [
    KafkaError.REBALANCE_IN_PROGRESS, KafkaError._ASSIGNMENT_LOST,
    KafkaError.STALE_MEMBER_EPOCH,  # KIP-848: the member's epoch moved on
    KafkaError._WAIT_COORD, KafkaError.NOT_COORDINATOR,  # coordinator moving or cut off
])
def test_replay_only_errors_are_swallowed(code):
    assert commit_refused(KafkaError(code))


@pytest.mark.parametrize("code", [
    KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.OFFSET_METADATA_TOO_LARGE, KafkaError.INVALID_COMMIT_OFFSET_SIZE,
])
def test_other_errors_surface(code):
    assert not commit_refused(KafkaError(code))
