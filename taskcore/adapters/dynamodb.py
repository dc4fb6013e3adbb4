"""DynamoDB adapters (PynamoDB): the task repository and the stats store, on one table.

Item layout (one table, tenant isolation by construction: every key starts with the owner):

| item        | pk           | sk               | also                                     |
|-------------|--------------|------------------|------------------------------------------|
| task        | USER#<owner> | TASK#<ulid>      | lsi1sk=<status>#<ulid>, lsi2sk=<prio>#<ulid> |
|             |              |                  | gsi1pk=AWAITING_APPROVAL while awaiting  |
| idempotency | USER#<owner> | IDEMP#<key>      | expiresAt (TTL)                          |
| stats       | USER#<owner> | STATS            | counters n#<status>, w#<week>, h#<bucket>|
| event mark  | USER#<owner> | EVENT#<event id> | expiresAt (TTL): stats apply once        |

Task ids are ULIDs, so sorting on sk is sorting by creation time. Every read of the base table
and its LSIs is strongly consistent; only the approvers' queue (a sparse GSI) is eventual.

botocore/PynamoDB errors never leave this module: they become `taskcore.errors` types.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, NoReturn, TypeVar, cast

import attrs
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import (
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from taskcore.cursors import Position
from taskcore.errors import (
    ConcurrentModification,
    Conflict,
    DomainError,
    InvalidCursor,
    NotFound,
    StorageRejected,
    Unavailable,
)
from taskcore.model import (
    Approval,
    Attachment,
    AttachmentId,
    Export,
    ExportId,
    ExportStatus,
    Priority,
    Status,
    Task,
    TaskId,
    UserId,
)
from taskcore.ports import Clock, IdempotencyKeyTaken, IdempotencyRecord, StoredPage
from taskcore.serialization import task_from_json, task_to_json
from taskcore.stats import StatsDelta, UserStats
from taskcore.system import SystemClock

AWAITING_APPROVAL = "AWAITING_APPROVAL"
EVENT_MARK_TTL = timedelta(days=7)
THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflictException",
    }
)


def user_pk(owner_id: str) -> str:
    return f"USER#{owner_id}"


def task_sk(task_id: str) -> str:
    return f"TASK#{task_id}"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


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
    by_status = ByStatusIndex()
    by_priority = ByPriorityIndex()
    awaiting_approval = AwaitingApprovalIndex()

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


class IdempotencyItem(TableItem):
    fingerprint = UnicodeAttribute()
    task = MapAttribute[str, Any]()
    # DynamoDB's TTL needs epoch seconds; the exact expiry (to the microsecond) is what the
    # record means and what the write condition compares, as an ISO-8601 UTC string.
    expires_at = TTLAttribute(attr_name="expiresAt")
    expires_at_exact = UnicodeAttribute(attr_name="expiresAtExact")


M = TypeVar("M", bound=Model)


def to_item(task: Task, model: type[TaskItem] = TaskItem) -> TaskItem:
    return model(
        user_pk(task.owner_id),
        task_sk(task.id),
        status_key=f"{task.status}#{task.id}",
        priority_key=f"{task.priority}#{task.id}",
        approval_queue=AWAITING_APPROVAL if task.awaiting_approval else None,
        task_id=task.id,
        owner_id=task.owner_id,
        title=task.title,
        description=task.description or None,
        status=task.status.value,
        priority=task.priority.value,
        approval=task.approval.value,
        tags=list(task.tags) or None,
        due_date=task.due_date.isoformat() if task.due_date else None,
        created_at=_iso(task.created_at),
        updated_at=_iso(task.updated_at),
        completed_at=_iso(task.completed_at) if task.completed_at else None,
        approval_decided_by=task.approval_decided_by,
        approval_decided_at=_iso(task.approval_decided_at) if task.approval_decided_at else None,
        attachments=[
            AttachmentMap(
                id=a.id,
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                created_at=_iso(a.created_at),
            )
            for a in task.attachments
        ]
        or None,
        version=task.version,
    )


def from_item(item: TaskItem) -> Task:
    return Task(
        id=TaskId(item.task_id),
        owner_id=UserId(item.owner_id),
        title=item.title,
        description=item.description or "",
        status=Status(item.status),
        priority=Priority(item.priority),
        approval=Approval(item.approval),
        tags=tuple(cast(list[str], item.tags or [])),
        due_date=date.fromisoformat(item.due_date) if item.due_date else None,
        created_at=_from_iso(item.created_at),
        updated_at=_from_iso(item.updated_at),
        completed_at=_from_iso(item.completed_at) if item.completed_at else None,
        approval_decided_by=UserId(item.approval_decided_by) if item.approval_decided_by else None,
        approval_decided_at=(
            _from_iso(item.approval_decided_at) if item.approval_decided_at else None
        ),
        attachments=tuple(
            Attachment(
                id=AttachmentId(a.id),
                filename=a.filename,
                content_type=a.content_type,
                size=int(a.size),
                created_at=_from_iso(a.created_at),
            )
            for a in item.attachments or ()
        ),
        version=int(item.version),
    )


def task_from_image(image: Mapping[str, Any]) -> Task | None:
    """A task from a DynamoDB stream image (DynamoDB JSON); None for non-task items."""
    if not str(image.get("sk", {}).get("S", "")).startswith("TASK#"):
        return None
    return from_item(TaskItem.from_raw_data(dict(image)))


@attrs.frozen
class Models:
    """The model classes bound to one table on one endpoint."""

    task: type[TaskItem]
    idempotency: type[IdempotencyItem]

    @property
    def connection(self) -> Connection:
        return self.task._get_connection().connection


@functools.cache
def bind_models(
    table_name: str, endpoint_url: str | None, region: str | None, retries: int = 3
) -> Models:
    """Subclasses of the models whose Meta points at this table (PynamoDB binds per class).

    `retries` bounds botocore's retries of throttled or failed requests (with backoff).
    """
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
    return Models(task=task, idempotency=idempotency)


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


TTL_ATTRIBUTE = "expiresAt"


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


def _code(error: PynamoDBException) -> str | None:
    return error.cause_response_code


def _raise_domain(error: PynamoDBException) -> NoReturn:
    code = _code(error)
    if code == "ValidationException":
        raise StorageRejected(
            f"storage rejected the request: {error.cause_response_message}"
        ) from error
    if code is None or code in THROTTLED:
        raise Unavailable(f"the task store is unavailable ({code or 'no connection'})") from error
    raise Unavailable(f"the task store failed ({code})") from error


@contextmanager
def _storage_errors() -> Iterator[None]:
    """Any PynamoDB error not handled by the caller becomes a domain error."""
    try:
        yield
    except DomainError:
        raise
    except PynamoDBException as error:
        _raise_domain(error)


def _position(key: Mapping[str, Mapping[str, str]] | None) -> Position | None:
    if not key:
        return None
    return {name: value["S"] for name, value in key.items()}


def _start_key(after: Position | None, owner_pk: str | None) -> dict[str, Any] | None:
    if after is None:
        return None
    if owner_pk is not None and after.get("pk") != owner_pk:
        raise InvalidCursor("was issued for another query")
    return {name: {"S": value} for name, value in after.items()}


@attrs.define
class DynamoTaskRepository:
    """`TaskRepository` on DynamoDB. Safe to share across threads; build once per container."""

    table_name: str
    endpoint_url: str | None = None
    region: str | None = None
    clock: Clock = attrs.field(factory=SystemClock)
    retries: int = 3
    models: Models = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.models = bind_models(self.table_name, self.endpoint_url, self.region, self.retries)

    def get(self, owner_id: UserId, task_id: TaskId) -> Task | None:
        with _storage_errors():
            try:
                item = self.models.task.get(
                    user_pk(owner_id), task_sk(task_id), consistent_read=True
                )
            except DoesNotExist:
                return None
        return from_item(item)

    def add(self, task: Task, idempotency: IdempotencyRecord | None = None) -> None:
        item = to_item(task, self.models.task)
        with _storage_errors():
            if idempotency is None:
                try:
                    item.save(condition=self.models.task.pk.does_not_exist())
                except PynamoDBException as error:
                    if _code(error) == "ConditionalCheckFailedException":
                        raise Conflict(f"task {task.id} already exists") from None
                    raise
                return
            self._add_idempotently(item, idempotency)

    def _add_idempotently(self, item: TaskItem, record: IdempotencyRecord) -> None:
        model = self.models.idempotency
        marker = model(
            user_pk(record.owner_id),
            f"IDEMP#{record.key}",
            fingerprint=record.fingerprint,
            task=task_to_json(record.task),
            expires_at=record.expires_at,
            expires_at_exact=_iso(record.expires_at),
        )
        now = _iso(self.clock.now())
        live_elsewhere = model.pk.does_not_exist() | (model.expires_at_exact <= now)
        try:
            with TransactWrite(connection=self.models.connection) as transaction:
                transaction.save(marker, condition=live_elsewhere)
                transaction.save(item, condition=self.models.task.pk.does_not_exist())
        except TransactWriteError as error:
            reasons = [r.code if r else None for r in error.cancellation_reasons]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                raise IdempotencyKeyTaken(self._read_record(record.owner_id, record.key)) from None
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                raise Conflict(f"task {item.task_id} already exists") from None
            raise

    def _read_record(self, owner_id: UserId, key: str) -> IdempotencyRecord:
        stored = self.models.idempotency.get(
            user_pk(owner_id), f"IDEMP#{key}", consistent_read=True
        )
        return IdempotencyRecord(
            owner_id=owner_id,
            key=key,
            fingerprint=stored.fingerprint,
            task=task_from_json(stored.task.as_dict()),
            expires_at=_from_iso(stored.expires_at_exact),
        )

    def _conditional(self, task: Task, write: Callable[[], object], expected: int) -> None:
        with _storage_errors():
            try:
                write()
            except PynamoDBException as error:
                if _code(error) != "ConditionalCheckFailedException":
                    raise
                if self.get(task.owner_id, task.id) is None:
                    raise NotFound(f"task {task.id} not found") from None
                raise ConcurrentModification(
                    f"task {task.id} is no longer at version {expected}"
                ) from None

    def save(self, task: Task, expected_version: int) -> None:
        item = to_item(task, self.models.task)
        condition = self.models.task.version == expected_version
        self._conditional(task, lambda: item.save(condition=condition), expected_version)

    def delete(self, task: Task) -> None:
        item = to_item(task, self.models.task)
        condition = self.models.task.version == task.version
        self._conditional(task, lambda: item.delete(condition=condition), task.version)

    def _query(
        self, hash_key: str, *, after: Position | None, owner: bool, **kwargs: Any
    ) -> StoredPage:
        """Exactly one Query request: one page, whatever the filter leaves of it."""
        with _storage_errors():
            data = self.models.task._get_connection().query(
                hash_key,
                exclusive_start_key=_start_key(after, hash_key if owner else None),
                **kwargs,
            )
        items = tuple(from_item(self.models.task.from_raw_data(raw)) for raw in data["Items"])
        return StoredPage(items=items, last_position=_position(data.get("LastEvaluatedKey")))

    def list_owned(
        self,
        owner_id: UserId,
        *,
        status: Status | None,
        priority: Priority | None,
        limit: int,
        after: Position | None,
    ) -> StoredPage:
        model = self.models.task
        kwargs: dict[str, Any] = {
            "limit": limit,
            "consistent_read": True,
            "scan_index_forward": False,
        }
        if status is not None:
            kwargs |= {
                "index_name": ByStatusIndex.Meta.index_name,
                "range_key_condition": model.status_key.startswith(f"{status}#"),
            }
            if priority is not None:
                kwargs["filter_condition"] = model.priority == priority.value
        elif priority is not None:
            kwargs |= {
                "index_name": ByPriorityIndex.Meta.index_name,
                "range_key_condition": model.priority_key.startswith(f"{priority}#"),
            }
        else:
            kwargs["range_key_condition"] = model.sk.startswith("TASK#")
        return self._query(user_pk(owner_id), after=after, owner=True, **kwargs)

    def list_awaiting_approval(self, *, limit: int, after: Position | None) -> StoredPage:
        return self._query(
            AWAITING_APPROVAL,
            after=after,
            owner=False,
            index_name=AwaitingApprovalIndex.Meta.index_name,
            limit=limit,
            scan_index_forward=True,
        )

    def get_awaiting_approval(self, task_id: TaskId) -> Task | None:
        page = self._query(
            AWAITING_APPROVAL,
            after=None,
            owner=False,
            index_name=AwaitingApprovalIndex.Meta.index_name,
            range_key_condition=self.models.task.sk == task_sk(task_id),
        )
        return page.items[0] if page.items else None


@attrs.define
class DynamoStatsStore:
    """`StatsStore` on the same table: flat counters updated with ADD, and a marker item per
    applied event, written in one transaction, so a redelivered event changes nothing."""

    table_name: str
    endpoint_url: str | None = None
    region: str | None = None
    clock: Clock = attrs.field(factory=SystemClock)
    STATS_SK: ClassVar[str] = "STATS"

    @property
    def _client(self) -> Any:
        connection = bind_models(self.table_name, self.endpoint_url, self.region).connection
        return connection.client

    def get(self, owner_id: UserId) -> UserStats:
        with _client_errors():
            item = self._client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": user_pk(owner_id)}, "sk": {"S": self.STATS_SK}},
                ConsistentRead=True,
            ).get("Item", {})
        counters = {name: int(value["N"]) for name, value in item.items() if "N" in value}
        return UserStats(
            owner_id=owner_id,
            by_status={k[2:]: v for k, v in counters.items() if k.startswith("n#")},
            completed_by_week={k[2:]: v for k, v in counters.items() if k.startswith("w#")},
            completion_histogram={int(k[2:]): v for k, v in counters.items() if k.startswith("h#")},
        )

    def apply(self, owner_id: UserId, event_id: str, delta: StatsDelta) -> bool:
        additions = {f"n#{status}": change for status, change in delta.status_counts.items()}
        if delta.completed_week is not None:
            additions[f"w#{delta.completed_week}"] = 1
        if delta.completion_bucket is not None:
            additions[f"h#{delta.completion_bucket}"] = 1
        names = {f"#a{i}": name for i, name in enumerate(additions)}
        values = {f":a{i}": {"N": str(change)} for i, change in enumerate(additions.values())}
        expires = int((self.clock.now() + EVENT_MARK_TTL).timestamp())
        pk = {"S": user_pk(owner_id)}
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {
                        "pk": pk,
                        "sk": {"S": f"EVENT#{event_id}"},
                        TTL_ATTRIBUTE: {"N": str(expires)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        if additions:
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"pk": pk, "sk": {"S": self.STATS_SK}},
                        "UpdateExpression": "ADD "
                        + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True)),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        try:
            with _client_errors():
                self._client.transact_write_items(TransactItems=items)
        except _AlreadyApplied:
            return False
        return True


class _AlreadyApplied(Exception):
    pass


@contextmanager
def _client_errors() -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
        if code == "TransactionCanceledException" and reasons[:1] == ["ConditionalCheckFailed"]:
            raise _AlreadyApplied from None
        if code == "ValidationException":
            raise StorageRejected(f"storage rejected the request: {error}") from error
        raise Unavailable(f"the task store is unavailable ({code})") from error
    except BotoCoreError as error:
        raise Unavailable(f"the task store is unavailable ({type(error).__name__})") from error


# -- exports ----------------------------------------------------------------------------------
# An export record: pk = USER#<owner>, sk = EXPORT#<ulid>. It carries none of the index keys
# (lsi1sk, lsi2sk, gsi1pk), so it never shows up in a task listing or the approvers' queue,
# and task listings on the base table only read `TASK#` keys. Its insertion is what the stream
# turns into `ExportRequested`.


def export_sk(export_id: str) -> str:
    return f"EXPORT#{export_id}"


class ExportItem(TableItem):
    """A stored export record (the PynamoDB model); `Export` is the entity."""

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


def export_to_item(export: Export, model: type[ExportItem] = ExportItem) -> ExportItem:
    return model(
        user_pk(export.owner_id),
        export_sk(export.id),
        export_id=export.id,
        owner_id=export.owner_id,
        status=export.status.value,
        items_written=export.items_written,
        bytes_written=export.bytes_written,
        attempts=export.attempts,
        upload_id=export.upload_id,
        error=export.error,
        created_at=_iso(export.created_at),
        updated_at=_iso(export.updated_at),
        started_at=_iso(export.started_at) if export.started_at else None,
        completed_at=_iso(export.completed_at) if export.completed_at else None,
        version=export.version,
    )


def export_from_item(item: ExportItem) -> Export:
    return Export(
        id=ExportId(item.export_id),
        owner_id=UserId(item.owner_id),
        status=ExportStatus(item.status),
        items_written=int(item.items_written),
        bytes_written=int(item.bytes_written),
        attempts=int(item.attempts),
        upload_id=item.upload_id,
        error=item.error,
        created_at=_from_iso(item.created_at),
        updated_at=_from_iso(item.updated_at),
        started_at=_from_iso(item.started_at) if item.started_at else None,
        completed_at=_from_iso(item.completed_at) if item.completed_at else None,
        version=int(item.version),
    )


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


@attrs.define
class DynamoExportRepository:
    """`ExportRepository` on the tasks table. Every write is conditional: `add` on absence (a
    redelivered request cannot reset an export), `save` on the version read."""

    table_name: str
    endpoint_url: str | None = None
    region: str | None = None
    retries: int = 3
    model: type[ExportItem] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.model = bind_export_model(
            self.table_name, self.endpoint_url, self.region, self.retries
        )

    def add(self, export: Export) -> None:
        item = export_to_item(export, self.model)
        with _storage_errors():
            try:
                item.save(condition=self.model.pk.does_not_exist())
            except PynamoDBException as error:
                if _code(error) == "ConditionalCheckFailedException":
                    raise Conflict(f"export {export.id} already exists") from None
                raise

    def get(self, owner_id: UserId, export_id: ExportId) -> Export | None:
        with _storage_errors():
            try:
                item = self.model.get(user_pk(owner_id), export_sk(export_id), consistent_read=True)
            except DoesNotExist:
                return None
        return export_from_item(item)

    def save(self, export: Export, expected_version: int) -> None:
        item = export_to_item(export, self.model)
        with _storage_errors():
            try:
                item.save(condition=self.model.version == expected_version)
            except PynamoDBException as error:
                if _code(error) != "ConditionalCheckFailedException":
                    raise
                if self.get(export.owner_id, export.id) is None:
                    raise NotFound(f"export {export.id} not found") from None
                raise ConcurrentModification(
                    f"export {export.id} is no longer at version {expected_version}"
                ) from None
