"""The test suite. Helpers it shares with the benchmarks are in
mapreduce_kafka.services.testing; what is here is the suite's own."""

from pathlib import Path

# The checkout the suite runs from: its compose files, README and example paths.
REPO = Path(__file__).resolve().parents[1]
