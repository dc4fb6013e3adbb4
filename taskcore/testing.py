"""In-memory adapters for tests, here and in other services.

They honour the same contracts as the AWS adapters (the contract suite in `tests/contract` runs
against both): conditional writes, idempotency records with expiry, newest-first pagination
with positions, the approvers' queue. They keep state you can assert on (`published`,
`changes`, `resumed`, `objects`) instead of recording calls.

    from taskcore.testing import in_memory_service
    fakes = in_memory_service()
    fakes.service.create_task(alice, CreateTask(title="Write the report"))
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs

from taskcore.approval_queue import (
    DEFAULT_SHARDS,
    ShardRead,
    check_shards,
    merged_page,
    position_from_map,
    position_to_map,
    shard_of,
)
from taskcore.cursors import CursorCodec, Position
from taskcore.errors import ConcurrentModification, Conflict, NotFound, StorageRejected
from taskcore.events import Envelope, Event, derive_events
from taskcore.model import Export, ExportId, Principal, Priority, Status, Task, TaskId, UserId
from taskcore.notifications import Notification, NotificationId
from taskcore.ports import (
    MAX_PARTS,
    MIN_PART_SIZE,
    Clock,
    IdempotencyKeyTaken,
    IdempotencyRecord,
    NotificationPage,
    PresignedUpload,
    StoredObject,
    StoredPage,
    UploadedPart,
)
from taskcore.reminders import reminder_due_at
from taskcore.services import (
    ArchiveService,
    ExportService,
    NotificationService,
    TaskService,
    decision_output,
    deliver_notifications,
)
from taskcore.stats import StatsDelta, UserStats
from taskcore.system import SystemClock

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@attrs.define
class FixedClock:
    """A clock that only moves when told to."""

    current: datetime = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        self.current += delta
        return self.current


@attrs.define
class SequentialIds:
    """Deterministic, increasing ULID-shaped ids: 00000000000000000000000001, ..."""

    counter: int = 0

    def new_id(self, at: datetime | None = None) -> str:
        self.counter += 1
        value, digits = self.counter, []
        for _ in range(26):
            value, digit = divmod(value, 32)
            digits.append(CROCKFORD[digit])
        return "".join(reversed(digits))


EXAMPLE_TIME = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
"""When tests' tasks are created, unless they say otherwise."""


def build_task(
    *,
    n: int = 1,
    owner: str = "alice",
    title: str = "Write the report",
    now: datetime = EXAMPLE_TIME,
    **fields: Any,
) -> Task:
    """A new task for a test: the `n`-th id (`01JD0...0n`), `owner`'s, created at `now`; any
    other field `Task.new` takes (priority, description, tags, due_date) as a keyword."""
    return Task.new(
        id=TaskId(f"01JD{n:022d}"), owner_id=UserId(owner), title=title, now=now, **fields
    )


def principal(user_id: str, *groups: str) -> Principal:
    return Principal(user_id=UserId(user_id), groups=frozenset(groups))


@attrs.define
class InMemoryTaskRepository:
    clock: Clock = attrs.field(factory=SystemClock)
    tasks: dict[tuple[str, str], Task] = attrs.field(factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = attrs.field(factory=dict)
    changes: list[tuple[Task | None, Task | None]] = attrs.field(factory=list)
    """Every committed change as (old image, new image): the in-memory DynamoDB stream."""
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)
    approval_shards: int = attrs.field(default=DEFAULT_SHARDS)
    """The approvers' queue's shards, as the DynamoDB adapter's: with more than one, a page is
    the same ordered merge of per-shard reads (`taskcore.approval_queue.merged_page`)."""

    def __attrs_post_init__(self) -> None:
        check_shards(self.approval_shards)

    def get(self, owner_id: UserId, task_id: TaskId) -> Task | None:
        return self.tasks.get((owner_id, task_id))

    def add(self, task: Task, idempotency: IdempotencyRecord | None = None) -> None:
        with self._lock:
            if idempotency is not None:
                existing = self.idempotency.get((idempotency.owner_id, idempotency.key))
                if existing is not None and existing.expires_at > self.clock.now():
                    raise IdempotencyKeyTaken(existing)
            if (task.owner_id, task.id) in self.tasks:
                raise Conflict(f"task {task.id} already exists")
            if idempotency is not None:
                self.idempotency[(idempotency.owner_id, idempotency.key)] = idempotency
            self.tasks[(task.owner_id, task.id)] = task
            self.changes.append((None, task))

    def _replace(self, task: Task, expected_version: int, new: Task | None) -> None:
        with self._lock:
            stored = self.tasks.get((task.owner_id, task.id))
            if stored is None:
                raise NotFound(f"task {task.id} not found")
            if stored.version != expected_version:
                raise ConcurrentModification(
                    f"task {task.id} is at version {stored.version}, not {expected_version}"
                )
            if new is None:
                del self.tasks[(task.owner_id, task.id)]
            else:
                self.tasks[(task.owner_id, task.id)] = new
            self.changes.append((stored, new))

    def save(self, task: Task, expected_version: int) -> None:
        self._replace(task, expected_version, task)

    def delete(self, task: Task) -> None:
        self._replace(task, task.version, None)

    @staticmethod
    def _page(
        matching: list[Task], limit: int, after: Position | None, *, newest_first: bool
    ) -> StoredPage:
        # Resume strictly past the position's key, as DynamoDB does: the task it names may
        # have been deleted or left the filter since.
        if after is not None:
            last = after["id"]
            matching = [t for t in matching if (t.id < last if newest_first else t.id > last)]
        items = tuple(matching[:limit])
        more = len(matching) > limit
        return StoredPage(items=items, last_position={"id": items[-1].id} if more else None)

    def list_owned(
        self,
        owner_id: UserId,
        *,
        status: Status | None,
        priority: Priority | None,
        limit: int,
        after: Position | None,
    ) -> StoredPage:
        matching = sorted(
            (
                t
                for (owner, _), t in self.tasks.items()
                if owner == owner_id
                and (status is None or t.status is status)
                and (priority is None or t.priority is priority)
            ),
            key=lambda t: t.id,
            reverse=True,
        )
        return self._page(matching, limit, after, newest_first=True)

    def list_awaiting_approval(self, *, limit: int, after: Position | None) -> StoredPage:
        if self.approval_shards > 1:
            start = position_from_map(after) if after is not None else None
            items, following = merged_page(self.approval_shards, limit, start, self._read_shard)
            return StoredPage(
                items=items,
                last_position=position_to_map(following) if following is not None else None,
            )
        matching = sorted(
            (t for t in self.tasks.values() if t.awaiting_approval), key=lambda t: t.id
        )
        return self._page(matching, limit, after, newest_first=False)

    def _read_shard(self, shard: int, after: str | None, limit: int) -> ShardRead:
        with self._lock:
            entries = sorted(
                (
                    t
                    for t in self.tasks.values()
                    if t.awaiting_approval
                    and shard_of(t.id, self.approval_shards) == shard
                    and (after is None or t.id > after)
                ),
                key=lambda t: t.id,
            )
        return ShardRead(items=tuple(entries[:limit]), more=len(entries) > limit)

    def get_awaiting_approval(self, task_id: TaskId) -> Task | None:
        return next(
            (t for t in self.tasks.values() if t.id == task_id and t.awaiting_approval), None
        )

    def due_on(self, day: date, *, reminded_from: datetime, until: datetime) -> Iterator[Task]:
        """`DueTasks`: the index the DynamoDB adapter queries, computed from the tasks."""
        with self._lock:
            stored = list(self.tasks.values())
        due = [
            task
            for task in stored
            if task.due_date == day
            and (at := reminder_due_at(task)) is not None
            and reminded_from <= at <= until
        ]
        return iter(sorted(due, key=lambda task: task.id))

    def events(self) -> list[Event]:
        """The domain events the committed changes so far mean, in order."""
        now = self.clock.now()
        return [e for old, new in self.changes for e in derive_events(old, new, now)]


@attrs.define
class InMemoryStatsStore:
    stats: dict[str, UserStats] = attrs.field(factory=dict)
    applied: set[str] = attrs.field(factory=set)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def get(self, owner_id: UserId) -> UserStats:
        return self.stats.get(owner_id, UserStats(owner_id=owner_id))

    def apply(self, owner_id: UserId, event_id: str, delta: StatsDelta) -> bool:
        with self._lock:
            if event_id in self.applied:
                return False
            self.applied.add(event_id)
            self.stats[owner_id] = self.get(owner_id).apply(delta)
            return True


@attrs.define
class InMemoryAttachmentStore:
    clock: Clock = attrs.field(factory=SystemClock)
    objects: dict[str, bytes] = attrs.field(factory=dict)
    uploads: dict[str, tuple[str, int]] = attrs.field(factory=dict)
    """Presigned uploads handed out: key -> (content type, size) they accept."""

    def presign_upload(
        self, key: str, *, content_type: str, size: int, expires_in: int
    ) -> PresignedUpload:
        self.uploads[key] = (content_type, size)
        return PresignedUpload(
            url=f"memory://attachments/{key}",
            fields={"key": key, "Content-Type": content_type},
            expires_at=self.clock.now() + timedelta(seconds=expires_in),
        )

    def upload(self, key: str, content_type: str, data: bytes) -> None:
        """What a client does with the presigned POST; refused as S3 would refuse it."""
        if self.uploads.get(key) != (content_type, len(data)):
            raise PermissionError(f"upload to {key} does not match its presigned policy")
        self.objects[key] = data

    def presign_download(self, key: str, *, filename: str, expires_in: int) -> str:
        return f"memory://attachments/{key}?filename={filename}&expires={expires_in}"

    def delete_prefix(self, prefix: str) -> int:
        doomed = [key for key in self.objects if key.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
        return len(doomed)


@attrs.define
class InMemoryEventPublisher:
    published: list[Envelope] = attrs.field(factory=list)
    fail_ids: set[str] = attrs.field(factory=set)
    """Event ids to refuse, to exercise partial-batch failure handling."""
    batches: int = 0

    def publish(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        if len(envelopes) > 10:
            raise ValueError("a batch holds at most 10 events")
        self.batches += 1
        failed = [e for e in envelopes if e.event_id in self.fail_ids]
        self.published.extend(e for e in envelopes if e.event_id not in self.fail_ids)
        return failed


@attrs.define
class InMemoryEventMarkers:
    seen: set[tuple[str, str]] = attrs.field(factory=set)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def first_time(self, consumer: str, event_id: str) -> bool:
        with self._lock:
            if (consumer, event_id) in self.seen:
                return False
            self.seen.add((consumer, event_id))
            return True


@attrs.define
class InMemoryApprovalWorkflow:
    tokens: dict[tuple[str, str], str] = attrs.field(factory=dict)
    decisions: dict[tuple[str, str], dict[str, str]] = attrs.field(factory=dict)
    released: list[tuple[str, dict[str, str]]] = attrs.field(factory=list)
    """(token, output) pairs sent to the state machine, as SendTaskSuccess would send them."""
    resumed: list[Task] = attrs.field(factory=list)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def _release(self, key: tuple[str, str]) -> bool:
        token, output = self.tokens.get(key), self.decisions.get(key)
        if token is None or output is None or any(t == token for t, _ in self.released):
            return False
        self.released.append((token, output))
        return True

    def token_issued(self, owner_id: UserId, task_id: TaskId, token: str) -> bool:
        with self._lock:
            self.tokens[(owner_id, task_id)] = token
            return self._release((owner_id, task_id))

    def decided(self, task: Task) -> bool:
        with self._lock:
            self.resumed.append(task)
            self.decisions[(task.owner_id, task.id)] = decision_output(task)
            return self._release((task.owner_id, task.id))


@attrs.define
class InMemoryInbox:
    """`Inbox` in memory: notifications by (recipient, id)."""

    stored: dict[tuple[str, str], Notification] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def add(self, notification: Notification) -> Notification:
        with self._lock:
            return self.stored.setdefault((notification.recipient, notification.id), notification)

    def mark_sent(self, notification: Notification, at: datetime) -> None:
        with self._lock:
            key = (notification.recipient, notification.id)
            self.stored[key] = attrs.evolve(self.stored[key], sent_at=at)

    def get(self, recipient: str, notification_id: NotificationId) -> Notification | None:
        return self.stored.get((recipient, notification_id))

    def mark_read(
        self, recipient: str, notification_id: NotificationId, at: datetime
    ) -> Notification | None:
        with self._lock:
            found = self.stored.get((recipient, notification_id))
            if found is None:
                return None
            if found.read_at is None:
                found = self.stored[(recipient, notification_id)] = attrs.evolve(found, read_at=at)
            return found

    def list(self, recipient: str, *, limit: int, after: Position | None) -> NotificationPage:
        newest_first = sorted(
            (n for (r, _), n in self.stored.items() if r == recipient),
            key=lambda n: n.id,
            reverse=True,
        )
        if after is not None:
            newest_first = [n for n in newest_first if n.id < after["id"]]
        items = tuple(newest_first[:limit])
        more = len(newest_first) > limit
        return NotificationPage(items=items, last_position={"id": items[-1].id} if more else None)


@attrs.define
class InMemoryChannel:
    """`NotificationChannel` in memory: what was published, in order."""

    published: list[Notification] = attrs.field(factory=list)
    fail: bool = False
    """Refuse every publish (a topic that is down), to exercise redelivery."""

    def publish(self, notification: Notification) -> None:
        if self.fail:
            raise ConnectionError("the topic is unavailable")
        self.published.append(notification)


@attrs.frozen(kw_only=True)
class Fakes:
    """A TaskService wired to in-memory adapters, with the adapters at hand for assertions and
    for the event-driven use cases (`services.resume_workflow(fakes.workflow, event)`)."""

    service: TaskService
    tasks: InMemoryTaskRepository
    stats: InMemoryStatsStore
    attachments: InMemoryAttachmentStore
    workflow: InMemoryApprovalWorkflow
    clock: FixedClock
    ids: SequentialIds
    export_service: ExportService
    exports: InMemoryExportRepository
    objects: InMemoryObjectSink
    archive_service: ArchiveService
    archive: InMemoryArchiveStore
    notifications: NotificationService
    inbox: InMemoryInbox
    channel: InMemoryChannel

    def deliver(self, *events: Event) -> None:
        """What the notifications consumer does with these events (the bus's delivery)."""
        for event in events:
            deliver_notifications(self.inbox, self.channel, self.clock, event)


def in_memory_service(clock: FixedClock | None = None) -> Fakes:
    clock = clock or FixedClock()
    tasks = InMemoryTaskRepository(clock=clock)
    stats = InMemoryStatsStore()
    attachments = InMemoryAttachmentStore(clock=clock)
    workflow = InMemoryApprovalWorkflow()
    ids = SequentialIds()
    cursors = CursorCodec(secrets.token_bytes(32))
    service = TaskService(
        tasks=tasks, stats=stats, attachments=attachments, clock=clock, ids=ids, cursors=cursors
    )
    exports = InMemoryExportRepository()
    objects = InMemoryObjectSink()
    export_service = ExportService(
        exports=exports, tasks=tasks, objects=objects, clock=clock, ids=ids
    )
    inbox = InMemoryInbox()
    archive = InMemoryArchiveStore()
    return Fakes(
        service=service,
        tasks=tasks,
        stats=stats,
        attachments=attachments,
        workflow=workflow,
        clock=clock,
        ids=ids,
        export_service=export_service,
        exports=exports,
        objects=objects,
        notifications=NotificationService(inbox=inbox, clock=clock, cursors=cursors),
        inbox=inbox,
        channel=InMemoryChannel(),
        archive_service=ArchiveService(store=archive, clock=clock),
        archive=archive,
    )


@attrs.define
class InMemoryExportRepository:
    exports: dict[tuple[str, str], Export] = attrs.field(factory=dict)
    changes: list[tuple[Export | None, Export]] = attrs.field(factory=list)
    """Every committed write as (old image, new image): what the stream would carry."""
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def add(self, export: Export) -> None:
        with self._lock:
            if (export.owner_id, export.id) in self.exports:
                raise Conflict(f"export {export.id} already exists")
            self.exports[(export.owner_id, export.id)] = export
            self.changes.append((None, export))

    def get(self, owner_id: UserId, export_id: ExportId) -> Export | None:
        return self.exports.get((owner_id, export_id))

    def save(self, export: Export, expected_version: int) -> None:
        with self._lock:
            stored = self.exports.get((export.owner_id, export.id))
            if stored is None:
                raise NotFound(f"export {export.id} not found")
            if stored.version != expected_version:
                raise ConcurrentModification(
                    f"export {export.id} is at version {stored.version}, not {expected_version}"
                )
            self.exports[(export.owner_id, export.id)] = export
            self.changes.append((stored, export))


@attrs.frozen
class PendingUpload:
    key: str
    content_type: str
    parts: dict[int, bytes] = attrs.field(factory=dict)


@attrs.define
class InMemoryObjectSink:
    """`ObjectSink` in memory, with S3's multipart rules: parts numbered 1 to 10,000, every
    part but the last at least 5 MiB (checked on completion), ETags that must match, nothing
    visible before completion, nothing left after an abort."""

    objects: dict[str, bytes] = attrs.field(factory=dict)
    content_types: dict[str, str] = attrs.field(factory=dict)
    uploads: dict[str, PendingUpload] = attrs.field(factory=dict)
    """Uploads in progress, by id."""
    completed: list[str] = attrs.field(factory=list)
    aborted: list[str] = attrs.field(factory=list)
    part_sizes: dict[str, list[int]] = attrs.field(factory=dict)
    """The sizes of the parts each completed object was assembled from, by key."""
    _counter: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def start_upload(self, key: str, *, content_type: str) -> str:
        with self._lock:
            self._counter += 1
            upload_id = f"upload-{self._counter}"
            self.uploads[upload_id] = PendingUpload(key=key, content_type=content_type)
            return upload_id

    def _upload(self, key: str, upload_id: str) -> PendingUpload:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise NotFound(f"no upload {upload_id} in progress for {key}")
        return upload

    def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | bytearray
    ) -> UploadedPart:
        if not 1 <= number <= MAX_PARTS:
            raise StorageRejected(f"part numbers run from 1 to {MAX_PARTS}, not {number}")
        with self._lock:
            self._upload(key, upload_id).parts[number] = bytes(data)
        return UploadedPart(number, _etag(data))

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> None:
        with self._lock:
            upload = self._upload(key, upload_id)
            if not parts:
                raise StorageRejected("an upload is completed with at least one part")
            numbers = [part.number for part in parts]
            if numbers != sorted(set(numbers)):
                raise StorageRejected("parts must be listed in ascending order, once each")
            chunks = []
            for part in parts:
                data = upload.parts.get(part.number)
                if data is None or _etag(data) != part.etag:
                    raise StorageRejected(f"part {part.number} was not uploaded as listed")
                chunks.append(data)
            if any(len(chunk) < MIN_PART_SIZE for chunk in chunks[:-1]):
                raise StorageRejected(f"every part but the last must be >= {MIN_PART_SIZE} bytes")
            del self.uploads[upload_id]
            self.objects[key] = b"".join(chunks)
            self.content_types[key] = upload.content_type
            self.part_sizes[key] = [len(chunk) for chunk in chunks]
            self.completed.append(upload_id)

    def abort_upload(self, key: str, upload_id: str) -> None:
        with self._lock:
            upload = self.uploads.get(upload_id)
            if upload is not None and upload.key == key:
                del self.uploads[upload_id]
                self.aborted.append(upload_id)

    def presign_download(self, key: str, *, filename: str, expires_in: int) -> str:
        return f"memory://objects/{key}?filename={filename}&expires={expires_in}"


def _etag(data: bytes | bytearray) -> str:
    return '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'


@attrs.define
class InMemoryArchiveStore:
    """`ArchiveStore` in memory, with S3's conditional writes: a write names the entity tag of
    the object it replaces (or None: there must be none), and is refused (`ConcurrentModification`,
    S3's 412) when the object has moved on. Check and write are one step under a lock, as they
    are one request to S3."""

    objects: dict[str, bytes] = attrs.field(factory=dict)
    writes: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def read(self, key: str) -> StoredObject | None:
        with self._lock:
            data = self.objects.get(key)
        return None if data is None else StoredObject(data=data, tag=_etag(data))

    def write(self, key: str, data: bytes, *, replacing: str | None) -> None:
        with self._lock:
            current = self.objects.get(key)
            tag = None if current is None else _etag(current)
            if tag != replacing:
                raise ConcurrentModification(f"{key} is no longer the object that was read")
            self.objects[key] = bytes(data)
            self.writes += 1

    def list_keys(self, prefix: str) -> list[str]:
        with self._lock:
            return [k for k in self.objects if k.startswith(prefix) and "/" not in k[len(prefix) :]]

    def presign_download(self, key: str, *, filename: str, expires_in: int) -> str:
        return f"memory://archive/{key}?filename={filename}&expires={expires_in}"
