"""The workers, their runtime, the local cluster, the command line and the user's side of
the API. Imported as `mapreduce_kafka.services` (pyproject.toml maps this folder)."""

if __name__ != "mapreduce_kafka.services":  # one name, so one copy of every module
    raise ImportError(f"import mapreduce_kafka.services, not {__name__}")
