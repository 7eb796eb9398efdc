import pytest

from mapreduce_kafka.shared.resubscribe_strategies import STRATEGIES, consumer_overrides
from mapreduce_kafka.shared.settings import Settings


def settings(**kw):
    return Settings("b:9092", "redis://r/0", kafka_extra={"security.protocol": "SSL"}, **kw)


def test_merge_order_forced_values_win_over_user_extras():
    s = Settings("b:9092", "redis://r/0", kafka_extra={"enable.auto.commit": "true",
                                                       "fetch.max.bytes": "1"})
    cfg = s.consumer_config("g")
    assert cfg["enable.auto.commit"] is False and cfg["auto.offset.reset"] == "earliest"
    assert cfg["fetch.max.bytes"] == "1"  # user extras beat defaults
    assert cfg["bootstrap.servers"] == "b:9092"


def test_kip848_config_leaves_out_classic_only_settings():
    cfg = settings().consumer_config("g", **consumer_overrides("consumer-protocol"))
    assert cfg["group.protocol"] == "consumer"
    for key in ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"):
        assert key not in cfg


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_has_a_consumer_config(strategy):
    cfg = settings().consumer_config("g", **consumer_overrides(strategy))
    assert cfg["group.id"] == "g" and cfg["security.protocol"] == "SSL"
    assert "group.instance.id" not in cfg  # static membership is not offered


def test_env_round_trip_carries_the_strategy():
    env = settings(resubscribe="regex").env()
    assert env["MAPREDUCE_RESUBSCRIBE"] == "regex"


@pytest.mark.parametrize(("env", "message"), [
    ({"MAPREDUCE_SHUFFLE_MEMORY_MB": "abc"}, "MAPREDUCE_SHUFFLE_MEMORY_MB"),
    ({"MAPREDUCE_SHUFFLE_MEMORY_MB": "0"}, "must be a whole number, positive"),
    ({"MAPREDUCE_REPLICATION_FACTOR": "-1"}, "must be a whole number, 0 or more"),
    ({"MAPREDUCE_SPLIT_BYTES": "1M"}, "MAPREDUCE_SPLIT_BYTES"),
    ({"MAPREDUCE_RESUBSCRIBE": "bogus"}, "MAPREDUCE_RESUBSCRIBE"),
    ({"MAPREDUCE_STATIC_MEMBERSHIP": "1", "MAPREDUCE_RESUBSCRIBE": "consumer-protocol"},
     "static membership is not offered")])
def test_a_bad_setting_in_the_environment_is_a_config_error(monkeypatch, env, message):
    """The CLI prints a ConfigError as one line and exits 2, never a traceback."""
    from mapreduce_kafka.shared.errors import ConfigError
    from mapreduce_kafka.shared.setting_sources import resolve

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        resolve("k:9092", "redis://r:6379/0")


def test_split_size_comes_from_the_environment(monkeypatch):
    from mapreduce_kafka.shared.setting_sources import resolve
    from mapreduce_kafka.shared.settings import DEFAULT_SPLIT_BYTES

    assert resolve("k:9092", "redis://r:6379/0").split_bytes == DEFAULT_SPLIT_BYTES
    monkeypatch.setenv("MAPREDUCE_SPLIT_BYTES", "65536")
    assert resolve("k:9092", "redis://r:6379/0").split_bytes == 65536


def test_redis_urls_are_redacted_for_logs():
    from mapreduce_kafka.shared.redis_client import redacted

    assert redacted("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redacted("rediss://user:pw@h/0?ssl_ca_certs=/ca.pem") == \
        "rediss://user:***@h/0?ssl_ca_certs=/ca.pem"
    assert redacted("redis://h:6379/0") == "redis://h:6379/0"


def test_the_local_brokers_own_variables_are_not_passed_to_librdkafka(monkeypatch):
    """MAPREDUCE_KAFKA_PORT (the local broker's port) once went to librdkafka as `port`,
    which it refuses: every worker failed to start, and restarted forever."""
    from confluent_kafka import Producer

    from mapreduce_kafka.shared.setting_sources import kafka_extra_from_env

    monkeypatch.setenv("MAPREDUCE_KAFKA_PORT", "29092")
    monkeypatch.setenv("MAPREDUCE_KAFKA_HEAP", "1g")
    monkeypatch.setenv("MAPREDUCE_KAFKA_CLIENT_ID", "mine")
    assert kafka_extra_from_env() == {"client.id": "mine"}
    Producer(Settings("127.0.0.1:9", "redis://r/0",
                      kafka_extra=kafka_extra_from_env()).producer_config())  # accepted


def test_flags_beat_environment_beat_config_file(tmp_path, monkeypatch):
    from mapreduce_kafka.shared.setting_sources import resolve

    config = tmp_path / "config.toml"
    config.write_text('bootstrap_servers = "file:9092"\nredis_url = "redis://file/0"\n'
                      'sink_memory_mb = 64\nshuffle_memory_mb = 128\n'
                      'insecure_specs = true\n[kafka]\n"client.id" = "from-file"\n'
                      '"socket.timeout.ms" = 5000\n')
    monkeypatch.setenv("MAPREDUCE_SHUFFLE_MEMORY_MB", "256")
    monkeypatch.setenv("MAPREDUCE_KAFKA_CLIENT_ID", "from-env")
    settings = resolve(config=config, home=tmp_path)
    assert settings is not None and not settings.local
    assert (settings.bootstrap_servers, settings.sink_memory_mb, settings.shuffle_memory_mb,
            settings.insecure_specs) == ("file:9092", 64, 256, True)
    assert settings.kafka_extra == {"client.id": "from-env", "socket.timeout.ms": "5000"}
    flagged = resolve("flag:9092", None, tmp_path, config=config,
                      flags={"shuffle_memory_mb": 512})
    assert flagged is not None
    assert (flagged.bootstrap_servers, flagged.shuffle_memory_mb) == ("flag:9092", 512)


@pytest.mark.parametrize(("text", "message"), [
    ("shufle_memory_mb = 3\n", "unknown settings"),
    ("sink_memory_mb = -1\n", "must be a whole number, positive"),
    ("resubscribe = 'eventually'\n", "choose one of"),
    ("not toml at all [\n", "config.toml"),
])
def test_a_bad_config_file_is_a_clear_error(tmp_path, text, message):
    from mapreduce_kafka.shared.errors import ConfigError
    from mapreduce_kafka.shared.setting_sources import resolve

    config = tmp_path / "config.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        resolve("k:9092", "redis://r/0", config=config)


def test_a_named_config_file_must_exist(tmp_path):
    from mapreduce_kafka.shared.errors import ConfigError
    from mapreduce_kafka.shared.setting_sources import resolve

    with pytest.raises(ConfigError, match="does not exist"):
        resolve("k:9092", "redis://r/0", config=tmp_path / "missing.toml")


def test_every_setting_and_environment_variable_is_in_the_readme():
    """One table in the README lists every setting; a variable the code reads that neither
    the README nor the operations guide it links to names is a setting nobody can find."""
    import re
    from pathlib import Path

    from mapreduce_kafka.shared.settings import SETTINGS

    repo = Path(__file__).resolve().parents[2]
    readme = (repo / "README.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.env}`" in readme, setting.env
    used = set()
    for path in [*repo.glob("services/**/*.py"), *repo.glob("shared/**/*.py")]:
        used |= set(re.findall(r"MAPREDUCE_[A-Z_]+[A-Z]", path.read_text()))
    # a worker's restart count, the crash-point suite's arming file, and librdkafka settings
    # (MAPREDUCE_KAFKA_<NAME>, documented as a family) that the code sets for a role
    internal = {"MAPREDUCE_WORKER_RESTARTS", "MAPREDUCE_CRASH_POINTS_FILE",
                "MAPREDUCE_KAFKA_SECURITY_PROTOCOL", "MAPREDUCE_KAFKA",
                "MAPREDUCE_KAFKA_SASL_USERNAME", "MAPREDUCE_KAFKA_SASL_PASSWORD"}
    documented = readme + (repo / "docs" / "operations.md").read_text()
    missing = sorted(v for v in used - internal if v not in documented)
    assert not missing, f"environment variables the documentation does not mention: {missing}"
