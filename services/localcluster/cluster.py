"""The local cluster: one Apache Kafka 4 broker (KRaft, combined broker+controller, on the
machine's Java 17, jars from Maven Central) and one Debian redis-server, both on loopback,
with their data, logs and pids under $MAPREDUCE_HOME. Sized for a 2-core machine. With
`brokers` > 1, a replicated cluster instead: see replicated.py. The jars are fetched by
kafka_jars.py; pid files and stopping processes are processes.py's."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog
from confluent_kafka import KafkaException

from mapreduce_kafka.services.localcluster import replicated as replicated_mod
from mapreduce_kafka.services.localcluster import secure as secure_mod
from mapreduce_kafka.services.localcluster.kafka_jars import ensure_kafka_jars
from mapreduce_kafka.services.localcluster.processes import (
    debian_program,
    read_pid,
    terminate,
    write_pid,
)
from mapreduce_kafka.shared import kafka, retry, signing
from mapreduce_kafka.shared.cluster_file import write_local_cluster
from mapreduce_kafka.shared.errors import ClusterError, ConnectionFailed
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.store import Store

log = structlog.get_logger("cluster")

HERE = Path(__file__).parent
# 512 MB is plenty for one broker with a few hundred partitions and leaves the 2 cores'
# memory to the workers; G1 keeps pauses short.
KAFKA_HEAP = os.environ.get("MAPREDUCE_KAFKA_HEAP", "512m")
# C1 only: with C2, the compiler threads took about 5 s of CPU during every 100 MB job,
# warm broker or not (per-thread CPU, 3 jobs in a row), half the broker's CPU on a machine
# whose 2 cores the workers need; with C1 the broker's CPU per job fell from 9-11 s to 4.6 s.
KAFKA_JVM_OPTS = os.environ.get("MAPREDUCE_BROKER_JVM_OPTS", "-XX:TieredStopAtLevel=1").split()

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers={host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}{proxied_listener}
advertised.listeners=PLAINTEXT://{host}:{port}{proxied_advertised}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
# One node: every internal topic with replication factor 1.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Start rebalances at once: the 3 s default delay would stall every new consumer group.
group.initial.rebalance.delay.ms=0
# KIP-848 groups (--resubscribe consumer-protocol): the broker owns the session. Its 45 s
# default would leave a dead worker's partitions unread for 45 s; match the classic
# protocol's 10 s, and heartbeat every 250 ms: a member that joins while another still owns
# its share gets it on its next heartbeat after the other lets go (with 500 ms, the second
# mapper of a new job started 0.5 s after the first; that was a third of a 100 KB job).
group.consumer.session.timeout.ms={session_timeout_ms}
group.consumer.min.session.timeout.ms=6000
group.consumer.heartbeat.interval.ms=250
group.consumer.min.heartbeat.interval.ms=250
# Never create topics on first use: an early produce would make a 1-partition topic.
auto.create.topics.enable=false
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
# The framework sets retention on its own topics (shared/kafka.py); this is for the rest
# (a user's input topics), as Kafka's own default.
log.retention.hours=168
log.segment.bytes=268435456
"""

REDIS_CONF = """\
bind {host}
port {port}
dir {data}
daemonize no
protected-mode no
# Coordination state (barrier sets, pipeline status) must survive a crash: a barrier mark
# that was acknowledged and then lost would let a worker commit past an end marker that is
# never counted, and the job would wait forever. So every write is fsynced before Redis
# answers; coordination writes are a few per batch, so this costs little.
appendonly yes
appendfsync always
save ""
"""


def _cluster_id() -> str:
    """A KRaft cluster id (base64url of 16 random bytes). One starting with "-" reads as an
    option to kafka-storage: it failed one cluster start in 64. Kafka's own Uuid.randomUuid
    draws again in that case, and so does this."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class LocalCluster:
    home: Path
    # loopback unless told otherwise: MAPREDUCE_LOCAL_HOST=10.0.0.5 serves other hosts
    host: str = os.environ.get("MAPREDUCE_LOCAL_HOST", "127.0.0.1")
    kafka_port: int = int(os.environ.get("MAPREDUCE_KAFKA_PORT", "19092"))
    controller_port: int = int(os.environ.get("MAPREDUCE_CONTROLLER_PORT", "19093"))
    redis_port: int = int(os.environ.get("MAPREDUCE_REDIS_PORT", "16379"))
    sentinel_port: int = int(os.environ.get("MAPREDUCE_SENTINEL_PORT", "16479"))
    # Run the broker and Redis inside this network namespace (the multi-host test lab).
    netns: str | None = None
    # A second listener, PROXIED on this port, that advertises `proxied_address` (a fault
    # proxy in front of it): clients that bootstrap there keep talking through the proxy.
    proxied_port: int | None = None
    proxied_address: str | None = None
    # How long a dead worker's partitions wait before they move, for both group protocols
    # (the broker's, for KIP-848 groups; the clients', through Settings, for classic ones).
    session_timeout_ms: int = 10_000
    # SASL_SSL, ACLs per role, Redis with a password behind TLS (localcluster/secure.py).
    secure: bool = False
    # More than one: a replicated cluster, Redis with replicas and Sentinel (replicated.py).
    brokers: int = 1

    def __post_init__(self) -> None:
        if self.files.credentials.exists():
            self.secure = True  # a home once secured stays secured
        recorded = self.root / "brokers"
        if recorded.exists():  # a home keeps the shape it was first started with
            self.brokers = int(recorded.read_text())
        if self.brokers < 1:
            raise ClusterError("a cluster needs at least one broker")
        if self.secure and self.replicated:
            raise ClusterError("a secured cluster has one broker: --secure and --brokers "
                               "cannot be combined")

    @property
    def files(self) -> secure_mod.SecureFiles:
        return secure_mod.SecureFiles(self.root / "secure")

    @property
    def root(self) -> Path:
        return self.home / "cluster"

    @property
    def replicated(self) -> bool:
        return self.brokers > 1

    @property
    def kafka_nodes(self) -> list[replicated_mod.Node]:
        return replicated_mod.kafka_nodes(self.brokers, self.kafka_port, self.controller_port)

    @property
    def redis_nodes(self) -> list[replicated_mod.Node]:
        """Redis's data nodes, then its Sentinels (none for one broker)."""
        return replicated_mod.redis_nodes(self.replicated, self.redis_port, self.sentinel_port)

    @property
    def nodes(self) -> list[replicated_mod.Node]:
        return self.redis_nodes + self.kafka_nodes

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{n.port}" for n in self.kafka_nodes)

    @property
    def redis_url(self) -> str:
        if self.secure:
            return secure_mod.redis_url(self.files, self.host, self.redis_port)
        if self.replicated:
            return replicated_mod.sentinel_url(self.host, self.redis_nodes)
        return f"redis://{self.host}:{self.redis_port}/0"

    def settings(self, principal: str = "source") -> Settings:
        """The cluster's settings, for a client acting as `principal` when it is secured."""
        extra = secure_mod.client_config(self.files, principal) if self.secure else {}
        return Settings(self.bootstrap, self.redis_url, home=self.home, local=True,
                        session_timeout_ms=self.session_timeout_ms, kafka_extra=extra)

    def pid(self, name: str) -> int | None:
        """The pid of a node (see `nodes`), if it runs."""
        return read_pid(self.root / f"{name}.pid")

    def kafka_data(self, node: replicated_mod.Node) -> Path:
        return self.root / ("kafka-data" if node.name == "kafka" else f"{node.name}-data")

    def running(self) -> bool:
        return all(self.pid(node.name) is not None for node in self.nodes)

    def start(self, timeout: float = 90.0) -> Settings:
        """Start whatever is not running, wait until all answer, record the addresses.
        Also makes the local cluster's spec signing key, once (shared/signing.py)."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "brokers").write_text(str(self.brokers))
        signing.ensure_key_file(self.home)
        if self.secure:
            secure_mod.make_material(self.files.directory, self.host)
        for node in self.nodes:  # Redis first: the Sentinels look for the primary at once
            if self.pid(node.name) is None:
                self._start_node(node)
        self._wait_ready(self.settings(secure_mod.ADMIN) if self.secure else self.settings(),
                         timeout)
        if self.secure:
            self._grant()
        settings = self.settings()
        write_local_cluster(self.home, self.bootstrap, self.redis_url,
                            kafka=settings.kafka_extra,
                            principals=(self.files.passwords() if self.secure else {}))
        return settings

    def _grant(self) -> None:
        """As the admin: the fixed topics, and each role's ACLs (secure.ROLE_ACLS)."""
        admin = kafka.admin(self.settings(secure_mod.ADMIN))
        kafka.ensure_topics(admin, kafka.fixed_topics(self.settings()),
                            replication_factor=self.settings().replication_factor)
        bindings = [b for role in secure_mod.ROLE_ACLS for b in secure_mod.acl_bindings(role)]
        for future in admin.create_acls(bindings).values():
            future.result()
        self.wait_granted()

    def wait_granted(self, timeout: float = 30.0) -> None:
        """Wait until every role sees the fixed topics. An ACL is acknowledged once the
        controller has it, and the broker's authorizer applies it a moment later: a client
        started in between was refused (the source took a topic it could not describe for
        a missing one, and tried to create it: TOPIC_AUTHORIZATION_FAILED)."""
        clients = {role: kafka.admin(self.settings(role), quiet=True)
                   for role in secure_mod.PRINCIPALS}

        def granted() -> None:
            for role, client in clients.items():
                metadata = client.list_topics(timeout=5).topics
                refused = [t for t in secure_mod.FIXED
                           if t not in metadata or metadata[t].error is not None]
                if refused:
                    raise ConnectionFailed(f"{role} cannot describe {', '.join(refused)} yet")

        retry.until_deadline("ACLs in effect", granted, seconds=timeout,
                             on=(ConnectionFailed, KafkaException))

    def _require_free(self, name: str, port: int, env: str) -> None:
        """Refuse to start on a port something else holds: we would talk to a stranger."""
        if self.netns:
            return  # a fresh namespace of our own: nothing else can be there
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, port))
            except OSError as exc:
                raise ClusterError(f"cannot start local {name}: {self.host}:{port} is in use "
                                   f"by another process ({exc.strerror}); stop it, or choose "
                                   f"another port with {env}") from exc

    def _spawn(self, name: str, argv: list[str]) -> None:
        logs = self.root / f"{name}.log"
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        with open(logs, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        write_pid(self.root / f"{name}.pid", proc.pid)
        log.info("started", process=name, pid=proc.pid, log=str(logs))

    def _start_node(self, node: replicated_mod.Node) -> None:
        if node.kind == "kafka":
            self._start_kafka(node)
        elif node.kind == "redis":
            self._start_redis(node)
        else:
            self._start_sentinel(node)

    def _start_redis(self, node: replicated_mod.Node) -> None:
        self._require_free("Redis", node.port, "MAPREDUCE_REDIS_PORT")
        data = self.root / node.name
        data.mkdir(exist_ok=True)
        conf = self.root / f"{node.name}.conf"
        if self.secure:
            conf.write_text(secure_mod.redis_conf(self.files, self.host, node.port, data))
        else:
            text = REDIS_CONF.format(host=self.host, port=node.port, data=data)
            if self.replicated:
                text += replicated_mod.redis_replica_lines(
                    self.host, self.redis_port, node.port == self.redis_port)
            # a node that ran before keeps what Sentinel made it (a replica stays one)
            if not (conf.exists() and self.replicated):
                conf.write_text(text)
        self._spawn(node.name, [debian_program("redis-server"), str(conf)])

    def _start_sentinel(self, node: replicated_mod.Node) -> None:
        self._require_free("Redis Sentinel", node.port, "MAPREDUCE_SENTINEL_PORT")
        data = self.root / node.name
        data.mkdir(exist_ok=True)
        conf = self.root / f"{node.name}.conf"
        if not conf.exists():  # Sentinel keeps what it learns in its file: keep the file
            conf.write_text(replicated_mod.sentinel_conf(self.host, node, self.redis_port, data))
        self._spawn(node.name, [debian_program("redis-sentinel"), str(conf)])

    def _start_kafka(self, node: replicated_mod.Node) -> None:
        self._require_free("Kafka", node.port, "MAPREDUCE_KAFKA_PORT")
        self._require_free("Kafka controller", node.controller_port, "MAPREDUCE_CONTROLLER_PORT")
        libs = ensure_kafka_jars()
        java = shutil.which("java")
        if java is None:
            raise ClusterError("java not found: Kafka needs a Java 17 runtime "
                               "(apt-get install openjdk-17-jre-headless)")
        data = self.kafka_data(node)
        props = self.root / ("server.properties" if node.name == "kafka"
                             else f"{node.name}.properties")
        proxied = self.proxied_port is not None and self.proxied_address is not None
        if self.secure:
            props.write_text(secure_mod.server_properties(
                self.files, self.host, node.port, node.controller_port, data,
                self.session_timeout_ms))
        else:
            text = SERVER_PROPERTIES.format(
                host=self.host, port=node.port, controller_port=node.controller_port,
                data=data, session_timeout_ms=self.session_timeout_ms,
                proxied_listener=(f",PROXIED://{self.host}:{self.proxied_port}" if proxied
                                  else ""),
                proxied_advertised=f",PROXIED://{self.proxied_address}" if proxied else "")
            if self.replicated:  # later lines win: identity, quorum and replication
                text = text.replace(
                    f"controller.quorum.bootstrap.servers={self.host}:{node.controller_port}\n",
                    "") + replicated_mod.kafka_properties(self.host, node, self.kafka_nodes)
            props.write_text(text)
        classpath = f"{libs}/*"
        log4j = f"-Dlog4j2.configurationFile={HERE / 'log4j2.properties'}"
        if not (data / "meta.properties").exists():
            # one broker: a standalone dynamic quorum; several: the static voters above
            quorum = ["--standalone"] if not self.replicated else []
            result = subprocess.run(
                [java, "-cp", classpath, log4j, "kafka.tools.StorageTool", "format",
                 *quorum, "-t", self._cluster_id(), "-c", str(props),
                 *(secure_mod.scram_arguments(self.files) if self.secure else [])],
                capture_output=True, text=True)
            if result.returncode != 0:
                raise ClusterError(f"formatting Kafka storage failed: {result.stderr[-2000:]}")
        self._spawn(node.name, [java, f"-Xmx{KAFKA_HEAP}", f"-Xms{KAFKA_HEAP}",
                                "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                                "-Djava.awt.headless=true", *KAFKA_JVM_OPTS, log4j, "-cp",
                                classpath, "kafka.Kafka", str(props)])

    def _cluster_id(self) -> str:
        """One id for all of this cluster's brokers, kept beside their data."""
        path = self.root / "cluster-id"
        if not path.exists():
            path.write_text(_cluster_id())
        return path.read_text().strip()

    def _wait_ready(self, settings: Settings, timeout: float) -> None:
        def probe() -> None:
            for node in self.nodes:
                if self.pid(node.name) is None:
                    tail = (self.root / f"{node.name}.log").read_text()[-1500:]
                    raise ClusterError(f"{node.name} exited during start-up; its log "
                                       f"ends:\n{tail}")
            Store(settings.redis_url).check_reachable()
            kafka.check_reachable(settings, timeout=3, quiet=True)
            if self.replicated:
                up = len(kafka.admin(settings, quiet=True).list_topics(timeout=3).brokers)
                if up < self.brokers:
                    raise ConnectionFailed(f"{up} of {self.brokers} brokers up")

        try:
            retry.until_deadline("local cluster start", probe, seconds=timeout,
                                 on=(ConnectionFailed, KafkaException))
        except ConnectionFailed as exc:
            raise ClusterError(f"local cluster did not become ready in {timeout}s: {exc}") from exc

    def stop(self) -> None:
        """The brokers first, all at once (one by one, the last would wait for a quorum
        that is gone), then Redis and its Sentinels."""
        for group, grace in ((self.kafka_nodes, 30.0), (self.redis_nodes, 10.0)):
            running = [(node, self.pid(node.name)) for node in group]
            for node, pid in running:
                if pid is not None:
                    log.info("stopping", process=node.name, pid=pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
            for node, pid in running:
                if pid is not None:
                    terminate(pid, grace)
                (self.root / f"{node.name}.pid").unlink(missing_ok=True)
        (self.home / "cluster.json").unlink(missing_ok=True)
