"""The task use cases behind the HTTP API: reading, writing, attachments and approvals.

Each takes the acting principal and enforces ownership and roles itself. The service holds
ports only; it never sees HTTP or AWS types. Storage keys are built from the principal's own
id, so a caller can only ever name its own tasks; the one exception, the approvers' queue,
reaches only tasks that are awaiting approval, and only for approvers.

What happens *after* a change (stats, attachment clean-up, the approval workflow) is not here:
see `taskcore.services.reactions`.
"""

from __future__ import annotations

import contextlib
import string
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import attrs

from taskcore.auto_approval import AUTO_PREFIX, AutoApprovalRule, matching_rule
from taskcore.commands import AddAttachment, CreateTask, TaskQuery, UpdateTask
from taskcore.errors import (
    ConcurrentModification,
    FieldError,
    Forbidden,
    IdempotencyKeyReused,
    InvalidHeader,
    InvalidQuery,
    InvalidTask,
    NotFound,
    PreconditionFailed,
)
from taskcore.model import (
    Attachment,
    AttachmentId,
    Decision,
    Principal,
    Status,
    Task,
    TaskId,
    due_date_problem,
)
from taskcore.ports import (
    AttachmentStore,
    Clock,
    Cursors,
    IdempotencyKeyTaken,
    IdempotencyRecord,
    IdGenerator,
    PresignedUpload,
    StatsStore,
    TaskRepository,
)
from taskcore.services.attachments import attachment_key
from taskcore.services.ids import is_ulid
from taskcore.stats import UserStats

IDEMPOTENCY_KEY_MAX = 128
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "-_.:")


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


@contextlib.contextmanager
def _precondition(expected_version: int | None) -> Iterator[None]:
    """A write that lost a race: with If-Match, the version the client named is gone (412);
    without, the caller retries or reports the conflict."""
    try:
        yield
    except ConcurrentModification:
        if expected_version is not None:
            raise PreconditionFailed(
                "the task changed since that version", expected=expected_version, actual=None
            ) from None
        raise


@attrs.frozen(kw_only=True)
class TaskService:
    tasks: TaskRepository
    stats: StatsStore
    attachments: AttachmentStore
    clock: Clock
    ids: IdGenerator
    cursors: Cursors
    idempotency_ttl: timedelta = timedelta(hours=24)
    presign_ttl: timedelta = timedelta(minutes=15)
    auto_approval: tuple[AutoApprovalRule, ...] = ()
    """The stack's auto-approval rules, first match wins (`taskcore.auto_approval`)."""

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
        rule = matching_rule(self.auto_approval, command.priority, principal.groups)
        task = Task.new(
            id=TaskId(self.ids.new_id(now)),
            owner_id=principal.user_id,
            title=command.title,
            description=command.description,
            priority=command.priority,
            tags=command.tags,
            due_date=command.due_date,
            now=now,
            approved_by=rule.decided_by if rule is not None else None,
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
            # An edit that makes the task need an approval is approved by the first rule for
            # its new priority and the editor's groups (only the owner edits), as a new task is.
            priority = changes.get("priority", task.priority)
            rule = matching_rule(self.auto_approval, priority, principal.groups)
            edited = task.edit(
                now, approved_by=rule.decided_by if rule is not None else None, **changes
            )
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
        with _precondition(expected_version):
            self.tasks.delete(task)
        return task

    def add_attachment(
        self, principal: Principal, task_id: str, command: AddAttachment
    ) -> NewAttachment:
        now = self.clock.now()
        attachment = Attachment(
            id=AttachmentId(self.ids.new_id(now)),
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
        if principal.user_id.startswith(AUTO_PREFIX):
            # `approvalDecidedBy: auto:<rule>` must always mean a rule, never a person.
            raise Forbidden(f"user ids beginning with {AUTO_PREFIX!r} are the rules'")
        task = self.tasks.get_awaiting_approval(TaskId(task_id)) if is_ulid(task_id) else None
        if task is None:
            raise NotFound(f"no task {task_id} is awaiting approval")
        if task.owner_id == principal.user_id:
            raise Forbidden("approvers cannot decide on their own tasks")
        decided = task.decide(decision, principal.user_id, self.clock.now())
        self.tasks.save(decided, expected_version=task.version)
        return decided

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
        with _precondition(expected_version):
            self.tasks.save(updated, expected_version=current.version)
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
