"""Protocols chosen on the command line (`--input-protocol NAME` and the like, each a
class of mrjob.protocol): the job reads records, counts by a key made of several types,
and writes what it found."""

import mrjob.protocol
from mrjob.job import MRJob


def protocol(name):
    return getattr(mrjob.protocol, name)()


class MRProtocols(MRJob):
    def configure_args(self):
        super().configure_args()
        self.add_passthru_arg("--input-protocol", default="RawValueProtocol")
        self.add_passthru_arg("--internal-protocol", default="JSONProtocol")
        self.add_passthru_arg("--output-protocol", default="JSONProtocol")

    def input_protocol(self):
        return protocol(self.options.input_protocol)

    def internal_protocol(self):
        return protocol(self.options.internal_protocol)

    def output_protocol(self):
        return protocol(self.options.output_protocol)

    def mapper(self, key, value):
        text = value if isinstance(value, str) else repr(value)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        words = text.split()
        yield f"words:{min(len(words), 5)}", 1
        if words:
            yield "first:" + words[0][:2].lower(), len(text)

    def reducer(self, key, values):
        values = list(values)
        yield key, sum(values)


if __name__ == "__main__":
    MRProtocols.run()
