"""Our moto launcher makes concurrent conditional writes atomic, as DynamoDB's are."""

from __future__ import annotations

import threading
from typing import Any

from emulator.resources import LocalResources
from testbed.aws import MotoEndpoint


def _race(clients: list[Any], table: str, job_id: str) -> list[int]:
    """All clients try to take one item at the same moment; returns who succeeded."""
    key = {"job_id": {"S": job_id}}
    clients[0].put_item(TableName=table, Item=key)
    winners: list[int] = []
    barrier = threading.Barrier(len(clients))

    def take(index: int) -> None:
        barrier.wait()
        try:
            clients[index].update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET holder = :me",
                ConditionExpression="attribute_not_exists(holder)",
                ExpressionAttributeValues={":me": {"S": str(index)}},
            )
        except clients[index].exceptions.ConditionalCheckFailedException:
            return
        winners.append(index)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return winners


def test_concurrent_conditional_updates_have_exactly_one_winner(
    moto: MotoEndpoint, resources: LocalResources
) -> None:
    clients = [moto.client("dynamodb") for _ in range(4)]
    for trial in range(40):
        winners = _race(clients, resources.table, f"job-{trial}")
        assert len(winners) == 1, f"trial {trial}: {winners} all took the item"
