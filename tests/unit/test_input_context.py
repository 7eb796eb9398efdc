"""input_context(): where the record being mapped came from, as the framework tells it."""

from __future__ import annotations

import functools

from mapreduce_kafka import input_context
from mapreduce_kafka.shared import task_context
from mapreduce_kafka.shared.inputs import values_frame
from mapreduce_kafka.shared.task_context import FileOrigin, InputContext, TopicOrigin
from tests.unit.specs import spec_from_functions

spec_of = functools.partial(spec_from_functions, 1)


def where(record):
    context = input_context()
    yield record, [context.path, context.offset]


def test_each_record_of_a_file_frame_knows_its_path_and_byte_offset():
    frame = b"first\nsecond line\n\nthird\n"
    with task_context.running({}) as task:
        task.reading(frame, FileOrigin("/data/in.txt", 1000, "text"))
        pairs = spec_of(mapper=where).map_pairs(frame, lambda d: d.decode().splitlines())
    assert pairs == [["first", ["/data/in.txt", 1000]], ["second line", ["/data/in.txt", 1006]],
                     ["", ["/data/in.txt", 1018]], ["third", ["/data/in.txt", 1019]]]


def test_jsonl_offsets_skip_blank_lines_as_decoding_does():
    starts = task_context.record_starts(b'{"a":1}\n\n{"b":2}\n', "jsonl")
    assert starts == [0, 9]
    assert task_context.record_starts(b"x\n\ny\n", "text") == [0, 2, 3]


def test_a_batch_form_sees_where_its_frame_starts():
    seen = []

    def map_batch(records):
        seen.append(input_context())
        return [(r, 1) for r in records]

    with task_context.running({}) as task:
        task.reading(b"a\nb\n", FileOrigin("/in", 50, "text"))
        spec_of(map_batch=map_batch).map_pairs(b"a\nb\n", lambda d: d.decode().splitlines())
    assert seen == [InputContext(path="/in", offset=50)]


def test_a_topic_records_context_names_its_message():
    values = [b"one", b"two\nthree", None, b"four"]
    frame, sources = values_frame(values, "text", lambda *bad: None)
    assert frame == b"one\ntwo\nthree\nfour\n" and sources == [0, 1, 1, 3]
    messages = [(2, 10, b"k0", 111), (2, 11, None, 112), (2, 12, b"k2", 113),
                (2, 13, b"k3", None)]
    origin = TopicOrigin("events", tuple(messages[i] for i in sources))
    with task_context.running({}) as task:
        task.reading(frame, origin)
        task.record = 2
        assert input_context() == InputContext(topic="events", partition=2, kafka_offset=11,
                                               timestamp=112)
        task.record = 3
        assert input_context().key == b"k3" and input_context().timestamp is None


def test_a_later_steps_records_come_from_nowhere():
    with task_context.running({}) as task:
        task.reading(b"[1,2]\n", None)
        assert input_context() == InputContext()
