"""The use cases. Each takes the acting principal and enforces ownership and roles itself.

The service holds ports only; it never sees HTTP or AWS types. Storage keys are built from the
principal's own id, so a caller can only ever name its own tasks; the one exception, the
approvers' queue, reaches only tasks that are awaiting approval, and only for approvers.
"""

from __future__ import annotations

import contextlib
import string
from collections.abc import Callable
from datetime import date, datetime, timedelta

import attrs

from taskcore.commands import AddAttachment, CreateTask, TaskQuery, UpdateTask
from taskcore.cursors import CursorCodec
from taskcore.errors import (
    ConcurrentModification,
    DeadlineExceeded,
    DomainError,
    FieldError,
    Forbidden,
    IdempotencyKeyReused,
    InvalidHeader,
    InvalidQuery,
    InvalidTask,
    NotFound,
    PreconditionFailed,
    StorageRejected,
    Unavailable,
)
from taskcore.events import ApprovalDecided, Event
from taskcore.model import (
    Approval,
    Attachment,
    AttachmentId,
    Decision,
    Export,
    ExportId,
    ExportStatus,
    Principal,
    Status,
    Task,
    TaskId,
    UserId,
    due_date_problem,
)
from taskcore.ports import (
    MAX_PARTS,
    MIN_PART_SIZE,
    ApprovalWorkflow,
    AttachmentStore,
    Clock,
    ExportRepository,
    IdempotencyKeyTaken,
    IdempotencyRecord,
    IdGenerator,
    ObjectSink,
    PresignedUpload,
    StatsStore,
    TaskRepository,
    UploadedPart,
)
from taskcore.serialization import task_to_ndjson
from taskcore.stats import UserStats, delta_for

ULID_ALPHABET = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
IDEMPOTENCY_KEY_MAX = 128
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "-_.:")


def is_ulid(value: str) -> bool:
    return len(value) == 26 and value[0] in "01234567" and set(value) <= ULID_ALPHABET


@attrs.frozen(kw_only=True)
class Page:
    items: tuple[Task, ...]
    next_cursor: str | None


@attrs.frozen(kw_only=True)
class CreateResult:
    task: Task
    created: bool  # False: an idempotent replay returned the task made the first time


@attrs.frozen(kw_only=True)
class NewAttachment:
    task: Task
    attachment: Attachment
    upload: PresignedUpload


@attrs.frozen(kw_only=True)
class TaskService:
    tasks: TaskRepository
    stats: StatsStore
    attachments: AttachmentStore
    workflow: ApprovalWorkflow | None  # only the workflow consumer needs one
    clock: Clock
    ids: IdGenerator
    cursors: CursorCodec
    idempotency_ttl: timedelta = timedelta(hours=24)
    presign_ttl: timedelta = timedelta(minutes=15)

    # -- reading ---------------------------------------------------------------------------

    def get_task(self, principal: Principal, task_id: str) -> Task:
        task = self.tasks.get(principal.user_id, TaskId(task_id)) if is_ulid(task_id) else None
        if task is None:
            raise NotFound(f"task {task_id} not found")
        return task

    def list_tasks(self, principal: Principal, query: TaskQuery) -> Page:
        scope = f"tasks|{principal.user_id}|{query.status or ''}|{query.priority or ''}"
        now = self.clock.now()
        after = self.cursors.decode(scope, query.cursor, now) if query.cursor else None
        stored = self.tasks.list_owned(
            principal.user_id,
            status=query.status,
            priority=query.priority,
            limit=query.limit,
            after=after,
        )
        last = stored.last_position
        return Page(
            items=stored.items,
            next_cursor=self.cursors.encode(scope, last, now) if last is not None else None,
        )

    def get_stats(self, principal: Principal) -> UserStats:
        return self.stats.get(principal.user_id)

    # -- writing ---------------------------------------------------------------------------

    def create_task(
        self, principal: Principal, command: CreateTask, idempotency_key: str | None = None
    ) -> CreateResult:
        now = self.clock.now()
        if command.due_date is not None:
            self._check_due_date(command.due_date)
        task = Task.new(
            id=TaskId(self.ids.new_id()),
            owner_id=principal.user_id,
            title=command.title,
            description=command.description,
            priority=command.priority,
            tags=command.tags,
            due_date=command.due_date,
            now=now,
        )
        record = None
        if idempotency_key is not None:
            self._check_idempotency_key(idempotency_key)
            record = IdempotencyRecord(
                owner_id=principal.user_id,
                key=idempotency_key,
                fingerprint=command.fingerprint(),
                task=task,
                expires_at=now + self.idempotency_ttl,
            )
        try:
            self.tasks.add(task, record)
        except IdempotencyKeyTaken as taken:
            if record is None or taken.record.fingerprint != record.fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used with a different request"
                ) from None
            return CreateResult(task=taken.record.task, created=False)
        return CreateResult(task=task, created=True)

    def update_task(
        self,
        principal: Principal,
        task_id: str,
        command: UpdateTask,
        expected_version: int | None = None,
    ) -> Task:
        now = self.clock.now()

        def apply(task: Task) -> Task:
            changes = command.field_changes()
            due = changes.get("due_date")
            if due is not None and due != task.due_date:
                self._check_due_date(due)
            edited = task.edit(now, **changes)
            if isinstance(command.status, Status):
                edited = edited.transition_to(command.status, now)
            # One request, one new version, however many fields it touched.
            return edited if edited is task else attrs.evolve(edited, version=task.version + 1)

        return self._change(principal, task_id, expected_version, apply)

    def transition(
        self,
        principal: Principal,
        task_id: str,
        target: Status,
        expected_version: int | None = None,
    ) -> Task:
        """complete / start / cancel / reopen: a lifecycle move by the owner."""
        now = self.clock.now()
        return self._change(
            principal, task_id, expected_version, lambda task: task.transition_to(target, now)
        )

    def delete_task(
        self, principal: Principal, task_id: str, expected_version: int | None = None
    ) -> Task:
        task = self.get_task(principal, task_id)
        self._check_version(task, expected_version)
        try:
            self.tasks.delete(task)
        except ConcurrentModification:
            if expected_version is not None:
                raise PreconditionFailed(
                    "the task changed since that version", expected=expected_version, actual=None
                ) from None
            raise
        return task

    def add_attachment(
        self, principal: Principal, task_id: str, command: AddAttachment
    ) -> NewAttachment:
        now = self.clock.now()
        attachment = Attachment(
            id=AttachmentId(self.ids.new_id()),
            filename=command.filename,
            content_type=command.content_type,
            size=command.size,
            created_at=now,
        )
        task = self._change(
            principal, task_id, None, lambda task: task.add_attachment(attachment, now)
        )
        upload = self.attachments.presign_upload(
            attachment_key(task, attachment.id),
            content_type=attachment.content_type,
            size=attachment.size,
            expires_in=int(self.presign_ttl.total_seconds()),
        )
        return NewAttachment(task=task, attachment=attachment, upload=upload)

    def attachment_download(self, principal: Principal, task_id: str, attachment_id: str) -> str:
        task = self.get_task(principal, task_id)
        attachment = task.attachment(attachment_id)
        if attachment is None:
            raise NotFound(f"attachment {attachment_id} not found")
        return self.attachments.presign_download(
            attachment_key(task, attachment.id),
            filename=attachment.filename,
            expires_in=int(self.presign_ttl.total_seconds()),
        )

    # -- approvals -------------------------------------------------------------------------

    def list_awaiting_approval(
        self, principal: Principal, limit: int, cursor: str | None = None
    ) -> Page:
        """The approvers' queue, without the approver's own tasks (they cannot decide those)."""
        self._require_approver(principal)
        if not 1 <= limit <= 100:
            raise InvalidQuery([FieldError("limit", "must be an integer from 1 to 100")])
        scope = f"approvals|{principal.user_id}"
        now = self.clock.now()
        after = self.cursors.decode(scope, cursor, now) if cursor else None
        stored = self.tasks.list_awaiting_approval(limit=limit, after=after)
        last = stored.last_position
        return Page(
            items=tuple(t for t in stored.items if t.owner_id != principal.user_id),
            next_cursor=self.cursors.encode(scope, last, now) if last is not None else None,
        )

    def decide_approval(self, principal: Principal, task_id: str, decision: Decision) -> Task:
        self._require_approver(principal)
        task = self.tasks.get_awaiting_approval(TaskId(task_id)) if is_ulid(task_id) else None
        if task is None:
            raise NotFound(f"no task {task_id} is awaiting approval")
        if task.owner_id == principal.user_id:
            raise Forbidden("approvers cannot decide on their own tasks")
        decided = task.decide(decision, principal.user_id, self.clock.now())
        self.tasks.save(decided, expected_version=task.version)
        return decided

    def expire_approval(self, owner_id: UserId, task_id: TaskId) -> Task | None:
        return expire_approval(self.tasks, self.clock, owner_id, task_id)

    # -- reacting to events (consumers) ----------------------------------------------------

    def record_stats(self, event: Event) -> bool:
        return record_stats(self.stats, event)

    def resume_workflow(self, event: Event) -> bool:
        if self.workflow is None:
            raise RuntimeError("this service was built without an approval workflow")
        return resume_workflow(self.workflow, event)

    def remove_attachments(self, event: Event) -> int:
        return remove_attachments(self.attachments, event)

    # -- helpers ---------------------------------------------------------------------------

    def _change(
        self,
        principal: Principal,
        task_id: str,
        expected_version: int | None,
        change: Callable[[Task], Task],
    ) -> Task:
        current = self.get_task(principal, task_id)
        self._check_version(current, expected_version)
        updated = change(current)
        if updated is current:
            return current
        try:
            self.tasks.save(updated, expected_version=current.version)
        except ConcurrentModification:
            if expected_version is not None:
                raise PreconditionFailed(
                    "the task changed since that version", expected=expected_version, actual=None
                ) from None
            raise
        return updated

    @staticmethod
    def _check_version(task: Task, expected_version: int | None) -> None:
        if expected_version is not None and expected_version != task.version:
            raise PreconditionFailed(
                f"the task is at version {task.version}, not {expected_version}",
                expected=expected_version,
                actual=task.version,
            )

    def _check_due_date(self, due: date) -> None:
        problem = due_date_problem(due, self.clock.now().date())
        if problem is not None:
            raise InvalidTask([FieldError("dueDate", problem)])

    @staticmethod
    def _check_idempotency_key(key: str) -> None:
        if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not set(key) <= _KEY_CHARS:
            raise InvalidHeader(
                [
                    FieldError(
                        "Idempotency-Key",
                        f"must be 1 to {IDEMPOTENCY_KEY_MAX} characters of A-Z a-z 0-9 - _ . :",
                    )
                ]
            )

    @staticmethod
    def _require_approver(principal: Principal) -> None:
        if not principal.is_approver:
            raise Forbidden(f"only members of the '{Principal.APPROVERS}' group can do this")


def attachment_prefix(owner_id: str, task_id: str) -> str:
    return f"{owner_id}/{task_id}/"


def attachment_key(task: Task, attachment_id: str) -> str:
    return f"{attachment_prefix(task.owner_id, task.id)}{attachment_id}"


# -- use cases of the event consumers, each needing only its own ports -------------------------


def record_stats(stats: StatsStore, event: Event) -> bool:
    """Fold an event into its owner's stats, once per event id; False if nothing changed."""
    delta = delta_for(event)
    if delta is None:
        return False
    return stats.apply(event.owner_id, event.event_id, delta)


def remove_attachments(attachments: AttachmentStore, event: Event) -> int:
    """After a task is deleted, its files go too (idempotent: a second run finds none)."""
    return attachments.delete_prefix(attachment_prefix(event.owner_id, event.task_id))


def decision_output(task: Task) -> dict[str, str]:
    """What the approval workflow's waiting task returns: the outcome, and who decided when."""
    return {
        "approval": task.approval.value,
        "decidedBy": task.approval_decided_by or "",
        "decidedAt": task.approval_decided_at.isoformat() if task.approval_decided_at else "",
    }


def resume_workflow(workflow: ApprovalWorkflow, event: Event) -> bool:
    """A decided approval (approve or reject) releases the workflow waiting on it. An expiry
    does not: the workflow expired it itself."""
    if not isinstance(event, ApprovalDecided) or event.outcome is Approval.EXPIRED:
        return False
    return workflow.decided(event.task)


def expire_approval(
    tasks: TaskRepository, clock: Clock, owner_id: UserId, task_id: TaskId
) -> Task | None:
    """The workflow's timeout: expire the approval if still awaited; None if it was not
    (decided, cancelled or deleted meanwhile). A conditional write: a decision that lands
    at the same moment wins or loses cleanly, never both."""
    task = tasks.get(owner_id, task_id)
    if task is None or not task.awaiting_approval:
        return None
    expired = task.expire_approval(clock.now())
    tasks.save(expired, expected_version=task.version)
    return expired


# -- exports -----------------------------------------------------------------------------------

NDJSON = "application/x-ndjson"
EXPORT_PART_SIZE = 8 * 1024 * 1024
"""Bytes sent per part: what a run holds in memory at most, whatever the number of tasks. At
10,000 parts an export can reach 78 GiB."""


def export_key(owner_id: str, export_id: str) -> str:
    return f"exports/{owner_id}/{export_id}.ndjson"


@attrs.define
class MultipartWriter:
    """Streams bytes into one multipart upload, holding at most one part in memory.

    Bytes are buffered until a part is full, then sent; `close` sends what is left as the last
    part (which may be small, even empty for an empty export) and completes the upload.
    """

    sink: ObjectSink
    key: str
    upload_id: str
    part_size: int = EXPORT_PART_SIZE
    size: int = attrs.field(default=0, init=False)
    """Bytes written so far."""
    _buffer: bytearray = attrs.field(factory=bytearray, init=False, repr=False)
    _parts: list[UploadedPart] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        if self.part_size < MIN_PART_SIZE:
            raise ValueError(f"parts must be at least {MIN_PART_SIZE} bytes (but the last)")

    @property
    def parts(self) -> tuple[UploadedPart, ...]:
        return tuple(self._parts)

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= self.part_size:
            self._send()

    def _send(self) -> None:
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise StorageRejected(f"an object has at most {MAX_PARTS} parts")
        # Hand the buffer over rather than copy it (a copy would double the peak), and start
        # a new one: the part's memory goes back once it is sent.
        data, self._buffer = self._buffer, bytearray()
        self._parts.append(self.sink.upload_part(self.key, self.upload_id, number, data))

    def close(self) -> None:
        if self._buffer or not self._parts:
            self._send()
        self.sink.complete_upload(self.key, self.upload_id, self.parts)


@attrs.frozen(kw_only=True)
class ExportView:
    """An export as its owner sees it: with a fresh download link once it is completed."""

    export: Export
    download_url: str | None = None
    download_expires_at: datetime | None = None


class _Superseded(Exception):
    """Another run owns the export now (it took over a run it thought dead): stop quietly."""


def failure_reason(error: Exception) -> str:
    """What the owner is told when a run fails: the kind of failure, never internals."""
    if isinstance(error, DeadlineExceeded):
        return "the export took longer than a run may last"
    if isinstance(error, Unavailable):
        return "storage was unavailable"
    return "an internal error stopped the export"


@attrs.frozen(kw_only=True)
class ExportService:
    """Exports of all of a user's tasks to NDJSON objects.

    The API records a request (`request_export`) and returns at once; the `ExportRequested`
    event the record's insertion produces starts a worker (`run_export`), which pages through
    the tasks and streams them into a multipart upload with constant memory. A separate service
    from `TaskService`: it needs other ports (an object sink, export records), and the worker
    builds only what it uses.
    """

    exports: ExportRepository
    tasks: TaskRepository
    objects: ObjectSink
    clock: Clock
    ids: IdGenerator
    page_size: int = 100
    progress_every: int = 1000
    """Items between progress writes: at most one extra write per this many items."""
    part_size: int = EXPORT_PART_SIZE
    link_ttl: timedelta = timedelta(minutes=15)
    time_margin_s: float = 30.0
    """A run stops (and fails, to be retried) when its runtime has less than this left."""

    def request_export(self, principal: Principal) -> Export:
        export = Export.new(
            id=ExportId(self.ids.new_id()), owner_id=principal.user_id, now=self.clock.now()
        )
        self.exports.add(export)
        return export

    def get_export(self, principal: Principal, export_id: str) -> ExportView:
        export = None
        if is_ulid(export_id):  # the owner comes from the principal: nobody else's exports
            export = self.exports.get(principal.user_id, ExportId(export_id))
        if export is None:
            raise NotFound(f"export {export_id} not found")
        if export.status is not ExportStatus.COMPLETED:
            return ExportView(export=export)
        url = self.objects.presign_download(
            export_key(export.owner_id, export.id),
            filename=f"tasks-{export.id}.ndjson",
            expires_in=int(self.link_ttl.total_seconds()),
        )
        return ExportView(
            export=export, download_url=url, download_expires_at=self.clock.now() + self.link_ttl
        )

    def run_export(
        self,
        owner_id: UserId,
        export_id: ExportId,
        remaining_s: Callable[[], float] | None = None,
    ) -> Export | None:
        """Run the export: every task of the owner, newest first, one JSON document per line.

        Safe to call again with the same export (events are delivered at least once): only the
        caller whose conditional write moves it to `running` works on it. A completed export, a
        live run, or an export out of retries is left alone, and None is returned. On failure
        the upload is aborted, the export is marked `failed` and the error is raised again, so
        the platform retries; a retry starts from scratch. `remaining_s` tells how many seconds
        the runtime has left: the run fails cleanly before it would be cut off.
        """
        export = self.exports.get(owner_id, export_id)
        if export is None or not export.can_start(self.clock.now()):
            return None
        key = export_key(owner_id, export_id)
        upload_id = self.objects.start_upload(key, content_type=NDJSON)
        running = export.start(self.clock.now(), upload_id)
        try:
            self.exports.save(running, expected_version=export.version)
        except (ConcurrentModification, NotFound):
            self._abort_quietly(key, upload_id)  # another worker claimed it first
            return None
        if export.upload_id is not None:
            self._abort_quietly(key, export.upload_id)  # left behind by the run replaced here
        run = _ExportRun(
            service=self,
            export=running,
            writer=MultipartWriter(self.objects, key, upload_id, self.part_size),
        )
        try:
            return run.execute(remaining_s)
        except _Superseded:
            self._abort_quietly(key, upload_id)
            return None
        except Exception as error:
            self._abort_quietly(key, upload_id)
            try:
                run.save(run.export.fail(self.clock.now(), failure_reason(error)))
            except _Superseded:
                return None
            raise

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        """Best effort: an upload left behind is aborted by the next run (its id stays on the
        export) or, at worst, by the bucket's rule for incomplete multipart uploads."""
        with contextlib.suppress(DomainError):
            self.objects.abort_upload(key, upload_id)


@attrs.define
class _ExportRun:
    """One run of an export: the record as last saved, and the upload being written."""

    service: ExportService
    export: Export
    writer: MultipartWriter

    def save(self, updated: Export) -> None:
        try:
            self.service.exports.save(updated, expected_version=self.export.version)
        except (ConcurrentModification, NotFound):
            raise _Superseded from None
        self.export = updated

    def execute(self, remaining_s: Callable[[], float] | None) -> Export:
        service, owner_id = self.service, self.export.owner_id
        items, after = 0, None
        while True:
            if remaining_s is not None and remaining_s() < service.time_margin_s:
                raise DeadlineExceeded(f"export {self.export.id} ran out of time")
            page = service.tasks.list_owned(
                owner_id, status=None, priority=None, limit=service.page_size, after=after
            )
            for task in page.items:
                self.writer.write(task_to_ndjson(task))
                items += 1
                if items % service.progress_every == 0:
                    progress = self.export.progress(
                        service.clock.now(), items=items, size=self.writer.size
                    )
                    self.save(progress)
            if page.last_position is None:
                break
            after = page.last_position
        self.writer.close()
        self.save(self.export.complete(service.clock.now(), items=items, size=self.writer.size))
        return self.export
