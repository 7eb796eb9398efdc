import pytest

from services.runtime.resubscriber import consumer_overrides
from shared.config import STRATEGIES, Settings


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
    ({"MAPREDUCE_SHUFFLE_MEMORY_MB": "0"}, "positive whole number"),
    ({"MAPREDUCE_SPLIT_BYTES": "1M"}, "MAPREDUCE_SPLIT_BYTES"),
    ({"MAPREDUCE_RESUBSCRIBE": "bogus"}, "MAPREDUCE_RESUBSCRIBE"),
    ({"MAPREDUCE_STATIC_MEMBERSHIP": "1", "MAPREDUCE_RESUBSCRIBE": "consumer-protocol"},
     "static membership is not offered")])
def test_a_bad_setting_in_the_environment_is_a_config_error(monkeypatch, env, message):
    """The CLI prints a ConfigError as one line and exits 2, never a traceback."""
    from shared.config import resolve
    from shared.errors import ConfigError

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        resolve("k:9092", "redis://r:6379/0")


def test_split_size_comes_from_the_environment(monkeypatch):
    from shared.config import DEFAULT_SPLIT_BYTES, resolve

    assert resolve("k:9092", "redis://r:6379/0").split_bytes == DEFAULT_SPLIT_BYTES
    monkeypatch.setenv("MAPREDUCE_SPLIT_BYTES", "65536")
    assert resolve("k:9092", "redis://r:6379/0").split_bytes == 65536


def test_redis_urls_are_redacted_for_logs():
    from shared.config import redacted

    assert redacted("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redacted("rediss://user:pw@h/0?ssl_ca_certs=/ca.pem") == \
        "rediss://user:***@h/0?ssl_ca_certs=/ca.pem"
    assert redacted("redis://h:6379/0") == "redis://h:6379/0"
