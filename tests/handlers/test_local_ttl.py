"""The local platform's TTL (`local_platform.ttl`) on DynamoDB Local, through the stream poller
to the stream publisher: expired items are deleted (every kind: tasks, idempotency records,
markers), each deletion reaches the stream function as AWS shapes a TTL removal, and only an
expired task means an event: `TaskArchived`, carrying the task as last stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers import stream
from local_platform.__main__ import arguments, shown_offset
from local_platform.dynamodb_local import DynamoDBLocal
from local_platform.schedules import parse_offset
from local_platform.streams import TTL_IDENTITY
from local_platform.ttl import LocalTtl, TtlRemovals
from taskcore.adapters.dynamodb import (
    DynamoEventMarkers,
    DynamoTaskRepository,
    TableClient,
    create_table,
)
from taskcore.model import Status, Task
from taskcore.ports import IdempotencyRecord
from taskcore.serialization import event_from_json
from taskcore.testing import FixedClock, InMemoryEventPublisher, build_task
from tests.handlers.stream_records import read_stream

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def completed(n: int, at: datetime) -> Task:
    task = build_task(n=n, now=at - timedelta(hours=1))
    return task.transition_to(Status.IN_PROGRESS, at).transition_to(Status.COMPLETED, at)


@pytest.fixture
def table(dynamodb_local: DynamoDBLocal) -> str:
    name = f"ttl-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_local.client(), name)
    return name


def repository(engine: DynamoDBLocal, table: str) -> DynamoTaskRepository:
    return DynamoTaskRepository(
        table, endpoint_url=engine.endpoint_url, clock=FixedClock(T0), archive_after=WEEK
    )


def ttl_at(engine: DynamoDBLocal, table: str, moment: datetime, **kwargs: Any) -> LocalTtl:
    return LocalTtl(client=engine.client(), table_name=table, clock=moment.timestamp, **kwargs)


def removals_of(seen: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [
        (r["dynamodb"]["Keys"]["sk"]["S"].split("#")[0], r.get("userIdentity"))
        for r in seen
        if r["eventName"] == "REMOVE"
    ]


def test_expired_items_are_deleted_and_stream_as_ttl_removals(
    dynamodb_local: DynamoDBLocal, table: str
) -> None:
    tasks = repository(dynamodb_local, table)
    old = completed(1, T0)
    tasks.add(build_task(n=1, now=T0 - timedelta(hours=1)))
    tasks.save(old, expected_version=1)
    tasks.add(
        build_task(n=2),
        IdempotencyRecord(
            owner_id=old.owner_id,
            key="k",
            fingerprint="f",
            task=build_task(n=2),
            expires_at=T0 + timedelta(hours=24),
        ),
    )
    recent = completed(3, T0 + timedelta(days=5))
    tasks.add(build_task(n=3, now=T0))
    tasks.save(recent, expected_version=1)
    markers = DynamoEventMarkers(
        TableClient(table, endpoint_url=dynamodb_local.endpoint_url), clock=FixedClock(T0)
    )
    assert markers.first_time("archiver", "e1")  # kept 7 days

    # A day after the week: the first task, the idempotency record and the marker expired.
    ttl = ttl_at(dynamodb_local, table, T0 + WEEK + timedelta(days=1))
    deleted = ttl.run_once()
    assert sorted(sk.split("#")[0] for _, sk in deleted) == ["EVENT", "IDEMP", "TASK"]
    assert (dynamodb_local.client().scan(TableName=table)["Count"], ttl.expired) == (2, 3)
    assert tasks.get(old.owner_id, old.id) is None
    assert tasks.get(recent.owner_id, recent.id) == recent
    assert ttl.run_once() == []  # nothing left to expire

    seen = read_stream(dynamodb_local, table, ttl.removals)
    assert sorted(removals_of(seen), key=lambda r: r[0]) == [
        ("EVENT", TTL_IDENTITY),
        ("IDEMP", TTL_IDENTITY),
        ("TASK", TTL_IDENTITY),
    ]
    assert len(ttl.removals) == 0  # every noted deletion was claimed by its record

    publisher = InMemoryEventPublisher()
    assert stream.publish_records([r for r in seen if r["eventName"] == "REMOVE"], publisher) == []
    (archived,) = publisher.published
    event = event_from_json({**archived.detail, "type": archived.detail_type})
    assert (archived.detail_type, event.task) == ("TaskArchived", old)


def test_a_user_s_deletion_stays_a_deletion(dynamodb_local: DynamoDBLocal, table: str) -> None:
    tasks = repository(dynamodb_local, table)
    done = completed(1, T0)
    tasks.add(build_task(n=1, now=T0 - timedelta(hours=1)))
    tasks.save(done, expected_version=1)
    tasks.delete(done)
    ttl = ttl_at(dynamodb_local, table, T0 + 2 * WEEK)
    assert ttl.run_once() == []
    seen = read_stream(dynamodb_local, table, ttl.removals)
    assert removals_of(seen) == [("TASK", None)]
    publisher = InMemoryEventPublisher()
    stream.publish_records(seen, publisher)
    assert [e.detail_type for e in publisher.published][-1] == "TaskDeleted"


def test_an_item_written_again_since_the_scan_stays(
    dynamodb_local: DynamoDBLocal, table: str
) -> None:
    """The delete is conditional on the expiry being past still: a task reopened between the
    pass's Scan and its DeleteItem is not removed, and no TTL removal is left noted."""
    tasks = repository(dynamodb_local, table)
    done = completed(1, T0)
    tasks.add(build_task(n=1, now=T0 - timedelta(hours=1)))
    tasks.save(done, expected_version=1)
    reopened = done.transition_to(Status.IN_PROGRESS, T0 + WEEK)
    client = dynamodb_local.client()

    class ReopenedAfterTheScan:
        exceptions = client.exceptions

        def scan(self, **kwargs: Any) -> Any:
            page = client.scan(**kwargs)
            tasks.save(reopened, expected_version=done.version)
            return page

        def delete_item(self, **kwargs: Any) -> Any:
            return client.delete_item(**kwargs)

    ttl = LocalTtl(
        client=ReopenedAfterTheScan(),
        table_name=table,
        clock=(T0 + 2 * WEEK).timestamp,
    )
    assert ttl.run_once() == []
    assert tasks.get(done.owner_id, done.id) == reopened
    assert len(ttl.removals) == 0


def test_the_clock_offset_moves_the_ttl_s_clock(dynamodb_local: DynamoDBLocal, table: str) -> None:
    tasks = repository(dynamodb_local, table)
    done = completed(1, T0)
    tasks.add(build_task(n=1, now=T0 - timedelta(hours=1)))
    tasks.save(done, expected_version=1)
    today = T0 + timedelta(days=1)
    assert ttl_at(dynamodb_local, table, today).run_once() == []
    later = ttl_at(dynamodb_local, table, today, clock_offset=timedelta(days=7))
    assert later.now() == int((today + WEEK).timestamp())
    assert [sk for _, sk in later.run_once()] == [f"TASK#{done.id}"]


def test_passes_run_in_the_background_and_on_demand(
    dynamodb_local: DynamoDBLocal, table: str
) -> None:
    tasks = repository(dynamodb_local, table)
    done = completed(1, T0)
    tasks.add(build_task(n=1, now=T0 - timedelta(hours=1)))
    ttl = ttl_at(dynamodb_local, table, T0 + 2 * WEEK, interval_s=0).start()
    try:
        assert ttl.pass_now()
        assert ttl.expired == 0
        tasks.save(done, expected_version=1)
        assert ttl.pass_now()  # a pass that began after the save: it saw the task
        assert ttl.expired == 1
    finally:
        ttl.stop()


def test_removals_are_claimed_once_each() -> None:
    removals = TtlRemovals()
    key = ("USER#a", "TASK#1")
    assert not removals.claim(key)
    removals.note(key)
    removals.note(key)  # expired, written again, expired again
    assert removals.claim(key)
    assert removals.claim(key)
    assert not removals.claim(key)
    removals.note(key)
    removals.forget(key)
    assert not removals.claim(key)
    assert len(removals) == 0


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("8d", timedelta(days=8)),
        ("36h", timedelta(hours=36)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("-90m", -timedelta(minutes=90)),
        ("0", timedelta(0)),
    ],
)
def test_the_clock_offset_option(text: str, offset: timedelta) -> None:
    parsed = arguments([f"--clock-offset={text}"]).clock_offset  # = form: "-90m" is no option
    assert parsed == offset
    assert parse_offset(shown_offset(parsed)) == offset  # the banner shows what it takes
    assert arguments([]).clock_offset == timedelta(0)


@pytest.mark.parametrize("text", ["8", "8x", "--1d", "d8", "8d ", "", "1.5d"])
def test_a_clock_offset_that_is_none_is_refused(text: str) -> None:
    with pytest.raises(SystemExit):
        arguments(["--clock-offset", text])
