"""The `backend` fixture: the same contract tests against every TaskRepository/StatsStore.

Each test gets a fresh store: the in-memory adapters, the DynamoDB adapters on moto, or the
DynamoDB adapters on the session's DynamoDB Local engine (a new, uniquely named table).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from taskcore.model import Priority, Task, TaskId, UserId
from taskcore.ports import StatsStore, TaskRepository
from taskcore.testing import FixedClock, InMemoryStatsStore, InMemoryTaskRepository, SequentialIds

BACKENDS = ["memory", "moto", "dynamodb_local"]
REGION = "us-east-1"
# Microseconds on purpose: a store that truncates timestamps breaks round trips.
START = datetime(2030, 1, 1, 9, 0, 0, 123456, tzinfo=UTC)


@attrs.frozen(kw_only=True)
class Backend:
    """One fresh store, the clock its repository reads and the ids tests hand out."""

    name: str
    repo: TaskRepository
    stats: StatsStore
    clock: FixedClock
    ids: SequentialIds

    def new_task(
        self,
        owner: str,
        *,
        title: str | None = None,
        priority: Priority = Priority.MEDIUM,
        tick: timedelta = timedelta(seconds=1),
        **fields: Any,
    ) -> Task:
        """A new task with the next (increasing) id, created at the clock's next tick."""
        now = self.clock.advance(tick)
        task_id = TaskId(self.ids.new_id())
        return Task.new(
            id=task_id,
            owner_id=UserId(owner),
            title=title if title is not None else f"task {task_id[-4:]}",
            priority=priority,
            now=now,
            **fields,
        )


def unique_table_name() -> str:
    return f"contract-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and no endpoint overrides or proxies: nothing can reach real AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Backend]:
    clock = FixedClock(START)
    ids = SequentialIds()
    kind: str = request.param
    if kind == "memory":
        yield Backend(
            name=kind,
            repo=InMemoryTaskRepository(clock=clock),
            stats=InMemoryStatsStore(),
            clock=clock,
            ids=ids,
        )
        return

    from taskcore.adapters.dynamodb import DynamoStatsStore, DynamoTaskRepository, create_table

    table = unique_table_name()
    if kind == "moto":
        import boto3
        import moto

        with moto.mock_aws():
            create_table(boto3.client("dynamodb", region_name=REGION), table)
            yield Backend(
                name=kind,
                repo=DynamoTaskRepository(table, endpoint_url=None, region=REGION, clock=clock),
                stats=DynamoStatsStore(table, endpoint_url=None, region=REGION),
                clock=clock,
                ids=ids,
            )
        return

    assert kind == "dynamodb_local", kind
    server = request.getfixturevalue("dynamodb_local")
    client = server.client()
    create_table(client, table)
    try:
        yield Backend(
            name=kind,
            repo=DynamoTaskRepository(
                table, endpoint_url=server.endpoint_url, region=REGION, clock=clock
            ),
            stats=DynamoStatsStore(table, endpoint_url=server.endpoint_url, region=REGION),
            clock=clock,
            ids=ids,
        )
    finally:
        client.delete_table(TableName=table)
