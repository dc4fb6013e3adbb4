"""Domain events, derived from state changes rather than emitted by use cases.

Events come from comparing a task's old and new image (the DynamoDB stream gives both), so a
committed write always yields its events and a failed publish never fails a request. Event ids
are derived from the task id, the version and the event kind: a redelivered stream record
yields the same ids, which is what lets consumers be idempotent by `event_id`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, ClassVar

import attrs

from taskcore.auto_approval import is_auto_decided
from taskcore.model import MUTABLE_FIELDS, Approval, Status, Task, TaskId, UserId

SCHEMA_VERSION = 1
EVENT_SOURCE = "tasks"  # the `source` of every domain event on the bus
EXPORT_REQUESTED = "ExportRequested"  # the detail type of the event that starts an export
CHANGE_FIELDS = (*MUTABLE_FIELDS, "status", "approval", "attachments")


@attrs.frozen(kw_only=True)
class Event:
    """Base of every event. `version` is the task version the event describes."""

    kind: ClassVar[str] = "Event"

    event_id: str
    occurred_at: datetime
    version: int
    owner_id: UserId
    task_id: TaskId
    task: Task

    @classmethod
    def make(cls, task: Task, occurred_at: datetime, **extra: object) -> Event:
        return cls(
            event_id=f"{task.id}:{task.version}:{cls.kind}",
            occurred_at=occurred_at,
            version=task.version,
            owner_id=task.owner_id,
            task_id=task.id,
            task=task,
            **extra,
        )


@attrs.frozen(kw_only=True)
class TaskCreated(Event):
    kind: ClassVar[str] = "TaskCreated"


@attrs.frozen(kw_only=True)
class TaskUpdated(Event):
    kind: ClassVar[str] = "TaskUpdated"
    changed: tuple[str, ...]
    previous: Task


@attrs.frozen(kw_only=True)
class TaskCompleted(Event):
    kind: ClassVar[str] = "TaskCompleted"


@attrs.frozen(kw_only=True)
class TaskDeleted(Event):
    kind: ClassVar[str] = "TaskDeleted"


@attrs.frozen(kw_only=True)
class TaskArchived(Event):
    """A completed task left the table for its owner's archive: DynamoDB's TTL removed it
    (`archiveCompletedAfterDays` after its completion). `task` is the task as it was last
    stored. Not a deletion: it stays the owner's, completed, in the archive, so stats keep it
    and its attachments stay."""

    kind: ClassVar[str] = "TaskArchived"


@attrs.frozen(kw_only=True)
class ApprovalRequested(Event):
    kind: ClassVar[str] = "ApprovalRequested"


@attrs.frozen(kw_only=True)
class ApprovalDecided(Event):
    kind: ClassVar[str] = "ApprovalDecided"
    outcome: Approval


@attrs.frozen(kw_only=True)
class TaskDueSoon(Event):
    """The task is due tomorrow (`due_date`, a UTC calendar day) and still open: a reminder.

    Not derived from a change: the reminder sweep (`taskcore.services.reminders`) finds it on
    the day before. Its id names the due date, not the version, so one due date reminds once
    however often the task is edited or the sweep runs; a new due date is a new reminder.
    """

    kind: ClassVar[str] = "TaskDueSoon"
    due_date: date

    @classmethod
    def for_task(cls, task: Task, due_date: date, occurred_at: datetime) -> TaskDueSoon:
        return cls(
            event_id=f"{task.id}:{due_date.isoformat()}:{cls.kind}",
            occurred_at=occurred_at,
            version=task.version,
            owner_id=task.owner_id,
            task_id=task.id,
            task=task,
            due_date=due_date,
        )


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        TaskCreated,
        TaskUpdated,
        TaskCompleted,
        TaskDeleted,
        ApprovalRequested,
        ApprovalDecided,
        TaskDueSoon,
        TaskArchived,
    )
}


@attrs.frozen(kw_only=True)
class Envelope:
    """One entry on the event bus: what the publisher sends and the consumers receive.

    `detail_type` is the event kind (EventBridge's `detail-type`); `detail` its JSON body.
    """

    event_id: str
    detail_type: str
    detail: Mapping[str, Any]


def export_requested(owner_id: str, export_id: str) -> Envelope:
    """The event that starts an export, derived from the export record's keys."""
    return Envelope(
        event_id=f"{export_id}:{EXPORT_REQUESTED}",
        detail_type=EXPORT_REQUESTED,
        detail={"exportId": export_id, "ownerId": owner_id},
    )


def changed_fields(old: Task, new: Task) -> tuple[str, ...]:
    return tuple(name for name in CHANGE_FIELDS if getattr(old, name) != getattr(new, name))


def derive_events(
    old: Task | None, new: Task | None, occurred_at: datetime, *, expired: bool = False
) -> list[Event]:
    """The events that the change from `old` to `new` means (None: absent). `expired`: the
    table's TTL removed the item (no user did), so a task that is gone was archived."""
    if new is None:
        if old is None:
            return []
        return [(TaskArchived if expired else TaskDeleted).make(old, occurred_at)]
    if old is None:
        events: list[Event] = [TaskCreated.make(new, occurred_at)]
        if new.approval is Approval.PENDING:
            events.append(ApprovalRequested.make(new, occurred_at))
        return events + _auto_approved(new, occurred_at)
    changed = changed_fields(old, new)
    if not changed:
        return []
    events = [TaskUpdated.make(new, occurred_at, changed=changed, previous=old)]
    if new.status is Status.COMPLETED and old.status is not Status.COMPLETED:
        events.append(TaskCompleted.make(new, occurred_at))
    if new.approval is Approval.PENDING and old.approval is not Approval.PENDING:
        events.append(ApprovalRequested.make(new, occurred_at))
    if old.approval is Approval.PENDING and new.approval is not Approval.PENDING:
        events.append(ApprovalDecided.make(new, occurred_at, outcome=new.approval))
    if old.approval is Approval.NOT_REQUIRED:  # approved by a rule without ever waiting
        events += _auto_approved(new, occurred_at)
    return events


def _auto_approved(task: Task, occurred_at: datetime) -> list[Event]:
    """A task a rule approved (created so, or by an edit) never was pending, yet its approval
    runs the same workflow: it is requested (the workflow starts and takes its auto path;
    nobody is asked, as the task is not pending) and decided (the owner hears of it), at once.
    """
    if not is_auto_decided(task):
        return []
    return [
        ApprovalRequested.make(task, occurred_at),
        ApprovalDecided.make(task, occurred_at, outcome=Approval.APPROVED),
    ]
