"""Errors a user or operator sees: each carries a message that names what was tried."""


class MapReduceError(Exception):
    """Base of every error the CLI turns into a one-line message and a non-zero exit."""

    exit_code = 2


class PipelineDefinitionError(MapReduceError):
    """The pipeline module is missing, does not import, or lacks mapper/reducer."""


class InvalidPipelineId(MapReduceError):
    """A pipeline id that cannot become part of a Kafka topic name."""


class InputError(MapReduceError):
    """Missing input paths, unreadable files, malformed records, existing output."""


class ConnectionFailed(MapReduceError):
    """Kafka or Redis did not answer at the address that was tried."""


class ClusterError(MapReduceError):
    """The local cluster could not be installed, started or stopped."""


class ConfigError(MapReduceError, ValueError):
    """A setting (flag or environment variable) with a value that cannot be used."""


class PipelineFailed(MapReduceError):
    """A submitted pipeline ended in the failed state."""

    exit_code = 1


class JobTimedOut(MapReduceError):
    """A job did not end within the --timeout given (it goes on running)."""

    exit_code = 3


class KeyTooLarge(MapReduceError):
    """One key's values are more than a worker may hold (MAPREDUCE_KEY_MEMORY_MB): the
    pipeline fails, naming the key, rather than the worker running out of memory."""


class InputGone(MapReduceError):
    """An input (a topic the job reads) was deleted or may not be read: permanent, so the
    pipeline fails at once instead of its worker replaying the same range forever."""


class ConsumerFailed(RuntimeError):
    """librdkafka reported a fatal consumer error: that consumer will never fetch again, so
    the worker starts afresh from what is committed."""
