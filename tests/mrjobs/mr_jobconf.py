"""What a task finds in its job configuration (jobconf_from_env), as output."""

import os

from mrjob.compat import jobconf_from_env
from mrjob.job import MRJob


class MRJobconf(MRJob):
    FILES = ["weights.txt"]
    JOBCONF = {"my.setting": "42"}

    def mapper_init(self):
        self.seen = {name: jobconf_from_env(name) for name in (
            "mapreduce.job.id", "mapreduce.task.ismap", "mapreduce.map.input.file",
            "map.input.file", "mapreduce.map.input.start", "mapreduce.map.input.length",
            "mapreduce.job.local.dir", "mapreduce.job.cache.local.files", "my.setting")}
        self.seen["cwd files"] = sorted(os.listdir("."))

    def mapper(self, _, line):
        return ()

    def mapper_final(self):
        yield "map", self.seen

    def reducer(self, key, values):
        yield key, list(values)
        yield "reduce", {"ismap": jobconf_from_env("mapreduce.task.ismap"),
                         "input": jobconf_from_env("mapreduce.map.input.file")}
