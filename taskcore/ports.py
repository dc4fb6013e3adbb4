"""The ports: what the use cases need from the outside world, as `typing.Protocol`s.

Adapters (DynamoDB, S3, EventBridge, Step Functions) and the in-memory fakes in
`taskcore.testing` satisfy these structurally; none of them subclasses anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from typing import Protocol

import attrs

from taskcore.cursors import Position
from taskcore.events import Envelope
from taskcore.model import Export, ExportId, Priority, Status, Task, TaskId, UserId
from taskcore.notifications import Notification, NotificationId
from taskcore.stats import StatsDelta, UserStats


class Cursors(Protocol):
    """Signs pagination cursors and checks them: `taskcore.cursors.CursorCodec` with a secret
    in hand, or an adapter that reads the secret (and its rotation) from a secret store."""

    def encode(self, scope: str, position: Position, now: datetime) -> str: ...

    def decode(self, scope: str, token: str, now: datetime) -> dict[str, str]:
        """The position; raises `InvalidCursor` for a tampered, expired or foreign cursor."""
        ...


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


class DueTasks(Protocol):
    """Open tasks by due date, for the reminder sweep: found through an index (never a scan),
    not through their owners. Only the sweep reads it; nothing here reaches a task by id."""

    def due_on(self, day: date, *, reminded_from: datetime, until: datetime) -> Iterator[Task]:
        """The open tasks due on `day` whose reminder became due (`taskcore.reminders.
        reminder_due_at`) between `reminded_from` and `until`, both included, each as stored
        now, in no particular order. An index may lag behind the latest writes by a moment: a
        task whose reminder just became due may come in the next call instead."""
        ...


class StatsStore(Protocol):
    def get(self, owner_id: UserId) -> UserStats: ...

    def apply(self, owner_id: UserId, event_id: str, delta: StatsDelta) -> bool:
        """Apply `delta` atomically, once per `event_id`; False if it was applied before."""
        ...


class EventPublisher(Protocol):
    def publish(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """Publish a batch of at most 10 envelopes; return the ones that were not accepted."""
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
    """The approval state machine, seen from the domain: it waits on a task token until the
    decision is known. The token and the decision arrive as separate events in either order;
    whichever comes second releases the workflow, exactly once."""

    def token_issued(self, owner_id: UserId, task_id: TaskId, token: str) -> bool:
        """Remember the waiting workflow's token; True if this released it."""
        ...

    def decided(self, task: Task) -> bool:
        """Record the task's decided approval; True if this released the workflow."""
        ...


class EventMarkers(Protocol):
    """Remembers which events a consumer has handled, to make it idempotent by event id."""

    def first_time(self, consumer: str, event_id: str) -> bool:
        """Mark the event handled by `consumer`; False if it already was."""
        ...


@attrs.frozen(kw_only=True)
class NotificationPage:
    """One page of an inbox as storage returns it, and where to resume (None: no more)."""

    items: tuple[Notification, ...]
    last_position: Position | None


class Inbox(Protocol):
    """Notifications, keyed by their inbox (`taskcore.notifications`): no method reaches one
    without its inbox."""

    def add(self, notification: Notification) -> Notification:
        """Store a notification unless one with its id is in its inbox already; return the
        stored one (the earlier one, with its `sent_at`, on a redelivery)."""
        ...

    def mark_sent(self, notification: Notification, at: datetime) -> None:
        """Record that the notification was published to the topic."""
        ...

    def get(self, recipient: str, notification_id: NotificationId) -> Notification | None: ...

    def mark_read(
        self, recipient: str, notification_id: NotificationId, at: datetime
    ) -> Notification | None:
        """Mark it read (the first time only: a second call keeps the first `read_at`); None
        if the inbox holds no such notification."""
        ...

    def list(self, recipient: str, *, limit: int, after: Position | None) -> NotificationPage:
        """The inbox, newest first."""
        ...


class NotificationChannel(Protocol):
    """Where notifications go beyond the inbox: a topic people subscribe to (email, SMS,
    webhooks), filtered by the notification's recipient and kind."""

    def publish(self, notification: Notification) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self, at: datetime | None = None) -> str:
        """A new ULID: 26 Crockford base-32 characters, time ordered, its time `at` (the
        record's own creation time, so that ids sort as creation times do, across processes;
        default: now)."""
        ...


class ExportRepository(Protocol):
    """Export records, keyed by owner like tasks: no method reaches one without its owner."""

    def add(self, export: Export) -> None:
        """Store a new export record. Raises `Conflict` if the id exists."""
        ...

    def get(self, owner_id: UserId, export_id: ExportId) -> Export | None: ...

    def save(self, export: Export, expected_version: int) -> None:
        """Replace an export if the stored version is `expected_version`.

        Raises `ConcurrentModification` if it is not, `NotFound` if the export is gone.
        """
        ...


@attrs.frozen
class UploadedPart:
    """A part of a multipart upload, as the object store acknowledged it."""

    number: int
    etag: str


class ObjectSink(Protocol):
    """Writes one object in parts (S3's multipart upload), so its size is not bounded by
    memory. The store's rules: part numbers 1 to 10,000; every part but the last at least
    5 MiB (`MIN_PART_SIZE`), checked on completion (`StorageRejected`); at least one part. An
    upload that is completed or aborted is gone (`NotFound` for further parts). Nothing is
    visible under the key until the upload completes, and an aborted upload leaves nothing."""

    def start_upload(self, key: str, *, content_type: str) -> str:
        """Begin an upload to `key`; its id."""
        ...

    def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | bytearray
    ) -> UploadedPart:
        """Send part `number`; the sink must not keep `data` past the call without copying."""
        ...

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> None:
        """Assemble the parts, in order, into the object (replacing any object at `key`)."""
        ...

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Discard the upload and its parts. Idempotent: an unknown upload is no error."""
        ...

    def presign_download(self, key: str, *, filename: str, expires_in: int) -> str:
        """A presigned GET of the object, downloaded as `filename`."""
        ...


MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000


@attrs.frozen
class StoredObject:
    """An object as the store returned it: its bytes and its entity tag (S3's ETag), what a
    conditional write names to replace exactly this version of it."""

    data: bytes
    tag: str


class ArchiveStore(Protocol):
    """The archive's objects (S3, under `archive/`): whole objects, read and replaced. A write
    is conditional on the object still being the one that was read (S3's conditional writes),
    so two writers of one object never lose each other's lines: one of them is refused and
    reads again."""

    def read(self, key: str) -> StoredObject | None:
        """The object at `key`, or None if there is none."""
        ...

    def write(self, key: str, data: bytes, *, replacing: str | None) -> None:
        """Store `data` at `key` if the object there is still the one tagged `replacing` (None:
        if there is no object there). Raises `ConcurrentModification` if it is not."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """The keys right under `prefix` (`prefix` ends with '/': none in a deeper 'folder'
        such as `prefix + 'x/'`), in any order."""
        ...

    def presign_download(self, key: str, *, filename: str, expires_in: int) -> str:
        """A presigned GET of the object, downloaded as `filename`."""
        ...
