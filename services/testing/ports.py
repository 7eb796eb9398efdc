"""Free loopback ports, for a cluster of a suite's or a benchmark's own.

Ports come from below the kernel's ephemeral range: a port the kernel hands out for a bind
to port 0 is one it may hand out again, a moment later, as the local end of any outgoing
connection, and the broker that was to listen on it then fails to start."""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10_000
# Not the `random` module's generator: a test that seeds it must not make two processes
# draw the same ports.
_DRAW = random.SystemRandom()


def _ephemeral_start() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_block(count: int) -> int:
    """A first port such that it and the `count` - 1 after it are free, all below the
    ephemeral range."""
    top = _ephemeral_start() - count
    if top <= LOWEST:
        raise RuntimeError(f"the ephemeral range starts at {top + count}: no room below it")
    for _ in range(500):
        base = _DRAW.randrange(LOWEST, top)
        if all(_free(port) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports below the ephemeral range")


def free_port() -> int:
    return free_port_block(1)
