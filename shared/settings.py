"""The settings: one typed object every process runs with, and the table that names each
setting in the environment, on the command line and in the README.

A setting's type is its Settings field's annotation, stated once: the sources that read
text (shared/setting_sources.py) parse by it. Where values come from is
shared/setting_sources.py; how they become librdkafka dicts is shared/kafka_config.py.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapreduce_kafka.shared import kafka_config, signing
from mapreduce_kafka.shared.auth import MessageAuth
from mapreduce_kafka.shared.resubscribe_strategies import DEFAULT_STRATEGY

ENV_BOOTSTRAP = "MAPREDUCE_BOOTSTRAP_SERVERS"
ENV_REDIS = "MAPREDUCE_REDIS_URL"
ENV_HOME = "MAPREDUCE_HOME"
ENV_KAFKA_PREFIX = "MAPREDUCE_KAFKA_"  # MAPREDUCE_KAFKA_SECURITY_PROTOCOL: security.protocol
ENV_RESUBSCRIBE = "MAPREDUCE_RESUBSCRIBE"
ENV_SHUFFLE_MEMORY = "MAPREDUCE_SHUFFLE_MEMORY_MB"
ENV_SINK_MEMORY = "MAPREDUCE_SINK_MEMORY_MB"
ENV_SESSION_TIMEOUT = "MAPREDUCE_SESSION_TIMEOUT_MS"
ENV_PIPELINE_CONSUMERS = "MAPREDUCE_PIPELINE_CONSUMERS"
ENV_REPLICATION_FACTOR = "MAPREDUCE_REPLICATION_FACTOR"
ENV_SPEC_MAX_AGE = "MAPREDUCE_SPEC_MAX_AGE_S"
ENV_INPUT_ROOTS = "MAPREDUCE_INPUT_ROOTS"
ENV_SPLIT_BYTES = "MAPREDUCE_SPLIT_BYTES"
ENV_STALL_LIMIT = "MAPREDUCE_STALL_LIMIT_S"
ENV_TASK_TIMEOUT = "MAPREDUCE_TASK_TIMEOUT_S"
ENV_MAX_TASK_FAILURES = "MAPREDUCE_MAX_TASK_FAILURES"
ENV_KEY_MEMORY = "MAPREDUCE_KEY_MEMORY_MB"
DEFAULT_SPLIT_BYTES = 1 << 20
# Per shuffler: 2 shufflers on a 24 GiB machine leave plenty for everything else, and a
# job whose groups outgrow it spills to disk instead of failing.
DEFAULT_SHUFFLE_MEMORY_MB = 2048
# Per sink: the results of the parts it is writing; past it they spill to disk in sorted runs.
DEFAULT_SINK_MEMORY_MB = 512


def default_home() -> Path:
    return Path(os.environ.get(ENV_HOME) or Path.home() / ".mapreduce").expanduser()


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str
    redis_url: str
    home: Path = field(default_factory=default_home)
    # Fixed topics are created once with these counts; a partition is the unit of
    # parallelism, so each caps how many workers of that role can be busy at once.
    source_partitions: int = 4
    shuffle_partitions: int = 8
    output_partitions: int = 4
    # Frames trade latency for per-message overhead: 256 KiB holds ~4,000 lines of text and
    # stays well under the broker's default 1 MiB message limit.
    frame_bytes: int = 256 * 1024
    # An input split (a frame that stays in its file) is not bound by the message limit.
    # Bigger splits mean fewer distinct keys per input byte to combine, encode and shuffle
    # (word count: 1.1 million groups for 100 MB in 256 KiB frames, 0.69 million in 1 MiB).
    split_bytes: int = DEFAULT_SPLIT_BYTES
    # A dead worker's partitions move after this long. Lower = faster failover, but a
    # worker stalled in user code longer than this is evicted (6 s is the broker minimum).
    session_timeout_ms: int = 10_000
    kafka_extra: dict[str, str] = field(default_factory=dict)
    local: bool = False  # the addresses belong to a cluster `mapreduce up` started
    resubscribe: str = DEFAULT_STRATEGY  # shared/resubscribe_strategies.py
    # What a shuffler holds in memory before it spills sorted runs to disk (runtime/spill.py).
    shuffle_memory_mb: int = DEFAULT_SHUFFLE_MEMORY_MB
    sink_memory_mb: int = DEFAULT_SINK_MEMORY_MB
    # A spec older than this is refused (a replayed one); 0 turns the check off.
    spec_max_age_s: int = 24 * 3600
    # Directories mappers may read input splits from (symlinks resolved); empty: any file
    # the pipeline's signed spec names.
    input_roots: tuple[Path, ...] = ()
    # group-per-pipeline: the consumers (pipelines served at once) a mapper or reducer
    # holds; past it, newer pipelines wait for a slot (shared/pipeline_groups.py).
    pipeline_consumers: int = 16
    # Replicas of every topic the framework creates; 0: min(3, the brokers that are up).
    # Above 1, min.insync.replicas is one less (shared/kafka.py).
    replication_factor: int = 0
    # The trust boundary (shared/signing.py): the key that signs and verifies pipeline specs
    # (None: $MAPREDUCE_SIGNING_KEY, or home/signing.key), and whether unsigned specs run.
    signing_key_file: Path | None = None
    insecure_specs: bool = False
    # A running pipeline whose inputs are complete and that shows no progress this long is
    # failed with what it waits on (shared/liveness.py); 0: never.
    stall_limit_s: int = 600
    # The failure budget (services/runtime/tasks.py): a task (one message of a pipeline)
    # may run this long before the watchdog charges it to its pipeline and restarts the
    # worker (a job's --task-timeout overrides it), and a pipeline charged this many times
    # fails, as Spark's spark.task.maxFailures.
    task_timeout_s: int = 600
    max_task_failures: int = 3
    # One key's values, as sent, that a shuffler or reducer will hold; past it the
    # pipeline fails naming the key, instead of the worker running out of memory.
    key_memory_mb: int = 256

    def with_(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def env(self) -> dict[str, str]:
        """Environment that makes a child process (a worker) use these settings."""
        env = {ENV_BOOTSTRAP: self.bootstrap_servers, ENV_REDIS: self.redis_url,
               ENV_HOME: str(self.home), ENV_RESUBSCRIBE: self.resubscribe,
               ENV_SHUFFLE_MEMORY: str(self.shuffle_memory_mb),
               ENV_SINK_MEMORY: str(self.sink_memory_mb),
               ENV_SESSION_TIMEOUT: str(self.session_timeout_ms),
               ENV_PIPELINE_CONSUMERS: str(self.pipeline_consumers),
               ENV_REPLICATION_FACTOR: str(self.replication_factor),
               ENV_SPEC_MAX_AGE: str(self.spec_max_age_s),
               ENV_INPUT_ROOTS: os.pathsep.join(map(str, self.input_roots)),
               ENV_SPLIT_BYTES: str(self.split_bytes),
               ENV_STALL_LIMIT: str(self.stall_limit_s),
               ENV_TASK_TIMEOUT: str(self.task_timeout_s),
               ENV_MAX_TASK_FAILURES: str(self.max_task_failures),
               ENV_KEY_MEMORY: str(self.key_memory_mb),
               signing.ENV_INSECURE: "1" if self.insecure_specs else "0"}
        if self.signing_key_file is not None:
            env[signing.ENV_KEY_FILE] = str(self.signing_key_file)
        env.update({ENV_KAFKA_PREFIX + k.upper().replace(".", "_"): v
                    for k, v in self.kafka_extra.items()})
        return env

    def spec_policy(self) -> signing.SpecPolicy:
        """How this process signs specs and which it accepts (ConfigError without a key)."""
        return signing.policy(self.home, self.signing_key_file, self.insecure_specs)

    def message_auth(self) -> MessageAuth:
        """How this process tags and checks messages (shared/auth.py)."""
        return MessageAuth(signing.message_key(self.spec_policy()))

    # librdkafka dicts: made in shared/kafka_config.py, which documents the merge order

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        return kafka_config.producer_config(self, **overrides)

    def consumer_config(self, group: str, *, protocol: str = "classic",
                        assignor: str = "roundrobin", **overrides: Any) -> dict[str, Any]:
        return kafka_config.consumer_config(self, group, protocol=protocol,
                                            assignor=assignor, **overrides)

    def admin_config(self) -> dict[str, Any]:
        return kafka_config.admin_config(self)


@dataclass(frozen=True)
class Setting:
    """A setting a user can give: in the environment, the config file and perhaps a flag."""

    field: str  # the Settings field (its type), and the key in the config file
    env: str
    flag: str  # the command-line flag ("" when there is none)
    help: str
    least: int = 1  # a whole number's smallest accepted value


# The README's settings table is this list.
SETTINGS: tuple[Setting, ...] = (
    Setting("bootstrap_servers", ENV_BOOTSTRAP, "--bootstrap-servers",
            "Kafka bootstrap servers of an existing cluster; default: the local cluster"),
    Setting("redis_url", ENV_REDIS, "--redis-url",
            "Redis URL of an existing server (password and TLS in the URL); default: the "
            "local cluster"),
    Setting("home", ENV_HOME, "--home",
            "state directory: local cluster data, logs, pids; default ~/.mapreduce"),
    Setting("signing_key_file", signing.ENV_KEY_FILE, "--signing-key-file",
            "the key that signs and verifies pipeline specs; default $MAPREDUCE_SIGNING_KEY "
            "or HOME/signing.key"),
    Setting("insecure_specs", signing.ENV_INSECURE, "--insecure-specs",
            "development only: accept and send unsigned specs; default off"),
    Setting("resubscribe", ENV_RESUBSCRIBE, "up --resubscribe",
            f"how mappers and reducers follow pipelines; default {DEFAULT_STRATEGY}"),
    Setting("shuffle_memory_mb", ENV_SHUFFLE_MEMORY, "up --shuffle-memory",
            f"a shuffler's memory before it spills; default {DEFAULT_SHUFFLE_MEMORY_MB}"),
    Setting("sink_memory_mb", ENV_SINK_MEMORY, "",
            f"a sink's memory before it spills; default {DEFAULT_SINK_MEMORY_MB}"),
    Setting("split_bytes", ENV_SPLIT_BYTES, "",
            f"the size of an input split (the submitter's, carried by the job's spec); "
            f"default {DEFAULT_SPLIT_BYTES}"),
    Setting("session_timeout_ms", ENV_SESSION_TIMEOUT, "",
            "how long a dead worker's partitions wait before they move (classic groups); "
            "default 10000, at least 6000"),
    Setting("pipeline_consumers", ENV_PIPELINE_CONSUMERS, "",
            "group-per-pipeline: pipelines a mapper or reducer serves at once; default 16"),
    Setting("replication_factor", ENV_REPLICATION_FACTOR, "",
            "replicas of each topic the framework creates; default 0: min(3, brokers up)",
            least=0),
    Setting("spec_max_age_s", ENV_SPEC_MAX_AGE, "",
            "workers refuse a spec older than this (a replay); default 86400, 0: no limit",
            least=0),
    Setting("task_timeout_s", ENV_TASK_TIMEOUT, "",
            "seconds a task may run before it is charged to its job; default 600"),
    Setting("max_task_failures", ENV_MAX_TASK_FAILURES, "",
            "charges (a worker failed or timed out in a job's task) that fail a job; "
            "default 3"),
    Setting("key_memory_mb", ENV_KEY_MEMORY, "",
            "one key's values a worker will hold; past it the job fails naming the key; "
            "default 256"),
    Setting("stall_limit_s", ENV_STALL_LIMIT, "",
            "dispatchers fail a running job whose inputs are complete and that makes no "
            "progress this long; default 600, 0: never", least=0),
    Setting("input_roots", ENV_INPUT_ROOTS, "",
            "directories (separated by ':') mappers may read input from; default: any "
            "file the signed spec names"),
)
