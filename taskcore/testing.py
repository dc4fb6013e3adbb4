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

import secrets
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs

from taskcore.cursors import CursorCodec, Position
from taskcore.errors import ConcurrentModification, Conflict, NotFound
from taskcore.events import Event, derive_events
from taskcore.model import Principal, Priority, Status, Task, TaskId, UserId
from taskcore.ports import (
    Clock,
    IdempotencyKeyTaken,
    IdempotencyRecord,
    PresignedUpload,
    StoredPage,
)
from taskcore.services import TaskService
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

    def new_id(self) -> str:
        self.counter += 1
        value, digits = self.counter, []
        for _ in range(26):
            value, digit = divmod(value, 32)
            digits.append(CROCKFORD[digit])
        return "".join(reversed(digits))


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
        matching = sorted(
            (t for t in self.tasks.values() if t.awaiting_approval), key=lambda t: t.id
        )
        return self._page(matching, limit, after, newest_first=False)

    def get_awaiting_approval(self, task_id: TaskId) -> Task | None:
        return next(
            (t for t in self.tasks.values() if t.id == task_id and t.awaiting_approval), None
        )

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
    published: list[Event] = attrs.field(factory=list)
    fail_ids: set[str] = attrs.field(factory=set)
    """Event ids to refuse, to exercise partial-batch failure handling."""

    def publish(self, events: Sequence[Event]) -> list[Event]:
        if len(events) > 10:
            raise ValueError("a batch holds at most 10 events")
        failed = [e for e in events if e.event_id in self.fail_ids]
        self.published.extend(e for e in events if e.event_id not in self.fail_ids)
        return failed


@attrs.define
class InMemoryApprovalWorkflow:
    resumed: list[Task] = attrs.field(factory=list)

    def resume(self, task: Task) -> None:
        self.resumed.append(task)


@attrs.frozen(kw_only=True)
class Fakes:
    """A TaskService wired to in-memory adapters, with the adapters at hand for assertions."""

    service: TaskService
    tasks: InMemoryTaskRepository
    stats: InMemoryStatsStore
    attachments: InMemoryAttachmentStore
    workflow: InMemoryApprovalWorkflow
    clock: FixedClock
    ids: SequentialIds


def in_memory_service(clock: FixedClock | None = None) -> Fakes:
    clock = clock or FixedClock()
    tasks = InMemoryTaskRepository(clock=clock)
    stats = InMemoryStatsStore()
    attachments = InMemoryAttachmentStore(clock=clock)
    workflow = InMemoryApprovalWorkflow()
    ids = SequentialIds()
    service = TaskService(
        tasks=tasks,
        stats=stats,
        attachments=attachments,
        workflow=workflow,
        clock=clock,
        ids=ids,
        cursors=CursorCodec(secrets.token_bytes(32)),
    )
    return Fakes(
        service=service,
        tasks=tasks,
        stats=stats,
        attachments=attachments,
        workflow=workflow,
        clock=clock,
        ids=ids,
    )
