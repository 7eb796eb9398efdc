"""Redis authentication through the configuration, on a real redis-server that requires a
password: the right URL works, a wrong one is a clear error that does not print the secret."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from mapreduce_kafka.services.localcluster.processes import debian_program, terminate
from mapreduce_kafka.services.testing.ports import free_port
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared.errors import ConnectionFailed
from mapreduce_kafka.shared.store import Store

pytestmark = pytest.mark.integration
SECRET = "s3cret-for-the-test"


@pytest.fixture
def protected_redis(tmp_path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([debian_program("redis-server"), "--port", str(port),
                             "--bind", "127.0.0.1", "--requirepass", SECRET, "--save", "",
                             "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"redis://:{SECRET}@127.0.0.1:{port}/0"

        def answers() -> bool:
            try:
                Store(url).check_reachable()
            except ConnectionFailed:
                return False
            return True

        wait_for(answers, timeout=20, what="redis-server with a password")
        yield port
    finally:
        terminate(proc.pid, 5)
        proc.wait(timeout=10)


def test_password_in_the_url_authenticates(protected_redis):
    store = Store(f"redis://:{SECRET}@127.0.0.1:{protected_redis}/0")
    store.check_reachable()
    assert store.create_pipeline("auth-test", {"name": "x"})


@pytest.mark.parametrize("password", ["", "wrong-password"])
def test_missing_or_wrong_password_is_a_clear_error_without_the_secret(protected_redis,
                                                                        password):
    url = f"redis://:{password}@127.0.0.1:{protected_redis}/0" if password else \
        f"redis://127.0.0.1:{protected_redis}/0"
    with pytest.raises(ConnectionFailed) as failure:
        Store(url).check_reachable()
    message = str(failure.value)
    assert "cannot reach Redis" in message
    assert "wrong-password" not in message and SECRET not in message
