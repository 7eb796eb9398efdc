"""Test clusters listen on ports the kernel never hands out to outgoing connections."""

from __future__ import annotations

import socket

from mapreduce_kafka.services.testing import ports


def test_ports_come_from_below_the_ephemeral_range_and_are_free():
    start = ports._ephemeral_start()
    for _ in range(20):
        base = ports.free_port_block(3)
        assert ports.LOWEST <= base < base + 3 <= start
        for port in range(base, base + 3):
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_not_taken_for_free():
    with socket.socket() as held:
        held.bind(("127.0.0.1", ports.free_port()))
        taken = held.getsockname()[1]
        assert not ports._free(taken)
