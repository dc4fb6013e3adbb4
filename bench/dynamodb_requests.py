"""DynamoDB requests per repository call, counted on the wire with a botocore event hook.

Every HTTP request botocore sends (retries included) passes `before-send`; counting there
measures what DynamoDB bills and what latency adds up from, not what the code intends.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from taskcore.adapters.dynamodb import DynamoTaskRepository, create_table
from taskcore.commands import CreateTask, TaskQuery, UpdateTask
from taskcore.cursors import CursorCodec
from taskcore.model import Status
from taskcore.services import TaskService
from taskcore.testing import (
    FixedClock,
    InMemoryAttachmentStore,
    InMemoryStatsStore,
    SequentialIds,
    principal,
)

EXPECTED = {
    "get": 1,
    "list page": 1,
    "list page (status filter)": 1,
    "create": 1,
    "create with Idempotency-Key": 1,
    "create, idempotent replay": 2,
    "update": 1,
    "delete": 1,
}


@attrs.define
class RequestCounter:
    operations: Counter[str] = attrs.field(factory=Counter)

    def __call__(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"?")
        target = target.decode() if isinstance(target, bytes) else target
        self.operations[target.rsplit(".", 1)[-1]] += 1

    @property
    def total(self) -> int:
        return sum(self.operations.values())

    @contextmanager
    def measuring(self) -> Iterator[RequestCounter]:
        self.operations.clear()
        yield self


def attach_counter(repository: DynamoTaskRepository) -> RequestCounter:
    counter = RequestCounter()
    client = repository.models.connection.client
    client.meta.events.register("before-send.dynamodb", counter)
    return counter


def count_requests(endpoint_url: str, client: Any) -> dict[str, tuple[int, str]]:
    """Run each repository call once against a fresh table; return {call: (requests, ops)}."""
    table = f"bench-{uuid.uuid4().hex[:8]}"
    create_table(client, table)
    clock = FixedClock()
    repository = DynamoTaskRepository(
        table, endpoint_url=endpoint_url, region="us-east-1", clock=clock
    )
    service = TaskService(
        tasks=repository,
        stats=InMemoryStatsStore(),
        attachments=InMemoryAttachmentStore(),
        clock=clock,
        ids=SequentialIds(),
        cursors=CursorCodec(b"bench" * 8),
    )
    alice = principal("alice")
    for n in range(30):
        service.create_task(alice, CreateTask(title=f"seed {n}"))
    task = service.create_task(alice, CreateTask(title="measured")).task
    counter = attach_counter(repository)
    results: dict[str, tuple[int, str]] = {}

    def measure(name: str, call: Callable[[], object]) -> None:
        with counter.measuring():
            call()
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(counter.operations.items()))
        results[name] = (counter.total, ops)

    measure("get", lambda: repository.get(alice.user_id, task.id))
    after = service.list_tasks(alice, TaskQuery(limit=10)).next_cursor
    measure(
        "list page",
        lambda: repository.list_owned(
            alice.user_id, status=None, priority=None, limit=10, after=None
        ),
    )
    measure(
        "list page (status filter)",
        lambda: repository.list_owned(
            alice.user_id, status=Status.PENDING, priority=None, limit=10, after=None
        ),
    )
    assert after is not None
    measure("create", lambda: service.create_task(alice, CreateTask(title="new")))
    command = CreateTask(title="once")
    measure("create with Idempotency-Key", lambda: service.create_task(alice, command, "key"))
    measure("create, idempotent replay", lambda: service.create_task(alice, command, "key"))
    edited = task.edit(clock.now(), title="edited")
    measure("update", lambda: repository.save(edited, expected_version=task.version))
    measure("delete", lambda: repository.delete(edited))
    # The use case on top: a service update is a read then a conditional write.
    other = service.create_task(alice, CreateTask(title="via service")).task
    measure(
        "service update (get + save)",
        lambda: service.update_task(alice, other.id, UpdateTask(title="changed")),
    )
    return results


def render(results: dict[str, tuple[int, str]]) -> str:
    lines = [f"{'repository call':<30} {'requests':>8} {'expected':>8}  operations"]
    for name, (count, ops) in results.items():
        expected = EXPECTED.get(name)
        lines.append(f"{name:<30} {count:>8} {'' if expected is None else expected:>8}  {ops}")
    return "\n".join(lines)
