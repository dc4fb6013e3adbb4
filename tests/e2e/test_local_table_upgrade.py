"""`make dev` keeps its data across runs (`.dynamodb/`): a table made from an older definition
gets the indexes the current one adds, and its tasks their keys, as a deploy would give them."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from local_platform.dynamodb_local import DynamoDBLocal
from local_platform.platform import add_missing_indexes
from taskcore.adapters.dynamodb import DynamoTaskRepository, table_definition, to_item
from taskcore.model import Task, TaskId, UserId

DUE = date(2030, 1, 5)


def older_definition(table: str) -> dict[str, Any]:
    """The definition before the reminder sweep's index."""
    definition = copy.deepcopy(table_definition(table))
    definition["GlobalSecondaryIndexes"] = [
        i for i in definition["GlobalSecondaryIndexes"] if i["IndexName"] != "ByDueDateIndex"
    ]
    definition["AttributeDefinitions"] = [
        a
        for a in definition["AttributeDefinitions"]
        if a["AttributeName"] not in ("gsi2pk", "gsi2sk")
    ]
    return definition


@pytest.fixture
def engine() -> Iterator[DynamoDBLocal]:
    """An engine of its own, as `make dev`'s holds one table: in the session's shared engine,
    among the other tests' tables, the new index's backfill did not finish in 60 s under
    `make test` (it takes a second here)."""
    with DynamoDBLocal() as server:
        yield server


def test_a_kept_table_gets_the_new_index_and_its_tasks_their_keys(
    engine: DynamoDBLocal,
) -> None:
    dynamodb_local = engine
    table = f"kept-{uuid.uuid4().hex[:8]}"
    client = dynamodb_local.client()
    client.create_table(**older_definition(table))
    task = Task.new(
        id=TaskId("01JD0000000000000000000001"),
        owner_id=UserId("alice"),
        title="kept",
        now=datetime(2030, 1, 1, 9, tzinfo=UTC),
        due_date=DUE,
    )
    raw = to_item(task).serialize()
    old_item = {k: v for k, v in raw.items() if k not in ("gsi2pk", "gsi2sk")}
    client.put_item(TableName=table, Item=old_item)
    try:
        assert add_missing_indexes(dynamodb_local.endpoint_url, table) == ["ByDueDateIndex"]
        repository = DynamoTaskRepository(table, endpoint_url=dynamodb_local.endpoint_url)
        window = {
            "reminded_from": datetime(2030, 1, 4, tzinfo=UTC),
            "until": datetime(2030, 1, 4, tzinfo=UTC),
        }
        assert list(repository.due_on(DUE, **window)) == [task]
        assert repository.get(task.owner_id, task.id) == task
        assert add_missing_indexes(dynamodb_local.endpoint_url, table) == []
    finally:
        client.delete_table(TableName=table)
