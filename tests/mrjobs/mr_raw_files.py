"""mapper_raw (each input file whole, by its path) and a map-only last step with a value
protocol out."""

import os

from mrjob.job import MRJob
from mrjob.protocol import JSONValueProtocol
from mrjob.step import MRStep


class MRRawFiles(MRJob):
    OUTPUT_PROTOCOL = JSONValueProtocol

    def steps(self):
        return [MRStep(mapper_raw=self.whole_file, reducer=self.longest),
                MRStep(mapper=self.describe)]

    def whole_file(self, path, uri):
        assert uri.endswith(path)
        with open(path, "rb") as f:
            lines = f.read().splitlines()
        self.increment_counter("files", "read")
        yield os.path.basename(path), max(len(line) for line in lines)
        yield "all", len(lines)

    def longest(self, name, values):
        yield name, max(values)

    def describe(self, name, value):
        yield None, {"name": name, "value": value}


if __name__ == "__main__":
    MRRawFiles.run()
