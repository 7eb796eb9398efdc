"""Kafka's jars, fetched once from Maven Central with Maven (pom.xml beside this file) into
the download cache, where the broker's classpath finds them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import structlog

from mapreduce_kafka.shared.errors import ClusterError

log = structlog.get_logger("cluster")

HERE = Path(__file__).parent
KAFKA_VERSION = "4.1.1"


def cache_dir() -> Path:
    return Path(os.environ.get("MAPREDUCE_CACHE") or Path.home() / ".cache" / "mapreduce")


def kafka_libs() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"


def ensure_kafka_jars() -> Path:
    """Fetch the broker's jars from Maven Central once (about 45 MB)."""
    libs = kafka_libs()
    if any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ClusterError("Maven (mvn) is needed once to fetch the Kafka jars from Maven "
                           "Central: install it (apt-get install maven) or run `make install`")
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = libs.parent / f".libs-{os.getpid()}"
    log.info("fetching Kafka jars from Maven Central", version=KAFKA_VERSION, into=str(libs))
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(HERE / "pom.xml"), "dependency:copy-dependencies",
         f"-Dkafka.version={KAFKA_VERSION}", f"-DoutputDirectory={staging}",
         "-DincludeScope=runtime"], capture_output=True, text=True)
    if result.returncode != 0:
        raise ClusterError(f"mvn could not fetch the Kafka jars:\n{result.stdout[-2000:]}"
                           f"{result.stderr[-2000:]}")
    os.replace(staging, libs)
    return libs
