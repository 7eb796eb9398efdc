"""The compose file is valid (no Docker engine runs here, so it is validated, not run)."""

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

COMPOSE = REPO / "compose" / "docker-compose.yml"


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="Debian's docker-compose is not installed (make install adds it)")
def test_compose_multi_topic_profile_is_valid():
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "--profile", "multi-topic",
                             "config"], capture_output=True, text=True, cwd=COMPOSE.parent)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"kafka", "redis", "dispatcher", "mapper", "shuffler", "reducer", "sink"} <= set(
        services)
    assert services["mapper"]["command"] == ["worker", "mapper"]
    assert services["mapper"]["environment"]["MAPREDUCE_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    # every worker verifies specs with the key from the secret
    for role in ("dispatcher", "mapper", "shuffler", "reducer", "sink", "source"):
        assert services[role]["environment"]["MAPREDUCE_SIGNING_KEY_FILE"] == \
            "/run/secrets/signing_key"
        assert [s if isinstance(s, str) else s["source"]
                for s in services[role]["secrets"]] == ["signing_key"]
