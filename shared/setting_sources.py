"""Where settings come from, and resolve(), which gathers them into Settings.

First match wins:
  1. a command-line flag;
  2. the environment (MAPREDUCE_*);
  3. the config file: --config FILE, $MAPREDUCE_CONFIG, or ~/.config/mapreduce/config.toml
     when it exists (TOML; the same names as the fields, librdkafka properties in a
     [kafka] table);
  4. for the Kafka and Redis addresses, the local cluster `mapreduce up` started, recorded
     in $MAPREDUCE_HOME/cluster.json (shared/cluster_file.py);
  5. the default.
If no cluster is known, resolve() returns None: the CLI starts a local one (`up`) or says
what is missing. Text from the environment or the file is parsed by the type of the
setting's Settings field (shared/settings.py).
"""

from __future__ import annotations

import os
import tomllib
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mapreduce_kafka.shared.cluster_file import read_local_cluster
from mapreduce_kafka.shared.errors import ConfigError
from mapreduce_kafka.shared.resubscribe_strategies import DEFAULT_STRATEGY, STRATEGIES
from mapreduce_kafka.shared.settings import (
    ENV_KAFKA_PREFIX,
    ENV_RESUBSCRIBE,
    SETTINGS,
    Setting,
    Settings,
    default_home,
)

ENV_CONFIG = "MAPREDUCE_CONFIG"
DEFAULT_CONFIG_FILE = Path("~/.config/mapreduce/config.toml")
ENV_STATIC = "MAPREDUCE_STATIC_MEMBERSHIP"
# The local broker's own settings (services/localcluster): they share the prefix, and
# librdkafka would refuse them as unknown properties, so they are never passed on.
LOCAL_BROKER_VARIABLES = frozenset({"MAPREDUCE_KAFKA_PORT", "MAPREDUCE_KAFKA_HEAP"})

# With the classic protocol a static member (group.instance.id) that rejoins with new topics
# keeps its old assignment, so new pipelines were never picked up (the job hung). With
# KIP-848 (librdkafka 2.16, Kafka 4.1) static members restarted on GROUP_ID_NOT_FOUND for
# about 8 s when they joined, and in one CI run two partitions of a running pipeline stayed
# unassigned for 3 minutes after a rebalance. It bought nothing measurable
# (benchmarks/rebalance.py), so it is refused.
STATIC_MEMBERSHIP_REFUSED = (
    f"{ENV_STATIC}=1: static membership is not offered: with the classic protocol new "
    "pipelines are never assigned to static members, and with KIP-848 static members were "
    "seen to leave a running pipeline's partitions unassigned for minutes "
    "(docs/architecture.md, \"Static membership is not offered\"); unset it")


def kafka_extra_from_env() -> dict[str, str]:
    return {k[len(ENV_KAFKA_PREFIX):].lower().replace("_", "."): v
            for k, v in os.environ.items()
            if k.startswith(ENV_KAFKA_PREFIX) and k not in LOCAL_BROKER_VARIABLES}


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


# ---- text to a setting's type ----------------------------------------------------------

Parse = Callable[[Setting, Any, str], Any]


def _boolean(setting: Setting, raw: Any, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if str(raw) in ("0", "1", "true", "false"):
        return str(raw) in ("1", "true")
    raise ConfigError(f"{where}={raw!r}: must be 1 or 0 (true or false)")


def _whole_number(setting: Setting, raw: Any, where: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= setting.least:
        return raw
    if isinstance(raw, str) and raw.isdigit() and int(raw) >= setting.least:
        return int(raw)
    bound = {0: "0 or more", 1: "positive"}.get(setting.least, f"at least {setting.least}")
    raise ConfigError(f"{where}={raw!r}: must be a whole number, {bound}")


def _path(setting: Setting, raw: Any, where: str) -> Path:
    return Path(str(raw)).expanduser()


def _paths(setting: Setting, raw: Any, where: str) -> tuple[Path, ...]:
    """A TOML list, or text separated by os.pathsep (':')."""
    parts = raw if isinstance(raw, list) else str(raw).split(os.pathsep)
    return tuple(Path(str(p)).expanduser() for p in parts if str(p))


def _text(setting: Setting, raw: Any, where: str) -> str:
    return str(raw)


_PARSERS: dict[object, Parse] = {
    bool: _boolean, int: _whole_number, Path: _path, Path | None: _path,
    tuple[Path, ...]: _paths, str: _text}


def _parser_of(setting: Setting, types: dict[str, Any]) -> Parse:
    try:
        return _PARSERS[types[setting.field]]
    except KeyError:
        raise TypeError(f"setting {setting.field}: no Settings field of a type read from "
                        "text") from None


# Built at import: a setting whose field is misnamed, or of a type with no parser, fails here.
_PARSER_OF = {s.field: _parser_of(s, typing.get_type_hints(Settings)) for s in SETTINGS}


def _typed(setting: Setting, raw: Any, where: str) -> Any:
    return _PARSER_OF[setting.field](setting, raw, where)


# ---- all sources together --------------------------------------------------------------

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
