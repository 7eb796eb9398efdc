"""Redis clients from a URL.

Two forms:
  redis://[:password@]host:port/db  (or rediss:// for TLS): redis-py's own URLs, one server.
  redis+sentinel://[:password@]host:port[,host:port...]/service[/db]: the primary of
      `service`, found through those Sentinels, and found again after a failover.

A `wait_replicas=N` query parameter (default 1 with Sentinel, 0 without) is how many replicas
must hold a coordination write before it counts: the write is followed by WAIT on the same
connection. Redis replicates asynchronously, so without it a failover can lose a write the
primary acknowledged (a barrier mark a worker then committed past: a job that never ends).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis
from redis.sentinel import Sentinel

from mapreduce_kafka.shared.errors import ConfigError

SENTINEL_SCHEME = "redis+sentinel"
WAIT_PARAMETER = "wait_replicas"
# Values that are not UTF-8 (written by something else, or a bug) read as escapes: decoding
# strictly raised UnicodeDecodeError, not a RedisError, and every worker that read such a
# value restarted and met it again, forever.
CLIENT_OPTIONS: dict[str, Any] = {"decode_responses": True, "encoding_errors": "backslashreplace",
                                  "socket_connect_timeout": 5, "socket_timeout": 10,
                                  "health_check_interval": 30}


@dataclass(frozen=True)
class RedisTarget:
    url: str  # the URL as given, less our own parameter
    wait_replicas: int
    sentinels: list[tuple[str, int]] = field(default_factory=list)  # empty: one server
    service: str = ""
    db: int = 0
    password: str | None = None


def parse(url: str) -> RedisTarget:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    wanted = [v for k, v in query if k == WAIT_PARAMETER]
    rest = [(k, v) for k, v in query if k != WAIT_PARAMETER]
    sentinel = parts.scheme == SENTINEL_SCHEME
    try:
        wait_replicas = int(wanted[-1]) if wanted else int(sentinel)
    except ValueError as exc:
        raise ConfigError(f"{WAIT_PARAMETER} must be a whole number, not {wanted[-1]!r}") \
            from exc
    if wait_replicas < 0:
        raise ConfigError(f"{WAIT_PARAMETER} must not be negative")
    plain = urlunsplit(parts._replace(query=urlencode(rest)))
    if not sentinel:
        return RedisTarget(plain, wait_replicas)
    hosts = parts.netloc.rpartition("@")[2]
    sentinels = []
    for address in filter(None, hosts.split(",")):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"a Sentinel address is host:port, not {address!r} in "
                              f"{SENTINEL_SCHEME}://host:port[,host:port]/service[/db]")
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not sentinels or not path:
        raise ConfigError(f"a Sentinel URL names its Sentinels and the service: "
                          f"{SENTINEL_SCHEME}://host:port[,host:port]/service[/db]")
    if len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigError(f"after the service, a Sentinel URL holds only a db number: "
                          f"{parts.path!r}")
    password = unquote(parts.password) if parts.password else None
    return RedisTarget(plain, wait_replicas, sentinels, path[0],
                       int(path[1]) if len(path) == 2 else 0, password)


def with_wait_replicas(url: str, replicas: int) -> str:
    """The same URL asking `replicas` replicas to hold each coordination write."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k != WAIT_PARAMETER]
    return urlunsplit(parts._replace(query=urlencode([*query, (WAIT_PARAMETER, replicas)])))


def connect(target: RedisTarget) -> redis.Redis:
    if not target.sentinels:
        return redis.Redis.from_url(target.url, **CLIENT_OPTIONS)
    sentinel = Sentinel(target.sentinels, socket_timeout=2, socket_connect_timeout=2)
    return sentinel.master_for(target.service, db=target.db, password=target.password,
                               **CLIENT_OPTIONS)


def primary_address(target: RedisTarget) -> tuple[str, int] | None:
    """The primary's address as the Sentinels report it (None for one server)."""
    if not target.sentinels:
        return None
    sentinel = Sentinel(target.sentinels, socket_timeout=2, socket_connect_timeout=2)
    host, port = sentinel.discover_master(target.service)
    return str(host), int(port)


def redacted(url: str) -> str:
    """A Redis URL fit for logs and messages: its password replaced by ***, in the URL's
    user part and in a `password=` query parameter (redis-py accepts both)."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")  # hosts: several, for Sentinel
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hosts}")
    if parts.query:
        query = [(k, "***" if k.lower() == "password" else v)
                 for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        parts = parts._replace(query=urlencode(query, safe="*/"))
    return urlunsplit(parts)
