"""A reduce-side join of two inputs: each order with its customer's name and country,
from users.jsonl ({"user_id", "name", "country"}) and orders.jsonl ({"order_id",
"user_id", "amount"}). The mapper tells the inputs apart by the file each record comes
from (`input_context().path`) and tags its values; the reducer gets a user's row and
orders together under the user's id and yields one joined pair per order (an inner join:
orders of unknown users are left out, and counted).

    mapreduce run pipelines/join.py --format jsonl --input pipelines/samples/join \\
        --output out/joined
"""

from pathlib import Path

from mapreduce_kafka import increment_counter, input_context


def mapper(record):
    if Path(input_context().path).name.startswith("users"):
        yield record["user_id"], ["user", record["name"], record["country"]]
    else:
        yield record["user_id"], ["order", record["order_id"], record["amount"]]


def reducer(user_id, tagged):
    users = [row for row in tagged if row[0] == "user"]
    orders = sorted(row[1:] for row in tagged if row[0] == "order")
    if not users:
        increment_counter("join", "orders of unknown users", len(orders))
        return
    _, name, country = users[0]
    for order_id, amount in orders:
        yield order_id, {"user_id": user_id, "name": name, "country": country,
                         "amount": amount}
