"""One typed settings object, and the one place it becomes librdkafka and Redis config.

Where addresses come from, first match wins:
  1. explicit arguments (CLI flags --bootstrap-servers / --redis-url);
  2. environment: MAPREDUCE_BOOTSTRAP_SERVERS, MAPREDUCE_REDIS_URL;
  3. the local cluster started by `mapreduce up`, recorded in $MAPREDUCE_HOME/cluster.json.
If none applies, the CLI starts a local cluster (`up`) or says what is missing.

librdkafka dicts are merged in a fixed order: role defaults < user extras
(MAPREDUCE_KAFKA_<NAME>=value, e.g. MAPREDUCE_KAFKA_SECURITY_PROTOCOL) < connection
(bootstrap.servers) < forced values the design relies on (manual commits, earliest reset).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import signing
from shared.errors import ConfigError

ENV_BOOTSTRAP = "MAPREDUCE_BOOTSTRAP_SERVERS"
ENV_REDIS = "MAPREDUCE_REDIS_URL"
ENV_HOME = "MAPREDUCE_HOME"
ENV_KAFKA_PREFIX = "MAPREDUCE_KAFKA_"
ENV_RESUBSCRIBE = "MAPREDUCE_RESUBSCRIBE"
ENV_STATIC = "MAPREDUCE_STATIC_MEMBERSHIP"
ENV_SHUFFLE_MEMORY = "MAPREDUCE_SHUFFLE_MEMORY_MB"
ENV_SINK_MEMORY = "MAPREDUCE_SINK_MEMORY_MB"
ENV_SESSION_TIMEOUT = "MAPREDUCE_SESSION_TIMEOUT_MS"
ENV_PIPELINE_CONSUMERS = "MAPREDUCE_PIPELINE_CONSUMERS"
ENV_SPLIT_BYTES = "MAPREDUCE_SPLIT_BYTES"
DEFAULT_SPLIT_BYTES = 1 << 20
# Per shuffler: 2 shufflers on a 24 GiB machine leave plenty for everything else, and a
# job whose groups outgrow it spills to disk instead of failing.
DEFAULT_SHUFFLE_MEMORY_MB = 2048
# Per sink: the results of the parts it is writing; past it they spill to disk in sorted runs.
DEFAULT_SINK_MEMORY_MB = 512
# How mappers and reducers follow the set of live pipelines (services/runtime/resubscriber.py).
STRATEGIES = ("reconnect", "in-place", "consumer-protocol", "regex", "group-per-pipeline")
# KIP-848: the fastest pickup and the shortest pauses measured (README, "Resubscription
# strategies"). It needs a Kafka 4 broker whose group.consumer.session.timeout.ms is short
# (the local broker's is 10 s; Kafka's default, 45 s, makes failover slow).
DEFAULT_STRATEGY = "consumer-protocol"


def redacted(url: str) -> str:
    """A Redis URL fit for logs and messages: its password replaced by ***."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


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
    resubscribe: str = DEFAULT_STRATEGY
    # What a shuffler holds in memory before it spills sorted runs to disk (runtime/spill.py).
    shuffle_memory_mb: int = DEFAULT_SHUFFLE_MEMORY_MB
    sink_memory_mb: int = DEFAULT_SINK_MEMORY_MB
    # group-per-pipeline: the consumers (pipelines served at once) a mapper or reducer
    # holds; past it, newer pipelines wait for a slot (shared/pipeline_groups.py).
    pipeline_consumers: int = 16
    # The trust boundary (shared/signing.py): the key that signs and verifies pipeline specs
    # (None: $MAPREDUCE_SIGNING_KEY, or home/signing.key), and whether unsigned specs run.
    signing_key_file: Path | None = None
    insecure_specs: bool = False

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
               signing.ENV_INSECURE: "1" if self.insecure_specs else "0"}
        if self.signing_key_file is not None:
            env[signing.ENV_KEY_FILE] = str(self.signing_key_file)
        env.update({ENV_KAFKA_PREFIX + k.upper().replace(".", "_"): v
                    for k, v in self.kafka_extra.items()})
        return env

    def spec_policy(self) -> signing.SpecPolicy:
        """How this process signs specs and which it accepts (ConfigError without a key)."""
        return signing.policy(self.home, self.signing_key_file, self.insecure_specs)

    # ---- librdkafka -------------------------------------------------------------------

    def _merge(self, defaults: dict[str, Any], forced: dict[str, Any]) -> dict[str, Any]:
        return {**defaults, **self.kafka_extra, "bootstrap.servers": self.bootstrap_servers,
                **forced}

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        defaults = {
            "linger.ms": 20,  # wait up to 20 ms to fill a batch: throughput over latency
            "compression.type": "lz4",  # cheap CPU, shrinks text frames 2-3x
            "batch.size": 1_000_000,
            "message.max.bytes": 1_000_000,
            "socket.timeout.ms": 10_000,
            # bounds a worker's memory (librdkafka's default is 1 GiB); a full queue only
            # makes send() wait for deliveries
            "queue.buffering.max.kbytes": 65_536,
        }
        forced = {"enable.idempotence": True}  # broker retries must not duplicate or reorder
        return {**self._merge(defaults, forced), **overrides}

    def consumer_config(self, group: str, *, protocol: str = "classic",
                        assignor: str = "roundrobin", **overrides: Any) -> dict[str, Any]:
        """protocol "consumer" is KIP-848: the broker assigns partitions and owns the
        session, so the classic session, heartbeat and assignor settings are config errors
        there and are left out."""
        defaults: dict[str, Any] = {
            "max.poll.interval.ms": 300_000,
            "fetch.max.bytes": 52_428_800,
            # prefetched messages count in a worker's memory (librdkafka's default is 64 MiB)
            "queued.max.messages.kbytes": 16_384,
            "topic.metadata.refresh.interval.ms": 5_000,
        }
        if protocol == "classic":
            defaults.update({
                "session.timeout.ms": self.session_timeout_ms,
                # A member learns that the group is rebalancing (a worker joined or a pipeline
                # came) on its next heartbeat, so this bounds how long a new member waits.
                "heartbeat.interval.ms": min(500, self.session_timeout_ms // 3),
                "partition.assignment.strategy": assignor,
            })
        else:
            defaults["group.protocol"] = protocol
        forced = {
            "group.id": group,
            "enable.auto.commit": False,  # commit only what is durable downstream
            "auto.offset.reset": "earliest",  # a group new to a topic must not skip records
            "isolation.level": "read_committed",
        }
        return {**self._merge(defaults, forced), **overrides}

    def admin_config(self) -> dict[str, Any]:
        return self._merge({"socket.timeout.ms": 10_000}, {})


# Static membership (group.instance.id) was an option until session 5. With the classic
# protocol a static member that rejoins with new topics keeps its old assignment, so new
# pipelines were never picked up (the job hung). With KIP-848 (librdkafka 2.16, Kafka 4.1)
# static members restarted on GROUP_ID_NOT_FOUND for about 8 s when they joined, and in
# one CI run two partitions of a running pipeline stayed unassigned for 3 minutes after a
# rebalance. It bought nothing measurable (benchmarks/rebalance.py), so it is refused.
STATIC_MEMBERSHIP_REFUSED = (
    f"{ENV_STATIC}=1: static membership is not offered: with the classic protocol new "
    "pipelines are never assigned to static members, and with KIP-848 static members were "
    "seen to leave a running pipeline's partitions unassigned for minutes (README, "
    "\"Resubscription strategies, measured\"); unset it")


def _cluster_file(home: Path) -> Path:
    return home / "cluster.json"


def read_local_cluster(home: Path) -> dict[str, str] | None:
    try:
        return json.loads(_cluster_file(home).read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None


def write_local_cluster(home: Path, bootstrap: str, redis_url: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    _cluster_file(home).write_text(json.dumps({"bootstrap_servers": bootstrap,
                                               "redis_url": redis_url}))


def kafka_extra_from_env() -> dict[str, str]:
    return {k[len(ENV_KAFKA_PREFIX):].lower().replace("_", "."): v
            for k, v in os.environ.items() if k.startswith(ENV_KAFKA_PREFIX)}


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name}={raw!r}: must be a positive whole number")
    return int(raw)


def resolve(bootstrap: str | None = None, redis_url: str | None = None,
            home: Path | None = None) -> Settings | None:
    """Settings from flags, environment or the local cluster file; None if none is known."""
    home = home or default_home()
    extra = kafka_extra_from_env()
    bootstrap = bootstrap or os.environ.get(ENV_BOOTSTRAP)
    redis_url = redis_url or os.environ.get(ENV_REDIS)
    resubscribe = os.environ.get(ENV_RESUBSCRIBE) or DEFAULT_STRATEGY
    if resubscribe not in STRATEGIES:
        raise ConfigError(f"{ENV_RESUBSCRIBE}={resubscribe!r}: choose one of "
                         f"{', '.join(STRATEGIES)}")
    strategy: dict[str, Any] = {"resubscribe": resubscribe,
                                "shuffle_memory_mb": _positive_int(ENV_SHUFFLE_MEMORY,
                                                                   DEFAULT_SHUFFLE_MEMORY_MB),
                                "session_timeout_ms": _positive_int(ENV_SESSION_TIMEOUT,
                                                                    10_000),
                                "pipeline_consumers": _positive_int(ENV_PIPELINE_CONSUMERS, 16),
                                "sink_memory_mb": _positive_int(ENV_SINK_MEMORY,
                                                                DEFAULT_SINK_MEMORY_MB),
                                "split_bytes": _positive_int(ENV_SPLIT_BYTES,
                                                             DEFAULT_SPLIT_BYTES),
                                "insecure_specs": os.environ.get(signing.ENV_INSECURE,
                                                                 "0") == "1",
                                "signing_key_file": (Path(os.environ[signing.ENV_KEY_FILE])
                                                     if os.environ.get(signing.ENV_KEY_FILE)
                                                     else None)}
    if os.environ.get(ENV_STATIC, "0") not in ("", "0"):
        raise ConfigError(STATIC_MEMBERSHIP_REFUSED)
    if bootstrap and redis_url:
        return Settings(bootstrap, redis_url, home=home, kafka_extra=extra, **strategy)
    local = read_local_cluster(home)
    if local is None:
        return None
    return Settings(bootstrap or local["bootstrap_servers"], redis_url or local["redis_url"],
                    home=home, kafka_extra=extra, local=not (bootstrap or redis_url),
                    **strategy)
