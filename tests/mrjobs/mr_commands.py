"""An mrjob job of command steps, as Hadoop Streaming runs them: a mapper and a combiner
command, a Python reducer behind a pre-filter, then a Python mapper and a reducer
command that reads its whole partition."""

from mrjob.job import MRJob
from mrjob.protocol import RawProtocol
from mrjob.step import MRStep

SPLIT_WORDS = ("awk '{ for (i = 1; i <= NF; i++) { w = tolower($i); gsub(/[^a-z]/, \"\", w); "
               "if (w != \"\") print w \"\\t1\" } }'")
SUM_BY_KEY = ("awk -F '\\t' '{ if (NR > 1 && $1 != k) { print k \"\\t\" s; s = 0 } "
              "k = $1; s += $2 } END { if (NR > 0) print k \"\\t\" s }'")


class MRCommands(MRJob):
    INPUT_PROTOCOL = RawProtocol  # the first Python stage reads the mapper command's lines
    INTERNAL_PROTOCOL = RawProtocol
    OUTPUT_PROTOCOL = RawProtocol

    def steps(self):
        return [
            MRStep(mapper_cmd=SPLIT_WORDS, combiner_cmd=SUM_BY_KEY,
                   reducer_pre_filter="grep -v '^the\t'", reducer=self.total),
            MRStep(mapper=self.by_length, reducer_cmd=SUM_BY_KEY),
        ]

    def total(self, word, counts):
        self.increment_counter("words", "distinct")
        yield word, str(sum(int(count) for count in counts))

    def by_length(self, word, count):
        yield f"{len(word):02d}", count


if __name__ == "__main__":
    MRCommands.run()
