"""The stream function's Lambda filters (`STREAM_FILTERS`) let through exactly the records
`decode_record` decodes: over a real history of every item kind the table holds, written by the
real adapters into DynamoDB Local and read back from its stream as the poller shapes them
(Lambda's record), and over generated sort keys and events."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_platform.bus import matches
from local_platform.dynamodb_local import DynamoDBLocal
from local_platform.streams import TTL_IDENTITY, StreamPoller
from stack.manifest import STREAM
from taskcore.adapters.approvals import DynamoApprovalWorkflow
from taskcore.adapters.dynamodb import (
    DynamoEventMarkers,
    DynamoExportRepository,
    DynamoInbox,
    DynamoStatsStore,
    DynamoTaskRepository,
    TableClient,
    create_table,
    decode_record,
)
from taskcore.adapters.stream_filters import STREAM_FILTERS
from taskcore.commands import CreateTask
from taskcore.cursors import CursorCodec
from taskcore.model import Approval, Decision, Export, ExportId, Priority, Status, TaskId, UserId
from taskcore.notifications import APPROVERS_INBOX, Kind, Notification, notification_id
from taskcore.services import TaskService
from taskcore.stats import StatsDelta
from taskcore.testing import FixedClock, InMemoryAttachmentStore, SequentialIds, principal
from tests.handlers.stream_records import read_stream

ALICE, BOB = principal("alice"), principal("bob", "approvers")
REGION = "us-east-1"


def passes(record: dict[str, Any]) -> bool:
    """What Lambda does with the mapping's filters: any one matching lets the record through."""
    return any(matches(pattern, record) for pattern in STREAM_FILTERS)


class NoCallback:
    """Step Functions is not what these records are about: nothing to release."""

    def succeed(self, token: str, output: Any) -> bool:
        return False


@pytest.fixture(scope="module")
def history(dynamodb_local: DynamoDBLocal) -> list[dict[str, Any]]:
    """Every item kind, written by its adapter: tasks (insert, modify, remove) with an
    idempotency record, stats and their event marks, an approval record (token, outcome), an
    event marker, inbox notes (a user's, the approvers'; written, then marked sent), an export
    (inserted, then saved)."""
    table = f"filters-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_local.client(), table)
    url = dynamodb_local.endpoint_url
    client = TableClient(table, endpoint_url=url, region=REGION)
    clock = FixedClock()
    service = TaskService(
        tasks=DynamoTaskRepository(table, endpoint_url=url, clock=clock),
        stats=DynamoStatsStore(table, endpoint_url=url),
        attachments=InMemoryAttachmentStore(),
        clock=clock,
        ids=SequentialIds(),
        cursors=CursorCodec(b"k" * 32),
    )
    task = service.create_task(ALICE, CreateTask(title="t", priority=Priority.HIGH), "key").task
    service.decide_approval(BOB, task.id, Decision.APPROVE)
    service.transition(ALICE, task.id, Status.IN_PROGRESS)
    service.stats.apply(ALICE.user_id, "e1", StatsDelta(status_counts={"pending": 1}))
    approvals = DynamoApprovalWorkflow(client, NoCallback(), clock=clock)  # type: ignore[arg-type]
    approvals.token_issued(ALICE.user_id, task.id, "token")
    DynamoEventMarkers(client, clock=clock).first_time("notifications", "e1")
    inbox = DynamoInbox(client)
    for recipient in ("user:alice", APPROVERS_INBOX):
        note = Notification(
            id=notification_id("e1", recipient, clock.now()),
            recipient=recipient,
            kind=Kind.APPROVAL_DECIDED,
            event_id="e1",
            task_id=TaskId(task.id),
            owner_id=UserId("alice"),
            title="t",
            priority=Priority.HIGH,
            created_at=clock.now(),
            outcome=Approval.APPROVED,
            decided_by="bob",
        )
        inbox.add(note)
        inbox.mark_sent(note, clock.now())
    exports = DynamoExportRepository(table, endpoint_url=url, region=REGION)
    export = Export.new(
        id=ExportId("01JD0000000000000000000001"), owner_id=ALICE.user_id, now=clock.now()
    )
    exports.add(export)
    clock.advance(timedelta(minutes=1))
    exports.save(attrs.evolve(export, updated_at=clock.now(), version=2), expected_version=1)
    service.delete_task(ALICE, task.id)
    return read_stream(dynamodb_local, table)


def kind(record: dict[str, Any]) -> str:
    keys = record["dynamodb"]["Keys"]
    return f"{keys['pk']['S'].split('#')[0]}/{keys['sk']['S'].split('#')[0]}"


def with_ttl_removals(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records, and each REMOVE again as the table's TTL would send it (any item kind may
    expire: idempotency records, marks, markers, notes, approval records; a task, archived)."""
    expired = [{**r, "userIdentity": TTL_IDENTITY} for r in records if r["eventName"] == "REMOVE"]
    removals = [
        {
            **r,
            "eventName": "REMOVE",
            "userIdentity": TTL_IDENTITY,
            "dynamodb": {k: v for k, v in r["dynamodb"].items() if k != "NewImage"}
            | {"OldImage": r["dynamodb"]["NewImage"]},
        }
        for r in records
        if r["eventName"] != "REMOVE" and "NewImage" in r["dynamodb"]
    ]
    return [*records, *expired, *removals]


def test_the_history_holds_every_item_kind(history: list[dict[str, Any]]) -> None:
    kinds = {(kind(r), r["eventName"]) for r in history}
    assert kinds >= {
        ("USER/TASK", "INSERT"),
        ("USER/TASK", "MODIFY"),
        ("USER/TASK", "REMOVE"),
        ("USER/IDEMP", "INSERT"),
        ("USER/STATS", "INSERT"),
        ("USER/EVENT", "INSERT"),
        ("USER/APPROVAL", "INSERT"),
        ("MARKER/EVENT", "INSERT"),
        ("USER/NOTE", "INSERT"),
        ("USER/NOTE", "MODIFY"),
        ("GROUP/NOTE", "INSERT"),
        ("USER/EXPORT", "INSERT"),
        ("USER/EXPORT", "MODIFY"),
    }, sorted(kinds)


def test_the_filters_pass_exactly_what_decode_record_decodes(
    history: list[dict[str, Any]],
) -> None:
    records = with_ttl_removals(history)
    disagreements = [
        (kind(r), r["eventName"], r.get("userIdentity") is not None)
        for r in records
        if passes(r) != (decode_record(r) is not None)
    ]
    assert not disagreements
    passed = {(kind(r), r["eventName"]) for r in records if passes(r)}
    assert passed == {
        ("USER/TASK", "INSERT"),
        ("USER/TASK", "MODIFY"),
        ("USER/TASK", "REMOVE"),
        ("USER/EXPORT", "INSERT"),
    }


def test_the_stream_function_carries_them() -> None:
    assert STREAM.stream is not None
    assert STREAM.stream.filters == STREAM_FILTERS


PREFIXES = ["TASK#", "EXPORT#", "IDEMP#", "EVENT#", "APPROVAL#", "NOTE#", "STATS", "TASK", "task#"]


@given(
    prefix=st.sampled_from(PREFIXES),
    suffix=st.text(max_size=12),
    event=st.sampled_from(["INSERT", "MODIFY", "REMOVE"]),
    by_ttl=st.booleans(),
)
def test_generated_keys_and_events_agree(
    history: list[dict[str, Any]], prefix: str, suffix: str, event: str, by_ttl: bool
) -> None:
    """Any sort key and event, with the images its event carries (a real task's image: a task
    record must be readable)."""
    image = next(r for r in history if kind(r) == "USER/TASK" and "NewImage" in r["dynamodb"])
    image = image["dynamodb"]["NewImage"]
    change: dict[str, Any] = {"Keys": {"pk": {"S": "USER#alice"}, "sk": {"S": prefix + suffix}}}
    if event != "INSERT":
        change["OldImage"] = image
    if event != "REMOVE":
        change["NewImage"] = image
    record: dict[str, Any] = {"eventName": event, "dynamodb": change}
    if by_ttl and event == "REMOVE":
        record["userIdentity"] = TTL_IDENTITY
    assert passes(record) == (decode_record(record) is not None)


def test_the_poller_invokes_nothing_for_records_the_filters_drop(
    dynamodb_local: DynamoDBLocal,
) -> None:
    """The stream function's own trigger on the local platform: writes of stats, an event mark
    and an inbox note invoke nothing (the iterator moves past them); a task write invokes it
    with the task's record alone."""
    table = f"poller-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_local.client(), table)
    url = dynamodb_local.endpoint_url
    batches: list[list[dict[str, Any]]] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        batches.append(event["Records"])
        return {"batchItemFailures": []}

    assert STREAM.stream is not None
    poller = StreamPoller(
        client=dynamodb_local.streams_client(),
        table_client=dynamodb_local.client(),
        table_name=table,
        invoke=invoke,
        trigger=STREAM.stream,
        region=REGION,
    )
    arn = poller._arn()
    DynamoStatsStore(table, endpoint_url=url).apply(
        ALICE.user_id, "e1", StatsDelta(status_counts={"pending": 1})
    )
    DynamoEventMarkers(TableClient(table, endpoint_url=url, region=REGION)).first_time("c", "e1")
    while poller.poll_once(arn):
        pass
    assert batches == []
    assert poller.filtered_out >= 3  # the stats item, its mark, the marker

    clock = FixedClock()
    service = TaskService(
        tasks=DynamoTaskRepository(table, endpoint_url=url, clock=clock),
        stats=DynamoStatsStore(table, endpoint_url=url),
        attachments=InMemoryAttachmentStore(),
        clock=clock,
        ids=SequentialIds(),
        cursors=CursorCodec(b"k" * 32),
    )
    task = service.create_task(ALICE, CreateTask(title="t"), "key").task  # + idempotency record
    while poller.poll_once(arn):
        pass
    assert [[kind(r) for r in batch] for batch in batches] == [["USER/TASK"]]
    assert batches[0][0]["dynamodb"]["Keys"]["sk"]["S"] == f"TASK#{task.id}"
    assert poller.delivered == 1
