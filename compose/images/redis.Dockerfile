# Redis and Redis Sentinel from Debian's packages. The compose files pass every setting on
# the command line; data lives in /data. BASE: see worker.Dockerfile.
ARG BASE=docker.io/library/debian:bookworm-slim
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends redis-server redis-sentinel \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data
WORKDIR /data
EXPOSE 6379 26379
CMD ["redis-server", "--protected-mode", "no", "--dir", "/data"]
