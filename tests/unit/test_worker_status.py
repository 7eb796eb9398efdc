from mapreduce_kafka.services.status.worker_status import worker_rows


def test_rows_mark_silence_by_redis_time_and_parse_fields():
    workers = [
        {"id": "m-2", "host": "h2", "role": "mapper", "pid": "7", "last_seen": "100.0",
         "partitions": "MAP---a[0],MAP---a[1]", "lag": "42"},
        {"id": "s-1", "host": "h1", "role": "shuffler", "pid": "8", "last_seen": "85.0"},
        {"id": "m-1", "host": "h2", "role": "mapper", "pid": "9", "last_seen": "111.0"},
    ]
    rows = worker_rows(workers, now=110.0, silent_after=10)
    assert [r["id"] for r in rows] == ["s-1", "m-1", "m-2"]  # by host, role, id
    by_id = {r["id"]: r for r in rows}
    assert by_id["m-2"]["partitions"] == ["MAP---a[0]", "MAP---a[1]"]
    assert by_id["m-2"]["lag"] == 42 and by_id["s-1"]["lag"] is None
    assert by_id["s-1"]["silent"] and by_id["s-1"]["last_seen_s"] == 25.0
    assert not by_id["m-2"]["silent"]  # exactly 10 s: not yet
    assert by_id["m-1"]["last_seen_s"] == 0.0  # a clock a little ahead is not negative age
