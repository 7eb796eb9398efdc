"""`python -m mapreduce_kafka`: the `mapreduce` command."""

from mapreduce_kafka.services.cli import main

if __name__ == "__main__":
    main()
