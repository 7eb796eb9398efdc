"""An mrjob job using most of what mrjob offers a Python job: two steps, every hook,
protocols of its own choosing (pickled between steps, repr out), SORT_VALUES, a shipped
file under another name (FILES), a file argument, a passthru argument, JOBCONF read back
with jobconf_from_env, the input file's name, counters and set_status."""

import os
import re

from mrjob.compat import jobconf_from_env
from mrjob.job import MRJob
from mrjob.protocol import PickleProtocol, RawValueProtocol, ReprProtocol
from mrjob.step import MRStep

WORD = re.compile(r"[a-z']+")


class MRFeatures(MRJob):
    INPUT_PROTOCOL = RawValueProtocol
    INTERNAL_PROTOCOL = PickleProtocol
    OUTPUT_PROTOCOL = ReprProtocol
    SORT_VALUES = True
    FILES = ["stop_words.txt#stop.txt"]
    JOBCONF = {"features.setting": "on"}

    def configure_args(self):
        super().configure_args()
        self.add_passthru_arg("--min-length", type=int, default=3)
        self.add_file_arg("--weights", help="word<TAB>weight lines")

    def steps(self):
        return [
            MRStep(mapper_init=self.mapper_init, mapper=self.mapper,
                   mapper_final=self.mapper_final, combiner_init=self.combiner_init,
                   combiner=self.combiner, combiner_final=self.combiner_final,
                   reducer_init=self.reducer_init, reducer=self.reducer,
                   reducer_final=self.reducer_final),
            MRStep(reducer=self.reducer_by_word),
        ]

    def mapper_init(self):
        with open("stop.txt") as f:
            self.stop = {line.strip() for line in f}
        self.weights = {}
        if self.options.weights:
            with open(self.options.weights) as f:
                for line in f:
                    word, weight = line.split("\t")
                    self.weights[word] = int(weight)
        self.lines = 0

    def mapper(self, _, line):
        self.lines += 1
        self.increment_counter("input", "lines")
        name = os.path.basename(jobconf_from_env("mapreduce.map.input.file"))
        skipped = 0
        for word in WORD.findall(line.lower()):
            if len(word) < self.options.min_length or word in self.stop:
                skipped += 1
                continue
            yield (word, name), self.weights.get(word, 1)
        if skipped:
            self.increment_counter("input", "skipped, words", skipped)  # a comma: mrjob's ';'

    def mapper_final(self):
        yield ("~lines", jobconf_from_env("features.setting")), self.lines
        self.set_status("mapped a task")

    def combiner_init(self):
        self.combined = 0

    def combiner(self, key, counts):
        self.combined += 1
        yield key, sum(counts)

    def combiner_final(self):
        assert self.combined >= 0

    def reducer_init(self):
        self.keys = 0

    def reducer(self, key, counts):
        self.keys += 1
        word, name = key
        yield word, (name, sum(counts))

    def reducer_final(self):
        self.increment_counter("reducer", "keys", self.keys)
        yield "~final", ("a reduce task ended", 1)

    def reducer_by_word(self, word, by_file):
        by_file = list(by_file)  # sorted (SORT_VALUES): by their pickled form
        if word == "~final":  # as many as there are reduce tasks: say that there were
            yield word, by_file[0][0]
        else:
            yield word, (len(by_file), by_file[0], sum(count for _, count in by_file))


if __name__ == "__main__":
    MRFeatures.run()
