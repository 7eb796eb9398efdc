#!/bin/sh
# Starts one KRaft node from the environment, as the official apache/kafka image does:
# each KAFKA_SOME_NAME=value becomes some.name=value in server.properties (KAFKA_HEAP_OPTS
# and KAFKA_JVM_OPTS are the JVM's). The storage is formatted once, with CLUSTER_ID.
set -eu
CONFIG=/opt/kafka/config/server.properties
LIBS=/opt/kafka/libs
: "${CLUSTER_ID:=5L6g3nShT-eMCtK--X86sw}"
: "${KAFKA_LOG_DIRS:=/var/lib/kafka/data}"
: "${KAFKA_HEAP_OPTS:=-Xmx512m -Xms512m}"
# C1 only: the broker's compiler threads otherwise take half of a small machine's CPU.
: "${KAFKA_JVM_OPTS:=-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1}"
export KAFKA_LOG_DIRS

env | sort | while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS|KAFKA_JVM_OPTS) ;;
    KAFKA_*) echo "$(echo "${name#KAFKA_}" | tr 'A-Z_' 'a-z.')=$value" ;;
  esac
done > "$CONFIG"

LOG4J="-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties"
if [ ! -f "$KAFKA_LOG_DIRS/meta.properties" ]; then
  java -cp "$LIBS/*" $LOG4J kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$CONFIG"
fi
echo "starting Kafka node ${KAFKA_NODE_ID:-?} (cluster $CLUSTER_ID)"
# shellcheck disable=SC2086  # the option strings are lists of words
exec java $KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS -Djava.awt.headless=true $LOG4J \
  -cp "$LIBS/*" kafka.Kafka "$CONFIG"
