"""The stream publisher, fed real stream records read from DynamoDB Local's stream."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers import bootstrap, stream
from local_platform.dynamodb_local import DynamoDBLocal
from local_platform.lambda_runtime import handler_context
from local_platform.streams import StreamPoller
from stack.manifest import STREAM, StreamTrigger
from taskcore.adapters.dynamodb import (
    DynamoStatsStore,
    DynamoTaskRepository,
    create_table,
    task_from_image,
    to_item,
)
from taskcore.commands import CreateTask, UpdateTask
from taskcore.cursors import CursorCodec
from taskcore.model import Decision, Priority, Status
from taskcore.serialization import event_from_json, task_to_json
from taskcore.services import TaskService
from taskcore.stats import StatsDelta
from taskcore.testing import (
    FixedClock,
    InMemoryAttachmentStore,
    InMemoryEventPublisher,
    SequentialIds,
    principal,
)
from tests.handlers.stream_records import read_stream

ALICE, BOB = principal("alice"), principal("bob", "approvers")


@pytest.fixture(scope="module")
def history(dynamodb_local: DynamoDBLocal) -> list[dict[str, Any]]:
    """The stream of a short, real history: create (with an idempotency key), edit, approve,
    start, complete, delete; a stats update; all in one table."""
    table = f"stream-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_local.client(), table)
    clock = FixedClock()
    repository = DynamoTaskRepository(table, endpoint_url=dynamodb_local.endpoint_url, clock=clock)
    service = TaskService(
        tasks=repository,
        stats=DynamoStatsStore(table, endpoint_url=dynamodb_local.endpoint_url),
        attachments=InMemoryAttachmentStore(),
        clock=clock,
        ids=SequentialIds(),
        cursors=CursorCodec(b"k" * 32),
    )
    task = service.create_task(ALICE, CreateTask(title="t", priority=Priority.HIGH), "key").task
    clock.advance(timedelta(minutes=1))
    service.update_task(ALICE, task.id, UpdateTask(title="renamed"))
    service.decide_approval(BOB, task.id, Decision.APPROVE)
    service.transition(ALICE, task.id, Status.IN_PROGRESS)
    clock.advance(timedelta(hours=1))
    service.transition(ALICE, task.id, Status.COMPLETED)
    service.stats.apply(ALICE.user_id, "e1", StatsDelta(status_counts={"pending": 1}))
    service.delete_task(ALICE, task.id)
    return read_stream(dynamodb_local, table)


def kinds(published: list[Any]) -> list[str]:
    return [e.detail_type for e in published]


class TestPublish:
    def test_real_history_becomes_domain_events(self, history: list[dict[str, Any]]) -> None:
        publisher = InMemoryEventPublisher()
        assert stream.publish_records(history, publisher) == []
        assert kinds(publisher.published) == [
            "TaskCreated",
            "ApprovalRequested",
            "TaskUpdated",
            "TaskUpdated",
            "ApprovalDecided",
            "TaskUpdated",
            "TaskUpdated",
            "TaskCompleted",
            "TaskDeleted",
        ]
        renamed = publisher.published[2]
        assert renamed.detail["changed"] == ["title"]
        assert renamed.detail["previous"]["title"] == "t"
        ids = [e.event_id for e in publisher.published]
        assert len(set(ids)) == len(ids)

    def test_redelivery_yields_the_same_event_ids(self, history: list[dict[str, Any]]) -> None:
        first, second = InMemoryEventPublisher(), InMemoryEventPublisher()
        stream.publish_records(history, first)
        stream.publish_records(history, second)
        assert [e.event_id for e in first.published] == [e.event_id for e in second.published]

    def test_batches_hold_at_most_ten(self, history: list[dict[str, Any]]) -> None:
        publisher = InMemoryEventPublisher()  # raises on a batch over 10
        stream.publish_records(history * 3, publisher)
        assert len(publisher.published) == 27
        assert publisher.batches == 3

    def test_refused_events_report_their_records(self, history: list[dict[str, Any]]) -> None:
        everything = InMemoryEventPublisher()
        stream.publish_records(history, everything)
        refused = everything.published[4]  # ApprovalDecided
        publisher = InMemoryEventPublisher(fail_ids={refused.event_id})
        failed = stream.publish_records(history, publisher)
        owner = next(
            r
            for r in history
            if any(e.event_id == refused.event_id for e in stream.envelopes_for(r))
        )
        assert failed == [owner["dynamodb"]["SequenceNumber"]]

    def test_unreadable_record_is_reported_and_the_rest_published(
        self, history: list[dict[str, Any]]
    ) -> None:
        first = next(
            i for i, r in enumerate(history) if r["dynamodb"]["Keys"]["sk"]["S"][:5] == "TASK#"
        )
        poison = copy.deepcopy(history[first])
        poison["dynamodb"]["NewImage"]["status"] = {"S": "exploded"}
        publisher = InMemoryEventPublisher()
        failed = stream.publish_records(
            [*history[:first], poison, *history[first + 1 :]], publisher
        )
        assert failed == [poison["dynamodb"]["SequenceNumber"]]
        assert "TaskDeleted" in kinds(publisher.published)

    def test_other_items_mean_nothing(self, history: list[dict[str, Any]]) -> None:
        others = [r for r in history if not r["dynamodb"]["Keys"]["sk"]["S"].startswith("TASK#")]
        assert {r["dynamodb"]["Keys"]["sk"]["S"].split("#")[0] for r in others} >= {
            "IDEMP",
            "STATS",
        }
        assert all(stream.envelopes_for(r) == [] for r in others)
        for record in others:  # nor does their removal by TTL
            expired = {**record, "eventName": "REMOVE", "userIdentity": TTL_IDENTITY}
            assert stream.envelopes_for(expired) == []

    def test_a_task_removed_by_ttl_was_archived_not_deleted(
        self, history: list[dict[str, Any]]
    ) -> None:
        """The same REMOVE record of a completed task, once with the TTL's identity: what AWS
        sends when the table's TTL removes the item (API_streams_Record, `userIdentity`)."""
        removal = next(r for r in history if r["eventName"] == "REMOVE")
        (deleted,) = stream.envelopes_for(removal)
        (archived,) = stream.envelopes_for({**removal, "userIdentity": TTL_IDENTITY})
        assert (deleted.detail_type, archived.detail_type) == ("TaskDeleted", "TaskArchived")
        assert archived.event_id == deleted.event_id.replace("TaskDeleted", "TaskArchived")
        assert archived.detail["task"] == deleted.detail["task"]
        assert archived.detail["task"]["status"] == "completed"
        # Another service's identity, or the TTL's on anything but a removal, is no expiry.
        other = {"type": "Service", "principalId": "backup.amazonaws.com"}
        assert stream.envelopes_for({**removal, "userIdentity": other}) == [deleted]

    def test_new_export_records_request_an_export(self) -> None:
        record = {
            "eventName": "INSERT",
            "dynamodb": {
                "Keys": {
                    "pk": {"S": "USER#alice"},
                    "sk": {"S": "EXPORT#01JD0000000000000000000001"},
                },
                "NewImage": {},
                "SequenceNumber": "1",
            },
        }
        (envelope,) = stream.envelopes_for(record)
        assert envelope.detail_type == "ExportRequested"
        assert envelope.detail == {"exportId": "01JD0000000000000000000001", "ownerId": "alice"}
        assert stream.envelopes_for({**record, "eventName": "MODIFY"}) == []


EVENTS = Path(__file__).parent / "events"
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


class TestTtlFixtures:
    """Lambda stream events as AWS delivers them (`events/stream_*.json`): removals by the
    table's TTL (a completed task, an idempotency record, an event marker) and a user's
    removal of the same task."""

    @staticmethod
    def event(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
        return loaded

    def test_the_fixture_s_task_image_is_what_the_repository_writes(self) -> None:
        (task_record, *_) = self.event("stream_ttl_removals.json")["Records"]
        image = task_record["dynamodb"]["OldImage"]
        task = task_from_image(image)
        assert task is not None
        assert to_item(task, archive_after=timedelta(days=7)).serialize() == image

    def test_only_the_expired_task_means_an_event_and_it_is_archived(self) -> None:
        event = self.event("stream_ttl_removals.json")
        publisher = InMemoryEventPublisher()
        assert stream.publish_records(event["Records"], publisher) == []
        (archived,) = publisher.published
        assert archived.detail_type == "TaskArchived"
        assert archived.event_id == "01JD0000000000000000000007:3:TaskArchived"
        task = event_from_json({**archived.detail, "type": archived.detail_type}).task
        assert task_to_json(task) == archived.detail["task"]
        assert (task.status, task.title, task.tags) == (
            Status.COMPLETED,
            "Ship the Q4 report",
            ("q4",),
        )

    def test_a_user_s_removal_of_the_same_task_is_a_deletion(self) -> None:
        publisher = InMemoryEventPublisher()
        stream.publish_records(self.event("stream_user_removal.json")["Records"], publisher)
        assert [e.detail_type for e in publisher.published] == ["TaskDeleted"]

    def test_the_handler_publishes_the_archive_event(self, monkeypatch) -> None:
        publisher = InMemoryEventPublisher()
        monkeypatch.setattr(bootstrap, "event_publisher", lambda: publisher)
        result = stream.handler(self.event("stream_ttl_removals.json"), handler_context(STREAM))
        assert result == {"batchItemFailures": []}
        assert [e.detail_type for e in publisher.published] == ["TaskArchived"]

    def test_a_redelivered_removal_yields_the_same_event(self) -> None:
        records = self.event("stream_ttl_removals.json")["Records"]
        first, again = InMemoryEventPublisher(), InMemoryEventPublisher()
        stream.publish_records(records, first)
        stream.publish_records(records, again)
        assert first.published == again.published


class TestHandler:
    def test_reports_partial_failures(self, history, monkeypatch) -> None:
        everything = InMemoryEventPublisher()
        stream.publish_records(history, everything)
        publisher = InMemoryEventPublisher(fail_ids={everything.published[-1].event_id})
        monkeypatch.setattr(bootstrap, "event_publisher", lambda: publisher)
        result = stream.handler({"Records": history}, handler_context(STREAM))
        assert result == {
            "batchItemFailures": [{"itemIdentifier": history[-1]["dynamodb"]["SequenceNumber"]}]
        }
        assert stream.handler({"Records": []}, handler_context(STREAM)) == {"batchItemFailures": []}


class TestLocalDelivery:
    """The local poller honours the event-source mapping's failure semantics."""

    @staticmethod
    def records(n: int) -> list[dict[str, Any]]:
        return [{"dynamodb": {"SequenceNumber": str(i)}} for i in range(n)]

    def poller(self, invoke, retries: int = 2) -> StreamPoller:
        return StreamPoller(
            client=None,
            table_client=None,
            table_name="t",
            invoke=invoke,
            trigger=StreamTrigger(max_retries=retries),
        )

    def test_retries_from_the_first_reported_record(self) -> None:
        calls: list[list[str]] = []

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            sequences = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
            calls.append(sequences)
            return {"batchItemFailures": [{"itemIdentifier": "2"}] if len(calls) == 1 else []}

        poller = self.poller(invoke)
        poller.deliver(self.records(4))
        assert calls == [["0", "1", "2", "3"], ["2", "3"]]
        assert (poller.delivered, poller.failed) == (4, [])

    def test_poison_record_is_given_up_after_retries(self) -> None:
        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            bad = [r for r in event["Records"] if r["dynamodb"]["SequenceNumber"] == "1"]
            return {"batchItemFailures": [{"itemIdentifier": "1"}] if bad else []}

        poller = self.poller(invoke, retries=2)
        poller.deliver(self.records(3))
        assert [r["dynamodb"]["SequenceNumber"] for r in poller.failed] == ["1"]
        assert poller.delivered == 2

    def test_failing_batches_are_bisected(self) -> None:
        sizes: list[int] = []

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            sizes.append(len(event["Records"]))
            if any(r["dynamodb"]["SequenceNumber"] == "3" for r in event["Records"]):
                raise RuntimeError("poison")
            return {}

        poller = self.poller(invoke, retries=1)
        poller.deliver(self.records(4))
        assert sizes[:3] == [4, 2, 2]
        assert [r["dynamodb"]["SequenceNumber"] for r in poller.failed] == ["3"]
        assert poller.delivered == 3


def test_the_poller_follows_the_stream_of_a_table_recreated_after_an_engine_restart() -> None:
    """An in-memory engine that dies comes back empty: the platform recreates the table, whose
    stream has a new ARN. The poller must find it and deliver the new table's records."""
    import os
    import signal
    import time

    table = "restarted"
    delivered: list[dict[str, Any]] = []
    with DynamoDBLocal(
        supervise=True, on_restart=lambda engine: create_table(engine.client(), table)
    ) as engine:
        create_table(engine.client(), table)
        poller = StreamPoller(
            client=engine.streams_client(),
            table_client=engine.client(),
            table_name=table,
            invoke=lambda event: delivered.extend(event["Records"]),
            trigger=StreamTrigger(starting_position="TRIM_HORIZON"),
            interval_s=0.05,
        )
        poller.start()
        try:
            put = {"pk": {"S": "p"}, "sk": {"S": "before"}}
            engine.client().put_item(TableName=table, Item=put)
            deadline = time.monotonic() + 10
            while not delivered and time.monotonic() < deadline:
                time.sleep(0.05)
            assert engine.pid is not None
            os.kill(engine.pid, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while engine.restarts == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)  # the table is recreated just after the restart
            engine.client().put_item(TableName=table, Item={**put, "sk": {"S": "after"}})
            deadline = time.monotonic() + 20
            while len(delivered) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            poller.stop()
    keys = [r["dynamodb"]["Keys"]["sk"]["S"] for r in delivered]
    assert keys == ["before", "after"]


def test_a_ttl_deletion_reaches_the_function_as_aws_shapes_it() -> None:
    """DynamoDB Local deletes expired items itself, within seconds, but names the record
    `UNKNOWN_TO_SDK_VERSION` without a `userIdentity`; the poller hands the function what AWS
    sends for a TTL removal: `REMOVE`, with DynamoDB's service identity.

    Measured on 2026-12-06: the engine does this only for a table without secondary indexes.
    An expired item of the application's table (two LSIs, a GSI) stayed for as long as it was
    watched (40 s), so on the local platform the application's TTL never fires. This test uses
    a plain table in an engine of its own: in the session's shared engine, among tables with
    indexes, the plain table's items did not expire either."""
    with DynamoDBLocal() as engine:
        _expire_one_item(engine)


def _expire_one_item(engine: DynamoDBLocal) -> None:
    import time

    table = f"ttl-{uuid.uuid4().hex[:8]}"
    client = engine.client()
    client.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
    )
    client.put_item(
        TableName=table,
        Item={
            "pk": {"S": "USER#x"},
            "sk": {"S": "IDEMP#k"},
            "expiresAt": {"N": str(int(time.time()) - 60)},
        },
    )
    deadline = time.monotonic() + 60
    while client.scan(TableName=table)["Count"]:
        assert time.monotonic() < deadline, "DynamoDB Local deleted no expired item"
        time.sleep(0.5)
    names = [(r["eventName"], r.get("userIdentity")) for r in read_stream(engine, table)]
    assert names == [
        ("INSERT", None),
        ("REMOVE", {"type": "Service", "principalId": "dynamodb.amazonaws.com"}),
    ]
