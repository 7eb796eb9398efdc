"""Which refusals to create a pipeline's topics no retry can change.

A dispatcher that cannot create a pipeline's topics restarts and tries again: right when
brokers are down or slow, and forever when Kafka refuses the topics themselves (a name
that collides with an existing topic's, a policy, missing rights). Those fail the
pipeline at once, with Kafka's reason, and the dispatcher goes on with the others."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

PERMANENT = frozenset({
    KafkaError.TOPIC_EXCEPTION,  # an invalid name, or one that collides (`.` and `_`)
    KafkaError.POLICY_VIOLATION,  # a create-topic policy, partition limits of some services
    KafkaError.INVALID_PARTITIONS,
    KafkaError.INVALID_REPLICATION_FACTOR,
    KafkaError.INVALID_REPLICA_ASSIGNMENT,
    KafkaError.INVALID_CONFIG,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
})

# A replication factor over the brokers that are up: brokers down, not a bad request.
_BROKERS_DOWN = "available brokers"


def permanent_refusal(exc: BaseException) -> str | None:
    """A one-line reason when `exc` is Kafka refusing topics for good; None when retrying
    may succeed (brokers down, a timeout, anything that is not such a refusal)."""
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if not isinstance(error, KafkaError) or error.code() not in PERMANENT:
        return None
    message = " ".join(str(error.str()).split())
    if error.code() == KafkaError.INVALID_REPLICATION_FACTOR and _BROKERS_DOWN in message:
        return None
    return f"Kafka refused to create its topics ({error.name()}): {message}"
