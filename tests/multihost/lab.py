"""Several hosts on one machine: Linux network namespaces joined by veth links to a bridge.

    root namespace (the test: submits, reads status)  10.N.0.1 on bridge mrbrN
      |-- broker host  10.N.0.2   Kafka + Redis (+ toxiproxy in front of a second listener)
      |-- w1           10.N.0.11  one worker of every role
      `-- w2           10.N.0.12  one worker of every role

Each host has its own UTS namespace too (its own hostname, which `status` shows), its own
MAPREDUCE_HOME, and nothing on loopback: every address is the host's own. Faults:
  cut(host) / restore(host)          the host's link goes down: a partition from everyone
  blackhole(host, dest) / unblackhole  one host loses the route to one other: a one-sided cut
Everything created here is named mrlab<pid>-*, removed by close() even when a test fails,
and swept at the next start if a crashed run left it behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.localcluster.cluster import LocalCluster
from mapreduce_kafka.services.localcluster.processes import alive
from mapreduce_kafka.shared.settings import Settings

PREFIX = "mrlab"


class LabUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no iproute2, no CAP_NET_ADMIN)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None: tried for real, not guessed."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if shutil.which("unshare") is None:
        return "util-linux's `unshare` is not installed"
    probe = f"{PREFIX}probe{os.getpid()}"
    result = _ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"cannot create network namespaces: {result.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def sweep_stale() -> None:
    """Remove what a lab whose process is gone left behind."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if not name.startswith(PREFIX) or name.startswith(f"{PREFIX}probe"):
            continue
        owner = name[len(PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not alive(int(owner)):
            _kill_namespace(name)
    for line in _ip("-o", "link", "show", "type", "bridge", check=False).stdout.splitlines():
        bridge = line.split(":")[1].strip().split("@")[0]
        owner = bridge[len("mrbr"):]
        if bridge.startswith("mrbr") and owner.isdigit() and not alive(int(owner)):
            _ip("link", "del", bridge, check=False)


def _kill_namespace(name: str) -> None:
    pids = _ip("netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "del", name, check=False)


@dataclass
class Host:
    name: str
    netns: str
    address: str
    veth_root: str  # the link's end on the bridge: down = the host is cut off
    home: Path

    def launcher(self) -> list[str]:
        """Run a command on this host: its network namespace, its own hostname."""
        return ["ip", "netns", "exec", self.netns, "unshare", "--uts", "sh", "-c",
                f'hostname {self.name} && exec "$0" "$@"']

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv],
                              capture_output=True, text=True, check=True)


@dataclass
class Lab:
    root: Path
    tag: str = field(default_factory=lambda: str(os.getpid()))
    hosts: dict[str, Host] = field(default_factory=dict)
    cluster: LocalCluster | None = None

    def __post_init__(self) -> None:
        self.subnet = f"10.{200 + os.getpid() % 50}.{os.getpid() % 250}"
        self.bridge = f"mrbr{self.tag}"

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    def open(self, worker_hosts: Sequence[str] = ("w1", "w2")) -> None:
        sweep_stale()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        self._add_host("broker", 2)
        for i, name in enumerate(worker_hosts):
            self._add_host(name, 11 + i)

    def _add_host(self, name: str, last_octet: int) -> Host:
        netns = f"{PREFIX}{self.tag}-{name}"
        veth_root, veth_host = f"mr{self.tag}{name}", f"mr{self.tag}{name}h"
        _ip("netns", "add", netns)
        _ip("link", "add", veth_root, "type", "veth", "peer", "name", veth_host)
        _ip("link", "set", veth_host, "netns", netns)
        _ip("link", "set", veth_root, "master", self.bridge)
        _ip("link", "set", veth_root, "up")
        address = f"{self.subnet}.{last_octet}"
        inside = ("ip", "netns", "exec", netns, "ip")
        for args in (("link", "set", "lo", "up"), ("link", "set", veth_host, "name", "eth0"),
                     ("addr", "add", f"{address}/24", "dev", "eth0"),
                     ("link", "set", "eth0", "up"),
                     ("route", "add", "default", "via", self.gateway)):
            subprocess.run([*inside, *args], check=True, capture_output=True, text=True)
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        host = Host(name, netns, address, veth_root, home)
        self.hosts[name] = host
        return host

    # ---- what runs on the hosts -------------------------------------------------------

    def start_cluster(self, kafka_port: int = 9092, redis_port: int = 6379,
                      proxied_port: int | None = None,
                      proxied_address: str | None = None) -> Settings:
        broker = self.hosts["broker"]
        self.cluster = LocalCluster(broker.home, host=broker.address, kafka_port=kafka_port,
                                    controller_port=9093, redis_port=redis_port,
                                    netns=broker.netns, proxied_port=proxied_port,
                                    proxied_address=proxied_address)
        return self.cluster.start()

    def worker_settings(self, cluster: Settings, host: str,
                        bootstrap: str | None = None) -> Settings:
        """What a worker host is configured with: the cluster's addresses (or a proxy's),
        the shared signing key, a home of its own."""
        return cluster.with_(home=self.hosts[host].home, local=False,
                             bootstrap_servers=bootstrap or cluster.bootstrap_servers,
                             signing_key_file=cluster.home / "signing.key")

    def start_workers(self, settings: Settings, host: str,
                      counts: dict[str, int]) -> list[supervisor.WorkerProcess]:
        return supervisor.scale(settings, counts, launcher=self.hosts[host].launcher())

    # ---- faults -----------------------------------------------------------------------

    def cut(self, host: str) -> None:
        _ip("link", "set", self.hosts[host].veth_root, "down")

    def restore(self, host: str) -> None:
        _ip("link", "set", self.hosts[host].veth_root, "up")

    def blackhole(self, host: str, towards: str) -> None:
        self.hosts[host].run("ip", "route", "add", "blackhole",
                             f"{self.hosts[towards].address}/32")

    def unblackhole(self, host: str, towards: str) -> None:
        self.hosts[host].run("ip", "route", "del", "blackhole",
                             f"{self.hosts[towards].address}/32")

    # ---- teardown ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything and remove every namespace and link made here, whatever state
        the test left them in (a cut link, a blackhole route, a stopped process)."""
        errors = []
        for host in self.hosts.values():
            try:
                supervisor.stop_all(host.home)
            except Exception as exc:  # keep tearing down; report at the end
                errors.append(f"stopping workers on {host.name}: {exc!r}")
        if self.cluster is not None:
            try:
                self.cluster.stop()
            except Exception as exc:
                errors.append(f"stopping the cluster: {exc!r}")
        for host in self.hosts.values():
            _kill_namespace(host.netns)
            _ip("link", "del", host.veth_root, check=False)
        _ip("link", "del", self.bridge, check=False)
        self.hosts.clear()
        if errors:
            raise RuntimeError("; ".join(errors))
