"""The notifications' stores: every `Inbox` keeps the same contract (in memory, on DynamoDB
Local's engine and on moto), and `SnsChannel` publishes what a filter policy can route (moto's
SNS delivering to SQS subscriptions, filter policies applied)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import attrs
import boto3
import pytest
from moto import mock_aws

from taskcore.adapters.dynamodb import DynamoInbox, TableClient, create_table
from taskcore.adapters.sns import SnsChannel, publish_arguments
from taskcore.model import Approval, Priority, TaskId, UserId
from taskcore.notifications import APPROVERS_INBOX, Kind, Notification, notification_id
from taskcore.ports import Inbox
from taskcore.serialization import notification_to_json
from taskcore.testing import InMemoryInbox
from tests.contract.backends import REGION, START


def note(n: int, recipient: str = "user:alice", **fields: object) -> Notification:
    at = START + timedelta(seconds=n)
    values: dict[str, object] = {
        "id": notification_id(f"event-{n}", recipient, at),
        "recipient": recipient,
        "kind": Kind.APPROVAL_DECIDED,
        "event_id": f"event-{n}",
        "task_id": TaskId(f"01JD{n:022d}"),
        "owner_id": UserId("alice"),
        "title": f"Title “{n}” ✓",
        "priority": Priority.HIGH,
        "created_at": at,
        "outcome": Approval.APPROVED,
        "decided_by": "bob",
    }
    return Notification(**(values | fields))  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "moto", "dynamodb_local"])
def inbox(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Inbox]:
    if request.param == "memory":
        yield InMemoryInbox()
        return
    table = f"inbox-{uuid.uuid4().hex[:16]}"
    if request.param == "moto":
        with mock_aws():
            create_table(boto3.client("dynamodb", region_name=REGION), table)
            yield DynamoInbox(TableClient(table, region=REGION))
        return
    server = request.getfixturevalue("dynamodb_local")
    client = server.client()
    create_table(client, table)
    try:
        yield DynamoInbox(TableClient(table, endpoint_url=server.endpoint_url, region=REGION))
    finally:
        client.delete_table(TableName=table)


class TestInboxContract:
    def test_a_notification_round_trips_every_field(self, inbox: Inbox) -> None:
        due = note(1, kind=Kind.DUE_SOON, outcome=None, decided_by=None, due_date=START.date())
        for stored in (note(2), due):
            assert inbox.add(stored) == stored
            assert inbox.get(stored.recipient, stored.id) == stored

    def test_adding_twice_keeps_the_first_and_returns_it(self, inbox: Inbox) -> None:
        first = note(1)
        inbox.add(first)
        inbox.mark_sent(first, START)
        again = inbox.add(attrs.evolve(first, title="changed"))
        assert again == attrs.evolve(first, sent_at=START)

    def test_mark_read_the_first_time_counts_and_unknown_is_none(self, inbox: Inbox) -> None:
        stored = inbox.add(note(1))
        read = inbox.mark_read(stored.recipient, stored.id, START)
        later = inbox.mark_read(stored.recipient, stored.id, START + timedelta(hours=1))
        assert read is not None
        assert later is not None
        assert read.read_at == later.read_at == START
        assert inbox.mark_read("user:bob", stored.id, START) is None
        assert inbox.mark_read(stored.recipient, note(9).id, START) is None

    def test_inboxes_are_apart_and_page_newest_first(self, inbox: Inbox) -> None:
        for n in range(1, 8):
            inbox.add(note(n))
            inbox.add(note(n, recipient=APPROVERS_INBOX, kind=Kind.APPROVAL_REQUESTED))
        inbox.add(note(50, recipient="user:bob"))
        seen: list[Notification] = []
        after = None
        while True:
            page = inbox.list("user:alice", limit=3, after=after)
            seen.extend(page.items)
            if page.last_position is None:
                break
            after = page.last_position
        assert [n.event_id for n in seen] == [f"event-{n}" for n in range(7, 0, -1)]
        assert all(n.recipient == "user:alice" for n in seen)
        shared = inbox.list(APPROVERS_INBOX, limit=100, after=None).items
        assert len(shared) == 7
        assert {n.kind for n in shared} == {Kind.APPROVAL_REQUESTED}


def test_a_notification_item_expires_by_ttl_and_carries_no_index_key() -> None:
    from taskcore.adapters.dynamodb.inbox import notification_to_item

    item = notification_to_item(note(1))
    assert int(item["expiresAt"]["N"]) == int(note(1).expires_at().timestamp())
    assert not {"lsi1sk", "lsi2sk", "gsi1pk"} & item.keys()
    assert item["pk"] == {"S": "USER#alice"}
    group = notification_to_item(note(1, recipient=APPROVERS_INBOX))
    assert group["pk"] == {"S": "GROUP#approvers"}


class TestSnsChannel:
    def test_filter_policies_route_by_recipient_and_kind(self, aws_env: None) -> None:
        with mock_aws():
            sns = boto3.client("sns", region_name=REGION)
            sqs = boto3.client("sqs", region_name=REGION)
            topic = sns.create_topic(Name="notifications")["TopicArn"]
            queues = {}
            policies = {
                "approvers": {"recipient": [APPROVERS_INBOX]},
                "reminders": {"kind": [Kind.DUE_SOON.value]},
            }
            for name, policy in policies.items():
                url = sqs.create_queue(QueueName=name)["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
                sns.subscribe(
                    TopicArn=topic,
                    Protocol="sqs",
                    Endpoint=arn["Attributes"]["QueueArn"],
                    Attributes={"FilterPolicy": json.dumps(policy), "RawMessageDelivery": "true"},
                )
                queues[name] = url
            channel = SnsChannel(topic, region=REGION)
            request = note(1, recipient=APPROVERS_INBOX, kind=Kind.APPROVAL_REQUESTED)
            reminder = note(2, kind=Kind.DUE_SOON, outcome=None, due_date=START.date())
            for n in (request, reminder, note(3)):
                channel.publish(n)

            def bodies(name: str) -> list[dict[str, object]]:
                got = sqs.receive_message(QueueUrl=queues[name], MaxNumberOfMessages=10)
                return [json.loads(m["Body"]) for m in got.get("Messages", [])]

            assert bodies("approvers") == [notification_to_json(request)]
            assert bodies("reminders") == [notification_to_json(reminder)]

    def test_email_gets_a_line_for_people_and_a_short_subject(self) -> None:
        arguments = publish_arguments("arn:aws:sns:us-east-1:123456789012:t", note(1))
        message = json.loads(arguments["Message"])
        assert message["email"] == note(1).message
        assert "bob" in message["email"]
        assert json.loads(message["default"]) == notification_to_json(note(1))
        assert arguments["Subject"] == "Approval decided"
        assert arguments["MessageAttributes"]["recipient"]["StringValue"] == "user:alice"
