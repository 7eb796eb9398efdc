"""The spec trust boundary as pure functions: what is accepted, what is refused, and why."""

import stat

import pytest

from mapreduce_kafka.shared import signing
from mapreduce_kafka.shared.errors import ConfigError

KEY = b"k" * 32
SECURE = signing.SpecPolicy(KEY)


def test_a_signed_spec_verifies():
    sig = SECURE.sign("p1", b"spec bytes")
    assert sig is not None and SECURE.refusal("p1", b"spec bytes", sig) is None


@pytest.mark.parametrize("pipeline_id,payload", [
    ("p1", b"spec bytes!"),  # tampered bytes
    ("p2", b"spec bytes"),  # the same signed bytes re-announced under another id
])
def test_tampering_is_refused(pipeline_id, payload):
    sig = SECURE.sign("p1", b"spec bytes")
    assert "does not verify" in SECURE.refusal(pipeline_id, payload, sig)


def test_another_key_is_refused():
    sig = signing.SpecPolicy(b"x" * 32).sign("p1", b"spec")
    assert "does not verify" in SECURE.refusal("p1", b"spec", sig)


def test_unsigned_is_refused_unless_insecure():
    assert "unsigned" in SECURE.refusal("p1", b"spec", None)
    assert signing.SpecPolicy(KEY, insecure=True).refusal("p1", b"spec", None) is None
    assert signing.SpecPolicy(None, insecure=True).refusal("p1", b"spec", None) is None


def test_a_bad_signature_is_refused_even_in_insecure_mode():
    insecure = signing.SpecPolicy(KEY, insecure=True)
    assert "does not verify" in insecure.refusal("p1", b"spec", b"00" * 32)


def test_a_worker_without_a_key_refuses_signed_specs_outside_insecure_mode():
    assert "no signing key" in signing.SpecPolicy(None).refusal("p1", b"spec", b"ab")


def test_key_sources_in_order(tmp_path):
    home = tmp_path / "home"
    with pytest.raises(ConfigError, match="no pipeline signing key"):
        signing.policy(home, None, insecure=False, env={})
    assert signing.policy(home, None, insecure=True, env={}).key is None
    path = signing.ensure_key_file(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing.ensure_key_file(home) == path  # made once
    from_home = signing.policy(home, None, insecure=False, env={}).key
    assert from_home == path.read_bytes().strip() and len(from_home) == 64
    other = tmp_path / "other.key"
    other.write_text("o" * 20 + "\n")
    by_env = signing.policy(home, None, False, env={signing.ENV_KEY_FILE: str(other)})
    assert by_env.key == b"o" * 20
    assert signing.policy(home, other, False, env={}).key == b"o" * 20
    assert signing.policy(home, other, False, env={signing.ENV_KEY: "e" * 16}).key == b"e" * 16


def test_short_or_missing_keys_are_clear_errors(tmp_path):
    short = tmp_path / "short.key"
    short.write_text("abc")
    with pytest.raises(ConfigError, match="too short"):
        signing.policy(tmp_path, short, False, env={})
    with pytest.raises(ConfigError, match="cannot read"):
        signing.policy(tmp_path, tmp_path / "missing.key", False, env={})
    with pytest.raises(ConfigError, match="too short"):
        signing.policy(tmp_path, None, False, env={signing.ENV_KEY: "abc"})


def test_ed25519_submitters_sign_workers_only_verify(tmp_path):
    from mapreduce_kafka.shared.errors import ConfigError

    private, public, message = signing.write_ed25519_keys(tmp_path / "keys")
    env = {signing.ENV_MESSAGE_KEY_FILE: str(message)}
    submitter = signing.policy(tmp_path, private, False, env)
    worker = signing.policy(tmp_path, public, False, env)
    signature = submitter.sign("p1", b"spec")
    assert signature is not None and signature.startswith(signing.ED25519)
    assert worker.refusal("p1", b"spec", signature) is None
    assert "does not verify" in (worker.refusal("p2", b"spec", signature) or "")  # other id
    assert "does not verify" in (worker.refusal("p1", b"spec!", signature) or "")
    with pytest.raises(ConfigError, match="verifies specs"):
        worker.sign("p1", b"spec")  # a worker's key cannot sign
    hmac_signed = signing.SpecPolicy(b"k" * 32).sign("p1", b"spec")
    assert "no signing key" in (worker.refusal("p1", b"spec", hmac_signed) or "")
    assert (signing.message_key(worker) == signing.message_key(submitter)
            == message.read_bytes().strip())
    for path in (private, public, message):
        assert path.stat().st_mode & 0o777 == 0o600


def test_ed25519_needs_a_message_key(tmp_path):
    from mapreduce_kafka.shared.errors import ConfigError

    private, _public, _message = signing.write_ed25519_keys(tmp_path / "keys")
    with pytest.raises(ConfigError, match="MAPREDUCE_MESSAGE_KEY_FILE"):
        signing.policy(tmp_path, private, False, {})
