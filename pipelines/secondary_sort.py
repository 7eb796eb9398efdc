"""Secondary sort: each user's actions in time order, from events in any order
({"user", "time", "action"} records). The mapper keys by user with [time, action] values;
`sort_values = True` has each user's values sorted before the reducer sees them (Hadoop's
secondary sort, mrjob's SORT_VALUES), so the reducer only reads them off.

    mapreduce run pipelines/secondary_sort.py --format jsonl \\
        --input pipelines/samples/events.jsonl --output out/sessions
"""

sort_values = True


def mapper(event):
    yield event["user"], [event["time"], event["action"]]


def reducer(user, timed_actions):
    return [f"{time} {action}" for time, action in timed_actions]
