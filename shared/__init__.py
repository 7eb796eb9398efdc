"""The library every role uses: settings, Kafka and Redis clients, the wire format,
barriers, retry policies, logging, errors. No entry point. Imported as
`mapreduce_kafka.shared` (pyproject.toml maps this folder)."""

if __name__ != "mapreduce_kafka.shared":  # one name, so one copy of every module
    raise ImportError(f"import mapreduce_kafka.shared, not {__name__}")
