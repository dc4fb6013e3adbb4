"""Tasks on the table: `DynamoTaskRepository`, the task's item mapping (`to_item`,
`from_item`, `task_from_image`) and the idempotency records written with a task.

A task is `pk = USER#<owner>`, `sk = TASK#<ulid>`, with `lsi1sk = <status>#<ulid>`,
`lsi2sk = <priority>#<ulid>`, only while it awaits approval `gsi1pk = AWAITING_APPROVAL` (or,
in a stack with N approval-queue shards, its shard's `AWAITING_APPROVAL#<s>`: `approval_pk`,
`taskcore.approval_queue`), and only while it is open with a due date `gsi2pk = DUE#<due
date>#<shard>` and `gsi2sk = <when its reminder becomes due>` (the reminder sweep's index); a
completed task of a stack that archives carries `expiresAt`, its TTL (`to_item`). Task ids
are ULIDs, so sorting on sk is sorting by creation time. Every read of the base table and its
LSIs is strongly consistent; only the approvers' queue and the due-date index (sparse GSIs) are
eventual, and the sweep re-reads what the due-date index names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import attrs
from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from taskcore.adapters.dynamodb.errors import ConditionFailed, storage_errors
from taskcore.adapters.dynamodb.table import (
    AWAITING_APPROVAL,
    DUE_SHARDS,
    TASK_PREFIX,
    AttachmentMap,
    AwaitingApprovalIndex,
    ByDueDateIndex,
    ByPriorityIndex,
    ByStatusIndex,
    Models,
    TaskItem,
    approval_pk,
    bind_models,
    due_pk,
    due_shard,
    from_iso,
    idempotency_sk,
    iso,
    task_sk,
    user_pk,
)
from taskcore.approval_queue import (
    DEFAULT_SHARDS,
    QueuePosition,
    ShardRead,
    check_shards,
    merged_page,
    position_from_map,
    position_to_map,
    shard_of,
)
from taskcore.cursors import Position
from taskcore.errors import ConcurrentModification, Conflict, InvalidCursor, NotFound, Unavailable
from taskcore.model import (
    Approval,
    Attachment,
    AttachmentId,
    Priority,
    Status,
    Task,
    TaskId,
    UserId,
)
from taskcore.ports import Clock, IdempotencyKeyTaken, IdempotencyRecord, StoredPage
from taskcore.reminders import reminder_due_at
from taskcore.serialization import task_from_json, task_to_json
from taskcore.system import SystemClock

BATCH_GET_MAX = 100  # keys per BatchGetItem (DynamoDB's limit)
BATCH_GET_ATTEMPTS = 5  # of a batch's unprocessed keys, backing off from 50 ms, then Unavailable


def to_item(
    task: Task,
    model: type[TaskItem] = TaskItem,
    archive_after: timedelta | None = None,
    approval_shards: int = DEFAULT_SHARDS,
) -> TaskItem:
    """The item of a task; a completed one carries its TTL expiry when the stack archives
    completed tasks `archive_after` their completion. Writes replace the whole item, so a
    task reopened (or one written while the stack archives nothing) loses its expiry. A task
    awaiting approval is in its shard of the approvers' queue (`approval_shards` of them)."""
    remind_at = reminder_due_at(task)
    return model(
        user_pk(task.owner_id),
        task_sk(task.id),
        status_key=f"{task.status}#{task.id}",
        priority_key=f"{task.priority}#{task.id}",
        approval_queue=(
            approval_pk(shard_of(task.id, approval_shards)) if task.awaiting_approval else None
        ),
        due_key=(
            due_pk(task.due_date, due_shard(task.id))
            if remind_at is not None and task.due_date is not None
            else None
        ),
        remind_key=iso(remind_at) if remind_at is not None else None,
        task_id=task.id,
        owner_id=task.owner_id,
        title=task.title,
        description=task.description or None,
        status=task.status.value,
        priority=task.priority.value,
        approval=task.approval.value,
        tags=list(task.tags) or None,
        due_date=task.due_date.isoformat() if task.due_date else None,
        created_at=iso(task.created_at),
        updated_at=iso(task.updated_at),
        completed_at=iso(task.completed_at) if task.completed_at else None,
        approval_decided_by=task.approval_decided_by,
        approval_decided_at=iso(task.approval_decided_at) if task.approval_decided_at else None,
        attachments=[
            AttachmentMap(
                id=a.id,
                filename=a.filename,
                content_type=a.content_type,
                size=a.size,
                created_at=iso(a.created_at),
            )
            for a in task.attachments
        ]
        or None,
        version=task.version,
        expires_at=task.archive_at(archive_after),
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
        created_at=from_iso(item.created_at),
        updated_at=from_iso(item.updated_at),
        completed_at=from_iso(item.completed_at) if item.completed_at else None,
        approval_decided_by=UserId(item.approval_decided_by) if item.approval_decided_by else None,
        approval_decided_at=(
            from_iso(item.approval_decided_at) if item.approval_decided_at else None
        ),
        attachments=tuple(
            Attachment(
                id=AttachmentId(a.id),
                filename=a.filename,
                content_type=a.content_type,
                size=int(a.size),
                created_at=from_iso(a.created_at),
            )
            for a in item.attachments or ()
        ),
        version=int(item.version),
    )


def task_from_image(image: Mapping[str, Any]) -> Task | None:
    """A task from a DynamoDB stream image (DynamoDB JSON); None for non-task items."""
    if not str(image.get("sk", {}).get("S", "")).startswith(TASK_PREFIX):
        return None
    return from_item(TaskItem.from_raw_data(dict(image)))


def _position(key: Mapping[str, Mapping[str, str]] | None) -> Position | None:
    if not key:
        return None
    return {name: value["S"] for name, value in key.items()}


def _queue_position(after: Position) -> QueuePosition:
    """A queue position from a cursor: a sharded one, or the one-shard queue's
    LastEvaluatedKey (whose `sk` is the last task handed out)."""
    if "after" in after:
        return position_from_map(after)
    last = after.get("sk", "")
    if not (isinstance(last, str) and last.startswith(TASK_PREFIX) and last != TASK_PREFIX):
        raise InvalidCursor("is malformed")
    return QueuePosition(last.removeprefix(TASK_PREFIX))


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
    due_page_size: int | None = None
    """Index entries per Query of the due-date index (None: DynamoDB's 1 MB pages)."""
    archive_after: timedelta | None = None
    """The stack's `archiveCompletedAfterDays` (None: never): completed tasks are written with
    their expiry, and DynamoDB's TTL archives them then (`to_item`)."""
    approval_shards: int = attrs.field(default=DEFAULT_SHARDS)
    """The stack's `approvalQueueShards`: the approvers' queue's partitions (docs/scale.md)."""
    models: Models = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.models = bind_models(self.table_name, self.endpoint_url, self.region, self.retries)
        check_shards(self.approval_shards)

    def _item(self, task: Task) -> TaskItem:
        return to_item(task, self.models.task, self.archive_after, self.approval_shards)

    def get(self, owner_id: UserId, task_id: TaskId) -> Task | None:
        with storage_errors():
            try:
                item = self.models.task.get(
                    user_pk(owner_id), task_sk(task_id), consistent_read=True
                )
            except DoesNotExist:
                return None
        return from_item(item)

    def add(self, task: Task, idempotency: IdempotencyRecord | None = None) -> None:
        item = self._item(task)
        if idempotency is not None:
            self._add_idempotently(item, idempotency)
            return
        try:
            with storage_errors():
                item.save(condition=self.models.task.pk.does_not_exist())
        except ConditionFailed:
            raise Conflict(f"task {task.id} already exists") from None

    def _add_idempotently(self, item: TaskItem, record: IdempotencyRecord) -> None:
        model = self.models.idempotency
        marker = model(
            user_pk(record.owner_id),
            idempotency_sk(record.key),
            fingerprint=record.fingerprint,
            task=task_to_json(record.task),
            expires_at=record.expires_at,
            expires_at_exact=iso(record.expires_at),
        )
        now = iso(self.clock.now())
        live_elsewhere = model.pk.does_not_exist() | (model.expires_at_exact <= now)
        try:
            with storage_errors(), TransactWrite(connection=self.models.connection) as transaction:
                transaction.save(marker, condition=live_elsewhere)
                transaction.save(item, condition=self.models.task.pk.does_not_exist())
        except ConditionFailed as failed:
            if failed.failed_at(0):  # a live record holds the key
                raise IdempotencyKeyTaken(self._read_record(record.owner_id, record.key)) from None
            raise Conflict(f"task {item.task_id} already exists") from None

    def _read_record(self, owner_id: UserId, key: str) -> IdempotencyRecord:
        with storage_errors():
            stored = self.models.idempotency.get(
                user_pk(owner_id), idempotency_sk(key), consistent_read=True
            )
        return IdempotencyRecord(
            owner_id=owner_id,
            key=key,
            fingerprint=stored.fingerprint,
            task=task_from_json(stored.task.as_dict()),
            expires_at=from_iso(stored.expires_at_exact),
        )

    def _conditional(self, task: Task, write: Callable[[], object], expected: int) -> None:
        try:
            with storage_errors():
                write()
        except ConditionFailed:
            if self.get(task.owner_id, task.id) is None:
                raise NotFound(f"task {task.id} not found") from None
            raise ConcurrentModification(
                f"task {task.id} is no longer at version {expected}"
            ) from None

    def save(self, task: Task, expected_version: int) -> None:
        item = self._item(task)
        condition = self.models.task.version == expected_version
        self._conditional(task, lambda: item.save(condition=condition), expected_version)

    def delete(self, task: Task) -> None:
        item = self._item(task)
        condition = self.models.task.version == task.version
        self._conditional(task, lambda: item.delete(condition=condition), task.version)

    def _query(
        self, hash_key: str, *, after: Position | None, owner: bool, **kwargs: Any
    ) -> StoredPage:
        """Exactly one Query request: one page, whatever the filter leaves of it."""
        with storage_errors():
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
            kwargs["range_key_condition"] = model.sk.startswith(TASK_PREFIX)
        return self._query(user_pk(owner_id), after=after, owner=True, **kwargs)

    def list_awaiting_approval(self, *, limit: int, after: Position | None) -> StoredPage:
        """One shard: one Query, resumed at DynamoDB's LastEvaluatedKey, as always. N shards:
        the ordered merge of one Query per shard not known to be exhausted
        (`taskcore.approval_queue.merged_page`); a position of either kind is resumed by
        either (the stack's shard count may have changed since the cursor was issued)."""
        if self.approval_shards == 1 and (after is None or "after" not in after):
            return self._query(
                AWAITING_APPROVAL,
                after=after,
                owner=False,
                index_name=AwaitingApprovalIndex.Meta.index_name,
                limit=limit,
                scan_index_forward=True,
            )
        start = _queue_position(after) if after is not None else None
        items, following = merged_page(self.approval_shards, limit, start, self._read_shard)
        return StoredPage(
            items=items,
            last_position=position_to_map(following) if following is not None else None,
        )

    def _read_shard(self, shard: int, after: str | None, limit: int) -> ShardRead:
        """One Query of one shard of the queue: up to `limit` entries past task id `after`."""
        model = self.models.task
        with storage_errors():
            data = model._get_connection().query(
                approval_pk(shard),
                range_key_condition=model.sk > task_sk(after) if after is not None else None,
                index_name=AwaitingApprovalIndex.Meta.index_name,
                limit=limit,
                scan_index_forward=True,
            )
        items = tuple(from_item(model.from_raw_data(raw)) for raw in data["Items"])
        return ShardRead(items=items, more=bool(data.get("LastEvaluatedKey")))

    def get_awaiting_approval(self, task_id: TaskId) -> Task | None:
        """One Query, of the task's shard. Only when that finds nothing are the other shards
        asked (one Query each, N > 1 only): a task written while the stack had fewer shards
        keeps its entry where that count put it until it is written again."""
        home = shard_of(task_id, self.approval_shards)
        others = (s for s in range(self.approval_shards) if s != home)
        for shard in (home, *others):
            page = self._query(
                approval_pk(shard),
                after=None,
                owner=False,
                index_name=AwaitingApprovalIndex.Meta.index_name,
                range_key_condition=self.models.task.sk == task_sk(task_id),
            )
            if page.items:
                return page.items[0]
        return None

    def due_on(self, day: date, *, reminded_from: datetime, until: datetime) -> Iterator[Task]:
        """`DueTasks`: each shard of `day` in the due-date index, the reminders that became due
        in the window (a range of its sort key), a page at a time; each page's tasks re-read
        with a strongly consistent BatchGetItem, and kept if still open and due on `day` (the
        index is eventual: a task completed a moment ago may still be in it)."""
        window = self.models.task.remind_key.between(
            iso(reminded_from.astimezone(UTC)), iso(until.astimezone(UTC))
        )
        for shard in range(DUE_SHARDS):
            start: dict[str, Any] | None = None
            while True:
                with storage_errors():
                    data = self.models.task._get_connection().query(
                        due_pk(day, shard),
                        range_key_condition=window,
                        index_name=ByDueDateIndex.Meta.index_name,
                        exclusive_start_key=start,
                        limit=self.due_page_size,
                    )
                keys = [{"pk": raw["pk"], "sk": raw["sk"]} for raw in data["Items"]]
                for first in range(0, len(keys), BATCH_GET_MAX):
                    for task in self._read_current(keys[first : first + BATCH_GET_MAX]):
                        if task.status.is_open and task.due_date == day:
                            yield task
                start = data.get("LastEvaluatedKey")
                if not start:
                    break

    def _read_current(self, keys: Sequence[Mapping[str, Any]]) -> list[Task]:
        """The tasks at `keys` (at most 100), strongly consistent, in key order; the keys
        DynamoDB leaves unprocessed (throttling) are asked again with backoff."""
        client: Any = self.models.connection.client  # botocore's, typed as its base class
        found: list[Task] = []
        pending = list(keys)
        for attempt in range(BATCH_GET_ATTEMPTS):
            if attempt:
                time.sleep(0.05 * 2 ** (attempt - 1))
            with storage_errors():
                data = client.batch_get_item(
                    RequestItems={
                        self.table_name: {"Keys": pending, "ConsistentRead": True},
                    }
                )
            found += [
                from_item(self.models.task.from_raw_data(raw))
                for raw in data.get("Responses", {}).get(self.table_name, [])
            ]
            pending = data.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", [])
            if not pending:
                return sorted(found, key=lambda task: task.id)
        raise Unavailable(f"the task store left {len(pending)} keys unread (throttled)")
