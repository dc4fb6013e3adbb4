"""The DynamoDB adapter's edges: storage failures become domain errors, and the items it
writes read back (and stream back) as the same entities."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import attrs
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from local_platform.dynamodb_local import DynamoDBLocal
from taskcore.adapters.dynamodb import (
    DynamoStatsStore,
    DynamoTaskRepository,
    create_table,
    from_item,
    table_definition,
    task_from_image,
    to_item,
)
from taskcore.adapters.dynamodb.table import DUE_SHARDS, due_shard
from taskcore.errors import StorageRejected, Unavailable
from taskcore.model import (
    Attachment,
    AttachmentId,
    Decision,
    Priority,
    Status,
    Task,
    TaskId,
    UserId,
)
from taskcore.stats import StatsDelta
from taskcore.testing import FixedClock

NOW = FixedClock().now()


def sample_task(**changes: Any) -> Task:
    task = Task.new(
        id=TaskId("01JD00000000000000000000AB"),
        owner_id=UserId("alice"),
        title="Ünïcode ✓ " + "x" * 150,
        description="line one\nline two\t" + "d" * 3000,
        priority=Priority.HIGH,
        tags=["a", "b"],
        due_date=NOW.date() + timedelta(days=3),
        now=NOW,
    )
    task = task.decide(Decision.APPROVE, UserId("bob"), NOW + timedelta(minutes=1))
    attachment = Attachment(
        id=AttachmentId("01JD00000000000000000000AC"),
        filename="report.pdf",
        content_type="application/pdf",
        size=1234,
        created_at=NOW,
    )
    return task.add_attachment(attachment, NOW + timedelta(minutes=2))


class Injector:
    """Answers DynamoDB requests with a canned error at the HTTP layer (botocore before-send)."""

    def __init__(self, status: int, code: str) -> None:
        self.status, self.code, self.calls = status, code, 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        self.calls += 1
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{self.code}", "message": "injected"}
        )

        class Raw:
            def stream(self, **_: Any) -> Iterator[bytes]:
                yield body.encode()

        headers = HTTPHeaders()
        headers["x-amzn-RequestId"] = "test"
        return AWSResponse(request.url, self.status, headers, Raw())


@pytest.fixture
def repository(dynamodb_local: DynamoDBLocal) -> DynamoTaskRepository:
    table = f"t-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_local.client(), table)
    return DynamoTaskRepository(table, endpoint_url=dynamodb_local.endpoint_url, region="us-east-1")


class TestMapping:
    def test_round_trip_through_the_item(self) -> None:
        task = sample_task()
        assert from_item(to_item(task)) == task

    def test_round_trip_through_dynamodb_and_its_stream(self, dynamodb_local, repository) -> None:
        task = sample_task()
        repository.add(task)
        assert repository.get(task.owner_id, task.id) == task
        streams = dynamodb_local.streams_client()
        arn = dynamodb_local.client().describe_table(TableName=repository.table_name)["Table"][
            "LatestStreamArn"
        ]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator)["Records"]
        assert task_from_image(records[0]["dynamodb"]["NewImage"]) == task

    def test_non_task_images_are_ignored(self) -> None:
        assert task_from_image({"pk": {"S": "USER#a"}, "sk": {"S": "STATS"}}) is None

    def test_awaiting_tasks_carry_the_sparse_key_only_while_awaiting(self) -> None:
        waiting = Task.new(
            id=TaskId("01JD00000000000000000000AD"),
            owner_id=UserId("a"),
            title="t",
            priority=Priority.CRITICAL,
            now=NOW,
        )
        assert to_item(waiting).approval_queue == "AWAITING_APPROVAL"
        assert to_item(sample_task()).approval_queue is None


class TestArchiveExpiry:
    """A completed task is written with its TTL (`expiresAt`, epoch seconds) when the stack
    archives completed tasks; reopening it removes the TTL; nothing else ever carries one."""

    WEEK = timedelta(days=7)

    @staticmethod
    def raw(repository: DynamoTaskRepository, task: Task) -> dict[str, Any]:
        client: Any = repository.models.connection.client
        item: dict[str, Any] = client.get_item(
            TableName=repository.table_name,
            Key={"pk": {"S": f"USER#{task.owner_id}"}, "sk": {"S": f"TASK#{task.id}"}},
            ConsistentRead=True,
        )["Item"]
        return item

    def test_completion_sets_the_ttl_and_reopening_removes_it(
        self, dynamodb_local: DynamoDBLocal
    ) -> None:
        table = f"t-{uuid.uuid4().hex[:8]}"
        create_table(dynamodb_local.client(), table)
        repository = DynamoTaskRepository(
            table, endpoint_url=dynamodb_local.endpoint_url, archive_after=self.WEEK
        )
        task = sample_task()
        repository.add(task)
        assert "expiresAt" not in self.raw(repository, task)
        started = task.transition_to(Status.IN_PROGRESS, NOW + timedelta(hours=1))
        repository.save(started, task.version)
        assert "expiresAt" not in self.raw(repository, started)
        done = started.transition_to(Status.COMPLETED, NOW + timedelta(hours=2, seconds=0.7))
        repository.save(done, started.version)
        expected = int((NOW + timedelta(hours=2) + self.WEEK).timestamp())
        assert self.raw(repository, done)["expiresAt"] == {"N": str(expected)}
        assert repository.get(done.owner_id, done.id) == done  # the TTL is no part of the task
        edited = done.edit(NOW + timedelta(hours=3), title="still done")
        repository.save(edited, done.version)  # a completed task keeps its completion's TTL
        assert self.raw(repository, edited)["expiresAt"] == {"N": str(expected)}
        reopened = edited.transition_to(Status.IN_PROGRESS, NOW + timedelta(hours=4))
        repository.save(reopened, edited.version)
        assert "expiresAt" not in self.raw(repository, reopened)

    def test_a_stack_that_archives_nothing_writes_no_ttl(self, repository) -> None:
        task = sample_task()
        repository.add(task)
        started = task.transition_to(Status.IN_PROGRESS, NOW)
        repository.save(started, task.version)
        done = started.transition_to(Status.COMPLETED, NOW)
        repository.save(done, started.version)
        assert "expiresAt" not in self.raw(repository, done)


class TestTableDefinition:
    def test_keys_indexes_and_stream(self) -> None:
        definition = table_definition("tasks")
        assert [k["AttributeName"] for k in definition["KeySchema"]] == ["pk", "sk"]
        assert {i["IndexName"] for i in definition["LocalSecondaryIndexes"]} == {
            "ByStatusIndex",
            "ByPriorityIndex",
        }
        assert [i["IndexName"] for i in definition["GlobalSecondaryIndexes"]] == [
            "AwaitingApprovalIndex",
            "ByDueDateIndex",
        ]
        assert definition["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert definition["BillingMode"] == "PAY_PER_REQUEST"

    def test_the_due_date_index_is_sparse_sharded_and_keys_only(self) -> None:
        definition = table_definition("tasks")
        (index,) = [
            i for i in definition["GlobalSecondaryIndexes"] if i["IndexName"] == "ByDueDateIndex"
        ]
        assert index["KeySchema"] == [
            {"AttributeName": "gsi2pk", "KeyType": "HASH"},
            {"AttributeName": "gsi2sk", "KeyType": "RANGE"},
        ]
        assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
        due = date(2030, 1, 5)
        task = Task.new(
            id=TaskId("01JD00000000000000000000AB"),
            owner_id=UserId("a"),
            title="t",
            now=NOW,
            due_date=due,
        )
        item = to_item(task)
        assert item.due_key == f"DUE#2030-01-05#{due_shard(task.id)}"
        assert item.remind_key == "2030-01-04T00:00:00.000000Z"
        done = task.transition_to(Status.IN_PROGRESS, NOW).transition_to(Status.COMPLETED, NOW)
        for unreminded in (attrs.evolve(task, due_date=None), done):
            values = to_item(unreminded).attribute_values  # PynamoDB types both as str
            assert (values.get("due_key"), values.get("remind_key")) == (None, None)
        assert from_item(item) == task

    def test_the_table_stays_within_dynamodbs_index_limits(self) -> None:
        """botocore's CreateTable documentation: "One or more global secondary indexes (the
        maximum is 20)", "One or more local secondary indexes (the maximum is 5)"."""
        definition = table_definition("tasks")
        assert len(definition["GlobalSecondaryIndexes"]) <= 20
        assert len(definition["LocalSecondaryIndexes"]) <= 5

    def test_shards_are_stable_and_spread(self) -> None:
        ids = [f"01JD{n:022d}" for n in range(800)]
        counts = [sum(1 for i in ids if due_shard(i) == s) for s in range(DUE_SHARDS)]
        assert min(counts) > 800 / DUE_SHARDS / 2, counts
        # CRC-32, the same in every process (Python's `hash` of a str is salted per process).
        assert due_shard("01JD0000000000000000000001") == 6


class TestErrors:
    def test_engine_down_is_unavailable(self) -> None:
        with DynamoDBLocal() as engine:
            table = f"t-{uuid.uuid4().hex[:8]}"
            create_table(engine.client(), table)
            repository = DynamoTaskRepository(table, endpoint_url=engine.endpoint_url)
            stats = DynamoStatsStore(table, endpoint_url=engine.endpoint_url)
        with pytest.raises(Unavailable):
            repository.get(UserId("alice"), TaskId("01JD00000000000000000000AB"))
        with pytest.raises(Unavailable):
            repository.add(sample_task())
        with pytest.raises(Unavailable):
            stats.get(UserId("alice"))

    @pytest.mark.parametrize(
        "code", ["ThrottlingException", "ProvisionedThroughputExceededException"]
    )
    def test_throttling_is_unavailable(self, dynamodb_local, repository, code: str) -> None:
        repository = DynamoTaskRepository(
            repository.table_name, endpoint_url=dynamodb_local.endpoint_url, retries=1
        )
        injector = Injector(400, code)
        repository.models.connection.client.meta.events.register("before-send.dynamodb", injector)
        try:
            with pytest.raises(Unavailable, match=code):
                repository.get(UserId("alice"), TaskId("01JD00000000000000000000AB"))
            with pytest.raises(Unavailable):
                repository.save(sample_task(), expected_version=1)
        finally:
            repository.models.connection.client.meta.events.unregister(
                "before-send.dynamodb", injector
            )
        assert injector.calls == 4  # two calls, each tried twice (retries=1)

    def test_validation_error_is_storage_rejected(self, repository) -> None:
        injector = Injector(400, "ValidationException")
        repository.models.connection.client.meta.events.register("before-send.dynamodb", injector)
        try:
            with pytest.raises(StorageRejected, match="storage rejected"):
                repository.add(sample_task())
        finally:
            repository.models.connection.client.meta.events.unregister(
                "before-send.dynamodb", injector
            )

    def test_stats_errors_are_domain_errors(self, dynamodb_local, repository) -> None:
        stats = DynamoStatsStore(repository.table_name, endpoint_url=dynamodb_local.endpoint_url)
        client = stats._client
        for code, error in (
            ("ThrottlingException", Unavailable),
            ("ValidationException", StorageRejected),
        ):
            injector = Injector(400, code)
            client.meta.events.register("before-send.dynamodb", injector)
            try:
                with pytest.raises(error):
                    stats.apply(UserId("a"), "e1", StatsDelta(status_counts={"pending": 1}))
            finally:
                client.meta.events.unregister("before-send.dynamodb", injector)
        assert stats.apply(UserId("a"), "e1", StatsDelta(status_counts={"pending": 1}))
        assert stats.get(UserId("a")).by_status == {"pending": 1}


class TestStatsConcurrency:
    def test_concurrent_events_of_one_user_are_all_applied_at_once(
        self, dynamodb_local, repository
    ) -> None:
        """Consumers run concurrently: every transaction on one user's stats item applies
        (none refused, no ADD lost), each event once."""
        from concurrent.futures import ThreadPoolExecutor

        stats = DynamoStatsStore(repository.table_name, endpoint_url=dynamodb_local.endpoint_url)
        owner = UserId(f"u-{uuid.uuid4().hex[:6]}")
        events = 64

        def apply(n: int) -> bool:
            return stats.apply(owner, f"e{n}", StatsDelta(status_counts={"pending": 1}))

        with ThreadPoolExecutor(16) as pool:
            applied = list(pool.map(apply, range(events)))
        assert applied == [True] * events
        assert stats.get(owner).by_status == {"pending": events}
        assert not stats.apply(owner, "e0", StatsDelta(status_counts={"pending": 1}))
