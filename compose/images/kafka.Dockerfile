# An Apache Kafka 4 broker (KRaft) built from Maven Central's jars on Debian's Java 17, as
# the local cluster runs it. It reads the same KAFKA_* environment as the official
# apache/kafka image (compose/images/kafka-entrypoint.sh). BASE: see worker.Dockerfile.
ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BASE} AS jars
ENV DEBIAN_FRONTEND=noninteractive
COPY compose/images/extra-ca/ /tmp/extra-ca/
COPY compose/images/trust-extra-ca.sh /tmp/
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends maven openjdk-17-jre-headless ca-certificates \
 && sh /tmp/trust-extra-ca.sh
COPY services/localcluster/pom.xml /build/pom.xml
RUN KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' /build/pom.xml) \
 && mvn -q -B -f /build/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
        -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory=/opt/kafka/libs

FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
COPY --from=jars /opt/kafka/libs /opt/kafka/libs
COPY services/localcluster/log4j2.properties /opt/kafka/config/log4j2.properties
COPY compose/images/kafka-entrypoint.sh /opt/kafka/entrypoint.sh
EXPOSE 9092 9093
ENTRYPOINT ["/opt/kafka/entrypoint.sh"]
