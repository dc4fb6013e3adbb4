"""The ports: what the use cases need from the outside world, as `typing.Protocol`s.

Adapters (DynamoDB, S3, EventBridge, Step Functions) and the in-memory fakes in
`taskcore.testing` satisfy these structurally; none of them subclasses anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import attrs

from taskcore.cursors import Position
from taskcore.events import Event
from taskcore.model import Priority, Status, Task, TaskId, UserId
from taskcore.stats import StatsDelta, UserStats


@attrs.frozen(kw_only=True)
class IdempotencyRecord:
    """Remembers the task a create with an `Idempotency-Key` made, and the request's digest."""

    owner_id: UserId
    key: str
    fingerprint: str
    task: Task
    expires_at: datetime


class IdempotencyKeyTaken(Exception):
    """Raised by `TaskRepository.add` when the key already has a live record."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__(f"idempotency key {record.key!r} already used")
        self.record = record


@attrs.frozen(kw_only=True)
class StoredPage:
    """One page as storage returns it: the items and where to resume (None: no more)."""

    items: tuple[Task, ...]
    last_position: Position | None


@attrs.frozen(kw_only=True)
class PresignedUpload:
    url: str
    fields: dict[str, str]
    expires_at: datetime


class TaskRepository(Protocol):
    """Tasks, keyed by owner: no method reaches a task without its owner's id, except the
    approvers' queue, which only ever shows tasks awaiting approval."""

    def get(self, owner_id: UserId, task_id: TaskId) -> Task | None: ...

    def add(self, task: Task, idempotency: IdempotencyRecord | None = None) -> None:
        """Store a new task (and its idempotency record, atomically).

        Raises `IdempotencyKeyTaken` if the key has a live record, `Conflict` if the id exists.
        """
        ...

    def save(self, task: Task, expected_version: int) -> None:
        """Replace a task if the stored version is `expected_version`.

        Raises `ConcurrentModification` if it is not, `NotFound` if the task is gone.
        """
        ...

    def delete(self, task: Task) -> None:
        """Delete a task if the stored version is still `task.version` (else as `save`)."""
        ...

    def list_owned(
        self,
        owner_id: UserId,
        *,
        status: Status | None,
        priority: Priority | None,
        limit: int,
        after: Position | None,
    ) -> StoredPage:
        """The owner's tasks, newest first, optionally filtered."""
        ...

    def list_awaiting_approval(self, *, limit: int, after: Position | None) -> StoredPage:
        """Every task awaiting approval, oldest first (the approvers' queue)."""
        ...

    def get_awaiting_approval(self, task_id: TaskId) -> Task | None:
        """A task by id, only if it is awaiting approval (how approvers reach it)."""
        ...


class StatsStore(Protocol):
    def get(self, owner_id: UserId) -> UserStats: ...

    def apply(self, owner_id: UserId, event_id: str, delta: StatsDelta) -> bool:
        """Apply `delta` atomically, once per `event_id`; False if it was applied before."""
        ...


class EventPublisher(Protocol):
    def publish(self, events: Sequence[Event]) -> list[Event]:
        """Publish events (a batch of at most 10); return the ones that failed."""
        ...


class AttachmentStore(Protocol):
    def presign_upload(
        self, key: str, *, content_type: str, size: int, expires_in: int
    ) -> PresignedUpload:
        """A presigned POST that only accepts exactly this content type and size."""
        ...

    def presign_download(self, key: str, *, filename: str, expires_in: int) -> str: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; return how many were deleted."""
        ...


class ApprovalWorkflow(Protocol):
    def resume(self, task: Task) -> None:
        """Tell a waiting approval workflow that the task's approval was decided."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self) -> str:
        """A new ULID: 26 Crockford base-32 characters, time ordered."""
        ...
