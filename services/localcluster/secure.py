"""The secured local cluster (`mapreduce up --secure`): Kafka with a SASL_SSL listener
(SCRAM-SHA-512), KRaft's StandardAuthorizer with no access unless an ACL grants it, one
principal per role holding exactly the ACLs in ROLE_ACLS, and Redis with a password behind
TLS. Certificates are made here with `cryptography`: a CA, and a broker certificate for the
cluster's address.

Everything lives in HOME/cluster/secure: ca.pem, the broker's and Redis's keys and
certificates, and credentials.json (mode 0600) with each principal's password. The local
cluster's record (HOME/cluster.json) carries the `source` principal's client settings, and
the supervisor starts each worker with its role's principal.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"  # the broker's own principal (and the one that creates topics and ACLs)
PRINCIPALS = ("source", "dispatcher", "mapper", "shuffler", "reducer", "sink")

# What each role may do: (resource type, name, pattern, operations). "prefixed" covers every
# pipeline's MAP---<id> / REDUCE---<id> topic, and the groups mappers.<id> / reducers.<id>
# (group-per-pipeline) and mappers-<strategy> / reducers-<strategy> (the shared ones).
# Every role also describes the fixed topics and reads PIPELINES (all but the source).
FIXED = ("PIPELINES", "SOURCE", "SHUFFLE", "OUTPUT", "DEADLETTER")
# Consumers that read by assignment still carry a group id, and librdkafka looks up the
# group's coordinator: every role may use the groups that hold no shared offsets (each
# worker's view of PIPELINES, watermark and range readers).
PRIVATE_GROUPS = ("pipeline-view-", "mapreduce-")
ROLE_ACLS: dict[str, list[tuple[str, str, str, tuple[str, ...]]]] = {
    "source": [("topic", "PIPELINES", "literal", ("WRITE",)),
               ("topic", "SOURCE", "literal", ("WRITE",))],
    "dispatcher": [("topic", "SOURCE", "literal", ("READ",)),
                   ("group", "dispatchers", "literal", ("READ",)),
                   ("topic", "PIPELINES", "literal", ("READ", "WRITE")),
                   ("topic", "MAP---", "prefixed", ("CREATE", "DELETE", "WRITE", "DESCRIBE")),
                   ("topic", "REDUCE---", "prefixed", ("CREATE", "DELETE", "WRITE",
                                                       "DESCRIBE")),
                   ("topic", "SHUFFLE", "literal", ("WRITE",)),
                   ("topic", "OUTPUT", "literal", ("WRITE",))],
    "mapper": [("topic", "MAP---", "prefixed", ("READ",)),
               ("group", "mappers", "prefixed", ("READ",)),
               ("topic", "PIPELINES", "literal", ("READ",)),
               ("topic", "SHUFFLE", "literal", ("WRITE",)),
               ("topic", "DEADLETTER", "literal", ("WRITE",))],
    "shuffler": [("topic", "SHUFFLE", "literal", ("READ",)),
                 ("group", "shufflers", "literal", ("READ",)),
                 ("topic", "PIPELINES", "literal", ("READ",)),
                 ("topic", "REDUCE---", "prefixed", ("WRITE",))],
    "reducer": [("topic", "REDUCE---", "prefixed", ("READ",)),
                ("group", "reducers", "prefixed", ("READ",)),
                ("topic", "PIPELINES", "literal", ("READ",)),
                ("topic", "OUTPUT", "literal", ("WRITE",)),
                ("topic", "DEADLETTER", "literal", ("WRITE",))],
    # The sink writes nothing of ours but a kafka:TOPIC output (granted by the operator,
    # per topic): DEADLETTER's WRITE lets its idempotent producer get an id (KIP-679).
    "sink": [("topic", "OUTPUT", "literal", ("READ",)),
             ("group", "sinks", "literal", ("READ",)),
             ("topic", "PIPELINES", "literal", ("READ",)),
             ("topic", "DEADLETTER", "literal", ("WRITE",))],
}


@dataclass(frozen=True)
class SecureFiles:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def keystore(self) -> Path:  # the broker's key and certificate chain, PEM
        return self.directory / "broker-keystore.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server-cert.pem"

    @property
    def credentials(self) -> Path:
        return self.directory / "credentials.json"

    def passwords(self) -> dict[str, str]:
        return json.loads(self.credentials.read_text())  # type: ignore[no-any-return]


def make_material(directory: Path, host: str) -> SecureFiles:
    """CA, server certificate for `host`, and a password per principal; made once."""
    files = SecureFiles(directory)
    if files.credentials.exists():
        return files
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mapreduce local CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_pem = cert.public_bytes(pem)
    _private(files.ca, ca_cert.public_bytes(pem))
    _private(files.server_key, key_pem)
    _private(files.server_cert, cert_pem)
    _private(files.keystore, key_pem + cert_pem)
    passwords = {name: secrets.token_urlsafe(24) for name in (ADMIN, *PRINCIPALS)}
    _private(files.credentials, json.dumps(passwords).encode())
    return files


def _private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def jaas(module: str, user: str, password: str, extra: str = "") -> str:
    return f'{module} required username="{user}" password="{password}"{extra};'


def server_properties(files: SecureFiles, host: str, port: int, controller_port: int,
                      data: Path, session_timeout_ms: int) -> str:
    """The broker's settings: SASL_SSL for clients and between brokers (SCRAM), SASL/PLAIN
    on the controller listener (loopback; SCRAM credentials live in the metadata the
    controller serves, so it cannot authenticate with them), the StandardAuthorizer."""
    admin = files.passwords()[ADMIN]
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.bootstrap.servers={host}:{controller_port}",
        f"listeners=SASL_SSL://{host}:{port},CONTROLLER://{host}:{controller_port}",
        f"advertised.listeners=SASL_SSL://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name=SASL_SSL",
        f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
        "sasl.mechanism.controller.protocol=PLAIN",
        f"listener.name.sasl_ssl.sasl.enabled.mechanisms={MECHANISM}",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas(scram, ADMIN, admin)}",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "listener.name.controller.plain.sasl.jaas.config="
        + jaas(plain, ADMIN, admin, f' user_{ADMIN}="{admin}"'),
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={files.keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={files.ca}",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{ADMIN}",
        f"log.dirs={data}",
        "num.partitions=1",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=8",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        f"group.consumer.session.timeout.ms={session_timeout_ms}",
        "group.consumer.min.session.timeout.ms=6000",
        "group.consumer.heartbeat.interval.ms=250",
        "group.consumer.min.heartbeat.interval.ms=250",
        "auto.create.topics.enable=false",
        "delete.topic.enable=true",
        "num.network.threads=2",
        "num.io.threads=4",
        "",
    ])


def scram_arguments(files: SecureFiles) -> list[str]:
    """kafka-storage format arguments that create every principal's SCRAM credentials."""
    arguments = []
    for name, password in files.passwords().items():
        arguments += ["--add-scram", f"{MECHANISM}=[name={name},password={password}]"]
    return arguments


def client_config(files: SecureFiles, principal: str) -> dict[str, str]:
    """librdkafka settings of a principal (what MAPREDUCE_KAFKA_* would carry)."""
    return {"security.protocol": "SASL_SSL", "sasl.mechanisms": MECHANISM,
            "sasl.username": principal, "sasl.password": files.passwords()[principal],
            "ssl.ca.location": str(files.ca)}


def redis_conf(files: SecureFiles, host: str, port: int, data: Path) -> str:
    """Redis behind TLS (no plain port) with a password; durable as the plain one."""
    password = files.passwords()[ADMIN]
    return "\n".join([
        f"bind {host}", "port 0", f"tls-port {port}", f"dir {data}", "daemonize no",
        f"tls-cert-file {files.server_cert}", f"tls-key-file {files.server_key}",
        f"tls-ca-cert-file {files.ca}", "tls-auth-clients no",
        f"requirepass {password}", "appendonly yes", "appendfsync always", 'save ""', ""])


def redis_url(files: SecureFiles, host: str, port: int) -> str:
    return (f"rediss://:{files.passwords()[ADMIN]}@{host}:{port}/0"
            f"?ssl_ca_certs={files.ca}")


def acl_bindings(role: str) -> list[Any]:
    """The AclBindings that grant a role's principal exactly what ROLE_ACLS says,
    DESCRIBE on the fixed topics and the private groups."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    principal = f"User:{role}"
    bindings = []
    grants = [*ROLE_ACLS[role], *(("topic", t, "literal", ("DESCRIBE",)) for t in FIXED),
              *(("group", g, "prefixed", ("READ",)) for g in PRIVATE_GROUPS)]
    for kind, name, pattern, operations in grants:
        for operation in operations:
            bindings.append(AclBinding(
                ResourceType.TOPIC if kind == "topic" else ResourceType.GROUP, name,
                ResourcePatternType.PREFIXED if pattern == "prefixed"
                else ResourcePatternType.LITERAL,
                principal, "*", AclOperation[operation], AclPermissionType.ALLOW))
    return bindings
