"""One typed settings object, and the one place it becomes librdkafka and Redis config.

Every setting is declared once, in SETTINGS: its field, environment variable, flag and
meaning (the README's settings table is this list). Where a value comes from, first match
wins:
  1. a command-line flag;
  2. the environment (MAPREDUCE_*);
  3. the config file: --config FILE, $MAPREDUCE_CONFIG, or ~/.config/mapreduce/config.toml
     when it exists (TOML; the same names as the fields, librdkafka properties in a
     [kafka] table);
  4. for the Kafka and Redis addresses, the local cluster `mapreduce up` started, recorded
     in $MAPREDUCE_HOME/cluster.json;
  5. the default.
If no cluster is known, the CLI starts a local one (`up`) or says what is missing.

librdkafka dicts are merged in a fixed order: role defaults < user extras (the config
file's [kafka] table < MAPREDUCE_KAFKA_<NAME>=value, e.g. MAPREDUCE_KAFKA_SECURITY_PROTOCOL)
< connection (bootstrap.servers) < forced values the design relies on (manual commits,
earliest reset). MAPREDUCE_KAFKA_PORT and MAPREDUCE_KAFKA_HEAP are the local broker's own
settings, not librdkafka's, and are never passed on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapreduce_kafka.shared import signing
from mapreduce_kafka.shared.auth import MessageAuth
from mapreduce_kafka.shared.errors import ConfigError
from mapreduce_kafka.shared.logging import librdkafka_logger

ENV_BOOTSTRAP = "MAPREDUCE_BOOTSTRAP_SERVERS"
ENV_REDIS = "MAPREDUCE_REDIS_URL"
ENV_HOME = "MAPREDUCE_HOME"
ENV_KAFKA_PREFIX = "MAPREDUCE_KAFKA_"
# The local broker's own settings (services/localcluster): they share the prefix, and
# librdkafka would refuse them as unknown properties.
LOCAL_BROKER_VARIABLES = frozenset({"MAPREDUCE_KAFKA_PORT", "MAPREDUCE_KAFKA_HEAP"})
ENV_CONFIG = "MAPREDUCE_CONFIG"
DEFAULT_CONFIG_FILE = Path("~/.config/mapreduce/config.toml")
ENV_RESUBSCRIBE = "MAPREDUCE_RESUBSCRIBE"
ENV_STATIC = "MAPREDUCE_STATIC_MEMBERSHIP"
ENV_SHUFFLE_MEMORY = "MAPREDUCE_SHUFFLE_MEMORY_MB"
ENV_SINK_MEMORY = "MAPREDUCE_SINK_MEMORY_MB"
ENV_SESSION_TIMEOUT = "MAPREDUCE_SESSION_TIMEOUT_MS"
ENV_PIPELINE_CONSUMERS = "MAPREDUCE_PIPELINE_CONSUMERS"
ENV_REPLICATION_FACTOR = "MAPREDUCE_REPLICATION_FACTOR"
ENV_SPEC_MAX_AGE = "MAPREDUCE_SPEC_MAX_AGE_S"
ENV_INPUT_ROOTS = "MAPREDUCE_INPUT_ROOTS"
ENV_SPLIT_BYTES = "MAPREDUCE_SPLIT_BYTES"
DEFAULT_SPLIT_BYTES = 1 << 20
# Per shuffler: 2 shufflers on a 24 GiB machine leave plenty for everything else, and a
# job whose groups outgrow it spills to disk instead of failing.
DEFAULT_SHUFFLE_MEMORY_MB = 2048
# Per sink: the results of the parts it is writing; past it they spill to disk in sorted runs.
DEFAULT_SINK_MEMORY_MB = 512
# How mappers and reducers follow the set of live pipelines (services/runtime/resubscriber.py).
STRATEGIES = ("reconnect", "in-place", "consumer-protocol", "regex", "group-per-pipeline")
# A consumer group per pipeline: the only strategy that met every rebalance goal
# (docs/measurements.md, "Rebalance"): a new pipeline changes no running pipeline's group.
# Its groups use KIP-848, so it needs a Kafka 4 broker whose group.consumer.session.timeout.ms
# is short (the local broker's is 10 s; Kafka's default, 45 s, makes failover slow).
DEFAULT_STRATEGY = "group-per-pipeline"


def redacted(url: str) -> str:
    """A Redis URL fit for logs and messages: its password replaced by ***, in the URL's
    user part and in a `password=` query parameter (redis-py accepts both)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")  # hosts: several, for Sentinel
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hosts}")
    if parts.query:
        query = [(k, "***" if k.lower() == "password" else v)
                 for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        parts = parts._replace(query=urlencode(query, safe="*/"))
    return urlunsplit(parts)


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

    # ---- librdkafka -------------------------------------------------------------------

    def _merge(self, defaults: dict[str, Any], forced: dict[str, Any]) -> dict[str, Any]:
        # librdkafka's own log lines as structured events (shared/logging.py)
        return {**defaults, **self.kafka_extra, "bootstrap.servers": self.bootstrap_servers,
                "logger": librdkafka_logger(), **forced}

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
            # first retry after 10 ms, not 100 (backing off exponentially to 1 s): a new
            # pipeline's partitions refuse a first write for a moment (NOT_LEADER), and
            # every new pipeline waited out that 100 ms (measured: opening 8 partitions
            # took 0.11 s, 0.03 s with this)
            "retry.backoff.ms": 10,
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
            # a partition whose fetch failed is fetched again after this (librdkafka's 500 ms
            # default was a new pipeline's first fetch, when its partitions were a moment old)
            "fetch.error.backoff.ms": 50,
            "retry.backoff.ms": 10,
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


# Static membership (group.instance.id) was an option until commit 5b39da0. With the classic
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


def read_local_cluster(home: Path) -> dict[str, Any] | None:
    try:
        return json.loads(_cluster_file(home).read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None


def write_local_cluster(home: Path, bootstrap: str, redis_url: str,
                        kafka: dict[str, str] | None = None,
                        principals: dict[str, str] | None = None) -> None:
    """The local cluster's record: its addresses, a secured cluster's client settings (the
    submitter's principal) and each role's password (the file is its owner's only)."""
    home.mkdir(parents=True, exist_ok=True)
    path = _cluster_file(home)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"bootstrap_servers": bootstrap, "redis_url": redis_url,
                   "kafka": kafka or {}, "principals": principals or {}}, f)


def kafka_extra_from_env() -> dict[str, str]:
    return {k[len(ENV_KAFKA_PREFIX):].lower().replace("_", "."): v
            for k, v in os.environ.items()
            if k.startswith(ENV_KAFKA_PREFIX) and k not in LOCAL_BROKER_VARIABLES}


@dataclass(frozen=True)
class Setting:
    field: str  # the Settings field, and the key in the config file
    env: str
    flag: str  # the command-line flag ("" when there is none)
    help: str


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
            f"the size of an input split; default {DEFAULT_SPLIT_BYTES}"),
    Setting("session_timeout_ms", ENV_SESSION_TIMEOUT, "",
            "how long a dead worker's partitions wait before they move (classic groups); "
            "default 10000, at least 6000"),
    Setting("pipeline_consumers", ENV_PIPELINE_CONSUMERS, "",
            "group-per-pipeline: pipelines a mapper or reducer serves at once; default 16"),
    Setting("replication_factor", ENV_REPLICATION_FACTOR, "",
            "replicas of each topic the framework creates; default 0: min(3, brokers up)"),
    Setting("spec_max_age_s", ENV_SPEC_MAX_AGE, "",
            "workers refuse a spec older than this (a replay); default 86400, 0: no limit"),
    Setting("input_roots", ENV_INPUT_ROOTS, "",
            "directories (separated by ':') mappers may read input from; default: any "
            "file the signed spec names"),
)
_PATHS = {"home", "signing_key_file"}
_BOOLS = {"insecure_specs"}
_INTS = {"shuffle_memory_mb", "sink_memory_mb", "split_bytes", "session_timeout_ms",
         "pipeline_consumers", "spec_max_age_s", "replication_factor"}
_ZERO_OK = {"spec_max_age_s", "replication_factor"}


def config_file(explicit: Path | None = None) -> Path | None:
    """The config file in use: --config, $MAPREDUCE_CONFIG, or the default one if it
    exists. An explicitly named file that does not exist is an error."""
    named = explicit or (Path(os.environ[ENV_CONFIG]) if os.environ.get(ENV_CONFIG) else None)
    if named is not None:
        named = named.expanduser()
        if not named.is_file():
            raise ConfigError(f"config file {named} does not exist")
        return named
    default = DEFAULT_CONFIG_FILE.expanduser()
    return default if default.is_file() else None


def read_config_file(path: Path | None) -> dict[str, Any]:
    """The settings a TOML config file holds (unknown keys are an error: a typo must not
    silently set nothing)."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    known = {s.field for s in SETTINGS} | {"kafka"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown settings {unknown}; known: "
                          f"{sorted(known)}")
    if not isinstance(data.get("kafka", {}), dict):
        raise ConfigError(f"config file {path}: [kafka] must be a table of librdkafka "
                          "properties")
    return data


def _typed(setting: Setting, raw: Any, where: str) -> Any:
    name = setting.field
    if name in _BOOLS:
        if isinstance(raw, bool):
            return raw
        if str(raw) in ("0", "1", "true", "false"):
            return str(raw) in ("1", "true")
        raise ConfigError(f"{where}={raw!r}: must be 1 or 0 (true or false)")
    if name in _INTS:
        least = 0 if name in _ZERO_OK else 1
        if isinstance(raw, int) and not isinstance(raw, bool) and raw >= least:
            return raw
        if isinstance(raw, str) and raw.isdigit() and int(raw) >= least:
            return int(raw)
        raise ConfigError(f"{where}={raw!r}: must be a positive whole number")
    if name in _PATHS:
        return Path(str(raw)).expanduser()
    if name == "input_roots":
        parts = raw if isinstance(raw, list) else str(raw).split(os.pathsep)
        return tuple(Path(str(p)).expanduser() for p in parts if str(p))
    return str(raw)


def resolve(bootstrap: str | None = None, redis_url: str | None = None,
            home: Path | None = None, *, flags: dict[str, Any] | None = None,
            config: Path | None = None) -> Settings | None:
    """Settings from flags, environment, config file and the local cluster file, in that
    order of precedence (see the module's docstring); None if no cluster is known."""
    path = config_file(config)
    from_file = read_config_file(path)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.field in from_file:
            values[setting.field] = _typed(setting, from_file[setting.field],
                                           f"{path}: {setting.field}")
        raw = os.environ.get(setting.env)
        if raw:
            values[setting.field] = _typed(setting, raw, setting.env)
    given = {"bootstrap_servers": bootstrap, "redis_url": redis_url, "home": home,
             **(flags or {})}
    values.update({k: v for k, v in given.items() if v is not None})
    if values.get("resubscribe", DEFAULT_STRATEGY) not in STRATEGIES:
        raise ConfigError(f"resubscribe={values['resubscribe']!r} ({ENV_RESUBSCRIBE} or the "
                          f"config file): choose one of {', '.join(STRATEGIES)}")
    if os.environ.get(ENV_STATIC, "0") not in ("", "0"):
        raise ConfigError(STATIC_MEMBERSHIP_REFUSED)
    values["home"] = Path(values.get("home") or default_home()).expanduser()
    values["kafka_extra"] = {**{str(k): str(v) for k, v in from_file.get("kafka", {}).items()},
                             **kafka_extra_from_env()}
    bootstrap, redis_url = values.pop("bootstrap_servers", None), values.pop("redis_url", None)
    if bootstrap and redis_url:
        return Settings(bootstrap, redis_url, **values)
    local = read_local_cluster(values["home"])
    if local is None:
        return None
    local_cluster = not (bootstrap or redis_url)
    if local_cluster:  # a secured local cluster's client settings, below the user's own
        values["kafka_extra"] = {**local.get("kafka", {}), **values["kafka_extra"]}
    return Settings(bootstrap or local["bootstrap_servers"], redis_url or local["redis_url"],
                    local=local_cluster, **values)
