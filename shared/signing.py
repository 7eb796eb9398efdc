"""The trust boundary for shipped code: pipeline specs are signed, and workers refuse a spec
whose signature is missing or does not verify *before* unpickling it (unpickling runs code).

HMAC-SHA256 with a shared key. What is signed binds the bytes to their pipeline id, so a
signed spec cannot be re-announced under another id. The key comes from, first match wins:
  MAPREDUCE_SIGNING_KEY       the key itself (at least 16 characters)
  MAPREDUCE_SIGNING_KEY_FILE  a file holding it
  $MAPREDUCE_HOME/signing.key written by `mapreduce up` for the local cluster (mode 0600)
Insecure development mode (MAPREDUCE_INSECURE_SPECS=1, `--insecure-specs`) accepts unsigned
specs; a spec that carries a signature which does not verify is refused even then.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ConfigError

HEADER = "mr-sig"
ENV_KEY = "MAPREDUCE_SIGNING_KEY"
ENV_KEY_FILE = "MAPREDUCE_SIGNING_KEY_FILE"
ENV_INSECURE = "MAPREDUCE_INSECURE_SPECS"
KEY_FILE_NAME = "signing.key"
MIN_KEY_BYTES = 16
_DOMAIN = b"mapreduce-spec-v1\0"


def _mac(key: bytes, pipeline_id: str, payload: bytes) -> bytes:
    message = _DOMAIN + pipeline_id.encode() + b"\0" + payload
    return hmac.new(key, message, hashlib.sha256).hexdigest().encode()


@dataclass(frozen=True)
class SpecPolicy:
    """What a process signs with and what it accepts."""

    key: bytes | None
    insecure: bool = False

    def sign(self, pipeline_id: str, payload: bytes) -> bytes | None:
        return None if self.key is None else _mac(self.key, pipeline_id, payload)

    def refusal(self, pipeline_id: str, payload: bytes, signature: bytes | None) -> str | None:
        """Why this spec must not be loaded, or None if it may be."""
        if signature is None:
            if self.insecure:
                return None
            return ("unsigned pipeline spec refused: sign it with the cluster's key, or run "
                    "the workers in insecure development mode")
        if self.key is None:
            if self.insecure:
                return None  # nothing to check it against; insecure mode accepts it
            return "signed pipeline spec refused: this worker has no signing key to verify it"
        if not hmac.compare_digest(signature, _mac(self.key, pipeline_id, payload)):
            return ("pipeline spec signature does not verify (tampered, or signed with "
                    "another key): refused")
        return None


def read_key_file(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the signing key file {path}: {exc.strerror}") from exc
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"signing key in {path} is too short: at least {MIN_KEY_BYTES} bytes")
    return key


def ensure_key_file(home: Path) -> Path:
    """The local cluster's key: made once, readable by its owner only."""
    path = home / KEY_FILE_NAME
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
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
        return SpecPolicy(read_key_file(path), insecure)
    if insecure:
        return SpecPolicy(None, insecure=True)
    raise ConfigError(
        f"no pipeline signing key: set {ENV_KEY_FILE} (or {ENV_KEY}) to the same key on the "
        f"submitting machine and every worker, or `mapreduce up` a local cluster (it writes "
        f"{home / KEY_FILE_NAME}); for development only, {ENV_INSECURE}=1 accepts unsigned specs")
