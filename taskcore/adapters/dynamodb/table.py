"""The table: its key scheme, its PynamoDB models, its definition and its low-level client.

Everything that knows how an item's keys are spelled is here; the repositories, the stream
decoding and the approval records build and read keys only through these helpers.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeVar, cast

import attrs
from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    KeysOnlyProjection,
    LocalSecondaryIndex,
)
from pynamodb.models import Model

from taskcore.adapters import clients
from taskcore.adapters.dynamodb.errors import storage_errors
from taskcore.adapters.stream_filters import EXPORT_PREFIX as EXPORT_PREFIX  # noqa: PLC0414
from taskcore.adapters.stream_filters import TASK_PREFIX as TASK_PREFIX  # noqa: PLC0414
from taskcore.errors import Unavailable

# -- keys -------------------------------------------------------------------------------------

USER_PREFIX = "USER#"
# TASK_PREFIX and EXPORT_PREFIX: defined in `taskcore.adapters.stream_filters` (the stream's
# filters, which the manifest reads without loading PynamoDB, match them), re-exported here.
STATS_SK = "STATS"
AWAITING_APPROVAL = "AWAITING_APPROVAL"
"""The approvers' queue: the sparse GSI's partition key (shard 0's, the only one by default)."""
TTL_ATTRIBUTE = "expiresAt"
"""DynamoDB's TTL attribute (epoch seconds) on the items that expire."""
DUE_PREFIX = "DUE#"
DUE_SHARDS = 8
"""Partitions one due date's reminders are spread over (by a hash of the task id): a day's
entries in one index partition would put every write of tasks due that day on it (a partition
takes at most 1,000 writes a second, and a throttled index throttles the table's writes); the
sweep reads all of them, one Query each."""


def user_pk(owner_id: str) -> str:
    return f"{USER_PREFIX}{owner_id}"


def owner_of(pk: str) -> str:
    """The owner's id in a `USER#<owner>` partition key."""
    return pk.removeprefix(USER_PREFIX)


def task_sk(task_id: str) -> str:
    return f"{TASK_PREFIX}{task_id}"


def export_sk(export_id: str) -> str:
    return f"{EXPORT_PREFIX}{export_id}"


def idempotency_sk(key: str) -> str:
    return f"IDEMP#{key}"


def event_sk(event_id: str) -> str:
    """An applied event's mark (stats under the owner; event markers under the consumer)."""
    return f"EVENT#{event_id}"


def approval_sk(task_id: str) -> str:
    return f"APPROVAL#{task_id}"


def marker_pk(consumer: str) -> str:
    return f"MARKER#{consumer}"


def approval_pk(shard: int) -> str:
    """The approvers' queue's partition key of `shard` (`taskcore.approval_queue`): shard 0 is
    `AWAITING_APPROVAL`, the one-shard queue's key, so a stack's existing entries stay valid
    under any number of shards; shard s > 0 is `AWAITING_APPROVAL#<s>`."""
    return AWAITING_APPROVAL if shard == 0 else f"{AWAITING_APPROVAL}#{shard}"


def due_shard(task_id: str) -> int:
    """The task's shard of its due date's index entries: stable across processes and
    deploys (CRC-32, not Python's salted `hash`)."""
    return zlib.crc32(task_id.encode()) % DUE_SHARDS


def due_pk(day: date, shard: int) -> str:
    """The due-date index's partition key: `DUE#<yyyy-mm-dd>#<shard>`."""
    return f"{DUE_PREFIX}{day.isoformat()}#{shard}"


def iso(moment: datetime) -> str:
    """How the items store a time: ISO-8601 in UTC, to the microsecond."""
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- models -----------------------------------------------------------------------------------


class ByStatusIndex(LocalSecondaryIndex["TaskItem"]):
    class Meta:
        index_name = "ByStatusIndex"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    status_key = UnicodeAttribute(range_key=True, attr_name="lsi1sk")


class ByPriorityIndex(LocalSecondaryIndex["TaskItem"]):
    class Meta:
        index_name = "ByPriorityIndex"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    priority_key = UnicodeAttribute(range_key=True, attr_name="lsi2sk")


class AwaitingApprovalIndex(GlobalSecondaryIndex["TaskItem"]):
    """Sparse: only tasks awaiting approval carry `gsi1pk`."""

    class Meta:
        index_name = "AwaitingApprovalIndex"
        projection = AllProjection()

    approval_queue = UnicodeAttribute(hash_key=True, attr_name="gsi1pk")
    sk = UnicodeAttribute(range_key=True)


class ByDueDateIndex(GlobalSecondaryIndex["TaskItem"]):
    """Sparse: only open tasks with a due date carry `gsi2pk` (`DUE#<due date>#<shard>`), and
    `gsi2sk`, when their reminder becomes due (ISO-8601 UTC, so it sorts as time does).
    Keys only: the sweep re-reads each task (strongly consistent) before it reminds, so an
    entry is ~100 bytes: one write unit to add or remove, two to move (a new due date, or an
    edit on the day before it)."""

    class Meta:
        index_name = "ByDueDateIndex"
        projection = KeysOnlyProjection()

    due_key = UnicodeAttribute(hash_key=True, attr_name="gsi2pk")
    remind_key = UnicodeAttribute(range_key=True, attr_name="gsi2sk")


class AttachmentMap(MapAttribute[str, Any]):
    id = UnicodeAttribute()
    filename = UnicodeAttribute()
    content_type = UnicodeAttribute(attr_name="contentType")
    size = NumberAttribute()
    created_at = UnicodeAttribute(attr_name="createdAt")


class TableItem(Model):
    """Keys shared by every item in the table."""

    class Meta:
        table_name = "tasks"  # replaced per deployment by `bind_models`

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class TaskItem(TableItem):
    """A stored task (the PynamoDB model); `Task` is the entity. Mapped by to_item/from_item."""

    status_key = UnicodeAttribute(attr_name="lsi1sk")
    priority_key = UnicodeAttribute(attr_name="lsi2sk")
    approval_queue = UnicodeAttribute(attr_name="gsi1pk", null=True)
    due_key = UnicodeAttribute(attr_name="gsi2pk", null=True)
    remind_key = UnicodeAttribute(attr_name="gsi2sk", null=True)
    by_status = ByStatusIndex()
    by_priority = ByPriorityIndex()
    awaiting_approval = AwaitingApprovalIndex()
    by_due_date = ByDueDateIndex()

    task_id = UnicodeAttribute(attr_name="taskId")
    owner_id = UnicodeAttribute(attr_name="ownerId")
    title = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    priority = UnicodeAttribute()
    approval = UnicodeAttribute()
    tags = ListAttribute(of=UnicodeAttribute, null=True)
    due_date = UnicodeAttribute(attr_name="dueDate", null=True)
    created_at = UnicodeAttribute(attr_name="createdAt")
    updated_at = UnicodeAttribute(attr_name="updatedAt")
    completed_at = UnicodeAttribute(attr_name="completedAt", null=True)
    approval_decided_by = UnicodeAttribute(attr_name="approvalDecidedBy", null=True)
    approval_decided_at = UnicodeAttribute(attr_name="approvalDecidedAt", null=True)
    attachments = ListAttribute(of=AttachmentMap, null=True)
    version = NumberAttribute()
    # When DynamoDB's TTL removes a completed task, which the stream turns into `TaskArchived`
    # (`Task.archive_at`); absent on every other task.
    expires_at = TTLAttribute(attr_name=TTL_ATTRIBUTE, null=True)


class IdempotencyItem(TableItem):
    fingerprint = UnicodeAttribute()
    task = MapAttribute[str, Any]()
    # DynamoDB's TTL needs epoch seconds; the exact expiry (to the microsecond) is what the
    # record means and what the write condition compares, as an ISO-8601 UTC string.
    expires_at = TTLAttribute(attr_name=TTL_ATTRIBUTE)
    expires_at_exact = UnicodeAttribute(attr_name="expiresAtExact")


class ExportItem(TableItem):
    """A stored export record (the PynamoDB model); `Export` is the entity. It carries none of
    the index keys, so it never shows up in a task listing or the approvers' queue."""

    export_id = UnicodeAttribute(attr_name="exportId")
    owner_id = UnicodeAttribute(attr_name="ownerId")
    status = UnicodeAttribute()
    items_written = NumberAttribute(attr_name="itemsWritten")
    bytes_written = NumberAttribute(attr_name="bytesWritten")
    attempts = NumberAttribute()
    upload_id = UnicodeAttribute(attr_name="uploadId", null=True)
    error = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(attr_name="createdAt")
    updated_at = UnicodeAttribute(attr_name="updatedAt")
    started_at = UnicodeAttribute(attr_name="startedAt", null=True)
    completed_at = UnicodeAttribute(attr_name="completedAt", null=True)
    version = NumberAttribute()


M = TypeVar("M", bound=Model)


@attrs.frozen
class Models:
    """The model classes bound to one table on one endpoint."""

    task: type[TaskItem]
    idempotency: type[IdempotencyItem]

    @property
    def connection(self) -> Connection:
        return self.task._get_connection().connection


def bind_models(
    table_name: str, endpoint_url: str | None, region: str | None, retries: int = 3
) -> Models:
    """Subclasses of the models whose Meta points at this table (PynamoDB binds per class),
    the same ones for every caller that names the same table, endpoint, region and retries.

    `retries` bounds botocore's retries of throttled or failed requests (with backoff).
    """
    # The cache is on the inner function, keyed by all four values: `functools.cache` on this
    # one would key `bind_models(t, e, r)` and `bind_models(t, e, r, 3)` apart, and the stats
    # store (three arguments) and the task repository (four) would each build a client.
    return _bind_models(table_name, endpoint_url, region, retries)


@functools.cache
def _bind_models(
    table_name: str, endpoint_url: str | None, region: str | None, retries: int
) -> Models:
    meta: dict[str, Any] = {
        "table_name": table_name,
        "region": region,
        "host": endpoint_url,
        "max_retry_attempts": retries,
    }
    if endpoint_url is not None:
        meta["region"] = region or "us-east-1"  # a local engine ignores it; botocore needs one
        # DynamoDB Local and moto accept any credentials; never send real ones to them.
        meta |= {"aws_access_key_id": "local", "aws_secret_access_key": "local"}

    def bound(model: type[M]) -> type[M]:
        return cast(type[M], type(model.__name__, (model,), {"Meta": type("Meta", (), meta)}))

    task, idempotency = bound(TaskItem), bound(IdempotencyItem)
    # One connection (one botocore client) per table: both models share the key schema.
    idempotency._connection = task._get_connection()
    models = Models(task=task, idempotency=idempotency)
    # PynamoDB builds its client from a session of its own (per thread: this one's is the one
    # Lambda's handler runs in); sharing the process's data loader saves its client a second
    # load of botocore's data.
    clients.share_loader(models.connection.session)
    clients.declare(lambda: models.connection.client)  # built on first use, or before a snapshot
    return models


@functools.cache
def bind_export_model(
    table_name: str, endpoint_url: str | None, region: str | None, retries: int = 3
) -> type[ExportItem]:
    """`ExportItem` bound to the table `bind_models` binds, sharing its one connection."""
    models = bind_models(table_name, endpoint_url, region, retries)
    meta = type("Meta", (models.task.Meta,), {})
    bound = cast(type[ExportItem], type("ExportItem", (ExportItem,), {"Meta": meta}))
    bound._connection = models.task._get_connection()
    return bound


# -- the table --------------------------------------------------------------------------------


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments (boto3 shape) for the table: THE definition. Tests create tables
    from it and `infra/` deploys it, so the two cannot drift."""
    schema = TaskItem._get_schema()
    attributes = {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}

    def index(spec: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "IndexName": spec["index_name"],
            "KeySchema": spec["key_schema"],
            "Projection": {"ProjectionType": spec["projection"]["ProjectionType"]},
        }

    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in sorted(attributes.items())
        ],
        "KeySchema": schema["key_schema"],
        "LocalSecondaryIndexes": [index(i) for i in schema["local_secondary_indexes"]],
        "GlobalSecondaryIndexes": [index(i) for i in schema["global_secondary_indexes"]],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def create_table(client: Any, table_name: str) -> None:
    """Create the table (keys, indexes, stream) and turn on TTL; wait until it is active."""
    client.create_table(**table_definition(table_name))
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )


@attrs.define
class TableClient:
    """The table's low-level client (PynamoDB's connection's botocore client), for the items
    without a model: requests in DynamoDB JSON, failures mapped by `storage_errors` (a failed
    condition raised as `ConditionFailed`; a rejected request, like every other failure, as
    `Unavailable`, which is what these items' callers have always been told)."""

    table_name: str
    endpoint_url: str | None = None
    region: str | None = None
    _models: Models = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        self._models = bind_models(self.table_name, self.endpoint_url, self.region)

    @property
    def client(self) -> Any:
        return self._models.connection.client

    def call(self, operation: str, **kwargs: Any) -> Any:
        """`operation` (UpdateItem as "update_item", ...) on this table."""
        with storage_errors(rejected_as=Unavailable):
            return getattr(self.client, operation)(TableName=self.table_name, **kwargs)
