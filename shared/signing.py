"""The trust boundary for shipped code: pipeline specs are signed, and workers refuse a spec
whose signature is missing or does not verify *before* unpickling it (unpickling runs code).

Two schemes. What is signed binds the bytes to their pipeline id, so a signed spec cannot
be re-announced under another id.
- HMAC-SHA256 with a key shared by submitters and workers (the default; the local cluster's).
  The same key tags every message (shared/auth.py).
- Ed25519: submitters hold the private key, workers only the public one, so a compromised
  worker cannot sign a spec (cannot run code on the others). Messages are then tagged with
  a separate shared key, MAPREDUCE_MESSAGE_KEY_FILE: workers must tell each other's
  messages from an outsider's. `mapreduce keygen DIR` writes the three files.
The spec key comes from, first match wins:
  MAPREDUCE_SIGNING_KEY       an HMAC key itself (at least 16 characters)
  MAPREDUCE_SIGNING_KEY_FILE  a file holding an HMAC key, or an Ed25519 key in PEM
                              (private: signs and verifies; public: verifies only)
  $MAPREDUCE_HOME/signing.key written by `mapreduce up` for the local cluster (mode 0600)
Insecure development mode (MAPREDUCE_INSECURE_SPECS=1, `--insecure-specs`) accepts unsigned
specs; a spec that carries a signature which does not verify is refused even then.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mapreduce_kafka.shared.errors import ConfigError

HEADER = "mr-sig"
ENV_KEY = "MAPREDUCE_SIGNING_KEY"
ENV_KEY_FILE = "MAPREDUCE_SIGNING_KEY_FILE"
ENV_MESSAGE_KEY_FILE = "MAPREDUCE_MESSAGE_KEY_FILE"
ED25519 = b"ed25519:"
ENV_INSECURE = "MAPREDUCE_INSECURE_SPECS"
KEY_FILE_NAME = "signing.key"
MIN_KEY_BYTES = 16
_DOMAIN = b"mapreduce-spec-v1\0"


def _mac(key: bytes, pipeline_id: str, payload: bytes) -> bytes:
    message = _DOMAIN + pipeline_id.encode() + b"\0" + payload
    return hmac.new(key, message, hashlib.sha256).hexdigest().encode()


@dataclass(frozen=True)
class SpecPolicy:
    """What a process signs with and what it accepts: an HMAC key, or an Ed25519 key pair
    (the private key only where specs are submitted), with the key messages are tagged
    with (`message_key`; the HMAC key itself in that scheme)."""

    key: bytes | None
    insecure: bool = False
    private_key: Ed25519PrivateKey | None = None
    public_key: Ed25519PublicKey | None = None
    message_key: bytes | None = None

    def sign(self, pipeline_id: str, payload: bytes) -> bytes | None:
        if self.private_key is not None:
            signature = self.private_key.sign(_DOMAIN + pipeline_id.encode() + b"\0" + payload)
            return ED25519 + base64.b64encode(signature)
        if self.public_key is not None:
            raise ConfigError("this signing key is an Ed25519 public key: it verifies specs; "
                              "submitting needs the private key")
        return None if self.key is None else _mac(self.key, pipeline_id, payload)

    def refusal(self, pipeline_id: str, payload: bytes, signature: bytes | None) -> str | None:
        """Why this spec must not be loaded, or None if it may be."""
        if signature is None:
            if self.insecure:
                return None
            return ("unsigned pipeline spec refused: sign it with the cluster's key, or run "
                    "the workers in insecure development mode")
        public = self.public_key or (self.private_key.public_key() if self.private_key
                                     else None)
        if signature.startswith(ED25519) and public is not None:
            try:
                public.verify(base64.b64decode(signature[len(ED25519):]),
                              _DOMAIN + pipeline_id.encode() + b"\0" + payload)
            except (InvalidSignature, ValueError):
                return ("pipeline spec signature does not verify (tampered, or signed with "
                        "another key): refused")
            return None
        if self.key is None:
            if self.insecure and public is None:
                return None  # nothing to check it against; insecure mode accepts it
            return ("signed pipeline spec refused: this worker has no signing key to verify "
                    "this kind of signature")
        if not hmac.compare_digest(signature, _mac(self.key, pipeline_id, payload)):
            return ("pipeline spec signature does not verify (tampered, or signed with "
                    "another key): refused")
        return None


def read_key_file(path: Path, what: str = "signing key") -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc.strerror}") from exc
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{what} in {path} is too short: at least {MIN_KEY_BYTES} bytes")
    return key


def _key_policy(path: Path, insecure: bool, env: dict[str, str]) -> SpecPolicy:
    """The policy a key file makes: an HMAC key, or an Ed25519 key in PEM (with the message
    key it then needs)."""
    raw = read_key_file(path)
    if not raw.startswith(b"-----BEGIN"):
        return SpecPolicy(raw, insecure)
    try:
        if b"PRIVATE KEY" in raw:
            private = serialization.load_pem_private_key(raw, password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise ConfigError(f"{path}: a private key, but not an Ed25519 one")
            public, private_key = None, private
        else:
            loaded = serialization.load_pem_public_key(raw)
            if not isinstance(loaded, Ed25519PublicKey):
                raise ConfigError(f"{path}: a public key, but not an Ed25519 one")
            public, private_key = loaded, None
    except ValueError as exc:
        raise ConfigError(f"{path}: not a readable PEM key ({exc})") from exc
    message_file = env.get(ENV_MESSAGE_KEY_FILE)
    if not message_file:
        raise ConfigError(f"{path} is an Ed25519 key: set {ENV_MESSAGE_KEY_FILE} to the key "
                          "every submitter and worker tags messages with (`mapreduce keygen` "
                          "writes one)")
    return SpecPolicy(None, insecure, private_key, public,
                      read_key_file(Path(message_file), "message key"))


def write_ed25519_keys(directory: Path) -> tuple[Path, Path, Path]:
    """A new Ed25519 spec key pair and a message key, each readable by its owner only:
    spec.key (submitters), spec.pub (workers), message.key (both)."""
    directory.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    files = {
        "spec.key": private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()),
        "spec.pub": private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "message.key": (secrets.token_hex(32) + "\n").encode(),
    }
    for name, data in files.items():
        fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return directory / "spec.key", directory / "spec.pub", directory / "message.key"


def ensure_key_file(home: Path) -> Path:
    """The local cluster's key: made once, readable by its owner only, in a state directory
    only its owner can enter."""
    path = home / KEY_FILE_NAME
    if not home.exists():
        home.mkdir(mode=0o700, parents=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    return path


def policy(home: Path, key_file: Path | None, insecure: bool,
           env: dict[str, str] | None = None) -> SpecPolicy:
    """The policy from the environment, the settings' key file, or the home's key file.
    Without a key and outside insecure mode: a clear error, never a silent unsigned run."""
    env = dict(os.environ) if env is None else env
    raw = env.get(ENV_KEY)
    if raw:
        if len(raw.encode()) < MIN_KEY_BYTES:
            raise ConfigError(f"{ENV_KEY} is too short: at least {MIN_KEY_BYTES} bytes")
        return SpecPolicy(raw.encode(), insecure)
    path = key_file or (Path(env[ENV_KEY_FILE]) if env.get(ENV_KEY_FILE) else None)
    if path is None and (home / KEY_FILE_NAME).exists():
        path = home / KEY_FILE_NAME
    if path is not None:
        return _key_policy(path, insecure, env)
    if insecure:
        return SpecPolicy(None, insecure=True)
    raise ConfigError(
        f"no pipeline signing key: set {ENV_KEY_FILE} (or {ENV_KEY}) to the same key on the "
        f"submitting machine and every worker, or `mapreduce up` a local cluster (it writes "
        f"{home / KEY_FILE_NAME}); for development only, {ENV_INSECURE}=1 accepts unsigned specs")


def message_key(spec_policy: SpecPolicy) -> bytes | None:
    """The key messages are tagged with (shared/auth.py): the HMAC signing key, or with
    Ed25519 the message key; None in insecure mode without a key."""
    return spec_policy.message_key or spec_policy.key
