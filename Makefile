# make demo  - install everything, start a local Kafka + Redis + workers, run word count on
#              the shipped sample input and verify it against a sequential run
# make test  - the whole test suite (starts its own cluster on free ports); what CI runs
# make check - the fast loop while working: lint, unit and property tests, one small job
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= out/demo-wordcount

.PHONY: install system-packages toxiproxy demo examples test check test-faults test-crashpoints test-replicated test-multihost test-compose test-unit lint down clean base-image compose-demo compose-down

# Debian packages the project needs: Redis and its Sentinel, Java 17 and Maven (to fetch
# Kafka's jars from Maven Central), podman and debootstrap (the compose profiles run in
# containers), docker-compose (validates the compose files), Chromium and its driver (the
# dashboard's browser test). Installed only when missing.
system-packages:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-sentinel >/dev/null || missing="$$missing redis-sentinel"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v podman >/dev/null || missing="$$missing podman"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: system-packages $(STAMP)
	@$(BIN)/python -c "from mapreduce_kafka.services.localcluster.kafka_jars import ensure_kafka_jars; print('Kafka jars:', ensure_kafka_jars())"
	@$(MAKE) --no-print-directory toxiproxy

# Shopify's toxiproxy for the multi-host tests, built from its Go module when Go is here
# (without Go those tests say so and skip).
toxiproxy: $(STAMP)
	@if command -v go >/dev/null || [ -x /usr/local/go/bin/go ]; then \
	  PATH="$$PATH:/usr/local/go/bin" $(BIN)/python -c "from mapreduce_kafka.services.testing.toxiproxy import ensure_binary; print('toxiproxy:', ensure_binary())"; \
	else echo "toxiproxy: Go not installed, the toxiproxy test will be skipped"; fi

demo: install
	$(BIN)/mapreduce up
	rm -rf $(DEMO_OUT)
	$(BIN)/mapreduce run pipelines/wordcount.py --input pipelines/samples/text \
	    --output $(DEMO_OUT) --verify --top 10
	@echo "demo ok: output in $(DEMO_OUT); the cluster keeps running (stop it: make down)"

# Every shipped example (pipelines/) on the local cluster with --verify: fails on any
# difference from a sequential run.
examples: install
	$(BIN)/mapreduce up
	$(BIN)/python -m mapreduce_kafka.examples

# Everything: unit, property, integration, every strategy, the crash-point suite, the
# bounded fault suite, the replicated cluster's suite, the multi-host lab.
test: install
	$(BIN)/pytest -q --durations=25 tests

# Under 3 minutes: ruff and mypy, the pure tiers, and one word count on a real cluster
# (the tests marked smoke).
check: install lint
	$(BIN)/pytest -q tests/unit tests/property
	$(BIN)/pytest -q -m smoke tests

# The fault-injection suite alone (SIGKILL/SIGSTOP workers, broker and Redis restarts, dead
# source); long randomized runs: python -m benchmarks.faults.
test-faults: install
	$(BIN)/pytest -q -m faults tests

# A worker killed at every crash point (shared/crashpoints.py), three pipeline shapes.
test-crashpoints: install
	$(BIN)/pytest -q -m crashpoints tests

# Three brokers and Redis with Sentinel: a partition leader, the active controller and the
# Redis primary killed mid-job, a rolling restart of every broker.
test-replicated: install
	$(BIN)/pytest -q -m replicated tests

# Workers on network-namespace hosts: partitions, a one-sided cut, toxiproxy (needs root).
test-multihost: install
	$(BIN)/pytest -q -m multihost tests

# The compose profiles built and run in containers with podman: a job, four mappers with one
# killed, the replicated overlay with a broker killed (skips where containers cannot run).
test-compose: install
	$(BIN)/pytest -q -m compose tests

# The multi-topic profile in containers (podman; docs/operations.md, "Containers"): build
# the images (a Debian base made with debootstrap when missing), start Kafka, Redis and
# every role, and run word count from a `source` container, checked against a sequential run.
compose-demo: install
	compose/podman-compose up -d --build
	@echo "waiting for the workers to reach Kafka and Redis"
	@for i in $$(seq 90); do \
	  CONTAINERS_CONF=compose/containers.conf podman exec compose_dispatcher_1 mapreduce status --json 2>/dev/null | grep -q '"role": "sink"' && exit 0; \
	  sleep 2; done; \
	echo "the workers did not reach Kafka and Redis in 3 minutes (compose/podman-compose logs)" >&2; exit 1
	rm -rf compose/data/out/demo-wordcount
	compose/podman-compose run --rm source run pipelines/wordcount.py \
	    --input pipelines/samples/text --output /data/out/demo-wordcount --verify --top 10
	@echo "compose demo ok: output in compose/data/out/demo-wordcount (stop it: make compose-down)"

compose-down:
	compose/podman-compose down

# A Debian bookworm base image made with debootstrap, for machines without a registry.
base-image:
	compose/images/base-image.sh

test-unit: install
	$(BIN)/pytest -q tests/unit tests/property

lint: install
	$(BIN)/ruff check mapreduce_kafka shared services pipelines tests benchmarks
	$(BIN)/mypy mapreduce_kafka benchmarks
	@bash .ci/commit-subjects

down:
	$(BIN)/mapreduce down

clean: down
	rm -rf out $(VENV)
