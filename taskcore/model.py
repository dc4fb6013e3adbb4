"""The task entity, its value types and its rules.

`Task` is immutable: every change returns a new instance (via `attrs.evolve`) with the version
bumped, so a half-applied change cannot exist. Invariants are checked on every construction.

Lifecycle::

    pending -> in_progress -> completed -> (reopen) in_progress
    pending | in_progress -> cancelled            (cancelled is final)

High and critical tasks need an approval before they can start; a rejected or expired approval
cancels the task.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any, NewType

import attrs
from attrs.validators import ge, optional

from taskcore.errors import FieldError, InvalidTask, InvalidTransition

TaskId = NewType("TaskId", str)
UserId = NewType("UserId", str)
AttachmentId = NewType("AttachmentId", str)

TITLE_MAX = 200
DESCRIPTION_MAX = 4000
TAGS_MAX = 10
TAG_MAX = 32
ATTACHMENTS_MAX = 20
FILENAME_MAX = 255
DUE_DATE_HORIZON = timedelta(days=366 * 10)


class Status(enum.StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def is_open(self) -> bool:
        """Still to be done: pending or in progress (what a due-date reminder is for)."""
        return self in (Status.PENDING, Status.IN_PROGRESS)


class Priority(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def needs_approval(self) -> bool:
        return self in (Priority.HIGH, Priority.CRITICAL)


class Approval(enum.StrEnum):
    NOT_REQUIRED = "not_required"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def allows_start(self) -> bool:
        return self in (Approval.NOT_REQUIRED, Approval.APPROVED)


class Decision(enum.StrEnum):
    """What an approver can say. Expiry is not a decision: the workflow's timeout does it."""

    APPROVE = "approve"
    REJECT = "reject"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.IN_PROGRESS, Status.CANCELLED}),
    Status.IN_PROGRESS: frozenset({Status.COMPLETED, Status.CANCELLED}),
    Status.COMPLETED: frozenset({Status.IN_PROGRESS}),
    Status.CANCELLED: frozenset(),
}

MUTABLE_FIELDS = ("title", "description", "priority", "tags", "due_date")


def _has_control_chars(value: str, allowed: str = "") -> bool:
    """Control characters, and lone surrogates (which no UTF-8 response could carry)."""
    return any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed for ch in value)


def title_problem(value: object) -> str | None:
    """Why `value` is not a valid title, or None. Shared by model validators and parsers."""
    if not isinstance(value, str):
        return "must be a string"
    if not value.strip():
        return "must not be empty"
    if len(value) > TITLE_MAX:
        return f"must be at most {TITLE_MAX} characters"
    if _has_control_chars(value):
        return "must not contain control characters"
    return None


def description_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > DESCRIPTION_MAX:
        return f"must be at most {DESCRIPTION_MAX} characters"
    if _has_control_chars(value, allowed="\n\r\t"):
        return "must not contain control characters other than newlines and tabs"
    return None


def tags_problems(value: object) -> list[FieldError]:
    if not isinstance(value, list | tuple):
        return [FieldError("tags", "must be a list of strings")]
    if len(value) > TAGS_MAX:
        return [FieldError("tags", f"must have at most {TAGS_MAX} tags")]
    problems: list[FieldError] = []
    seen: set[str] = set()
    for index, tag in enumerate(value):
        where = f"tags/{index}"
        if not isinstance(tag, str):
            problems.append(FieldError(where, "must be a string"))
        elif not tag.strip():
            problems.append(FieldError(where, "must not be empty"))
        elif len(tag) > TAG_MAX:
            problems.append(FieldError(where, f"must be at most {TAG_MAX} characters"))
        elif _has_control_chars(tag) or tag != tag.strip():
            problems.append(FieldError(where, "must not contain control or surrounding spaces"))
        elif tag in seen:
            problems.append(FieldError(where, "is a duplicate"))
        else:
            seen.add(tag)
    return problems


def due_date_problem(value: date, today: date) -> str | None:
    """Due dates are calendar days (UTC); a new one may not lie in the past."""
    if value < today:
        return "must not be in the past"
    if value > today + DUE_DATE_HORIZON:
        return "must be within ten years"
    return None


def filename_problem(value: object) -> str | None:
    """Attachment names are plain file names: no paths, no traversal, no control chars."""
    if not isinstance(value, str):
        return "must be a string"
    if not value.strip() or value in (".", ".."):
        return "must be a file name"
    if len(value) > FILENAME_MAX:
        return f"must be at most {FILENAME_MAX} characters"
    if "/" in value or "\\" in value:
        return "must not contain path separators"
    if _has_control_chars(value):
        return "must not contain control characters"
    return None


# Characters a reader may take for a path separator: Windows' "best fit" code pages turn
# some of them into `/` or `\` (NFKC, applied below, folds the fullwidth and small forms).
SEPARATOR_LOOKALIKES = frozenset("\u2044\u2215\u29f8\u29f9")
# Bidirectional controls: `invoice\u202efdp.exe` shows as `invoiceexe.pdf`.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def new_filename_problem(value: object) -> str | None:
    """Why `value` may not name a *new* attachment, or None: a plain file name
    (`filename_problem`) that no reader could take for a path or a different name either.

    Stricter than what an attachment may hold (names stored before a rule existed must stay
    readable), like `due_date_problem` for new due dates.
    """
    problem = filename_problem(value)
    if problem is not None:
        return problem
    assert isinstance(value, str)
    folded = unicodedata.normalize("NFKC", value)
    if not folded.strip(". "):  # `...`, `. .`, fullwidth dots: Windows trims them to nothing
        return "must be a file name"
    if "/" in folded or "\\" in folded or not SEPARATOR_LOOKALIKES.isdisjoint(folded):
        return "must not contain path separators or look-alikes"
    if PERCENT_ESCAPE.search(folded):  # `..%2F..%2Fetc%2Fpasswd`, once a reader decodes it
        return "must not contain percent-escapes"
    if not BIDI_CONTROLS.isdisjoint(value):
        return "must not contain bidirectional controls"
    return None


# A task's field checks stay hand-written: they raise `InvalidTask` naming the field (what the
# API reports as problem+json), where attrs' own validators (`ge`, `max_len`, ...) raise a bare
# ValueError; and the `*_problem` rules they run are the parsers' too (`taskcore.commands`).


def _single(
    problem: Callable[[object], str | None],
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        message = problem(value)
        if message is not None:
            raise InvalidTask([FieldError(attribute.name, message)])

    return check


def _check_tags(_instance: Any, _attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    problems = tags_problems(value)
    if problems:
        raise InvalidTask(problems)


def _utc(_instance: Any, attribute: attrs.Attribute[Any], value: datetime) -> None:
    if value.utcoffset() != timedelta(0):
        raise InvalidTask([FieldError(attribute.name, "must be a UTC timestamp")])


# Typed converters rather than `converter=tuple`: mypy's attrs plugin reads the parameter type
# of `__init__` from the converter's, and `tuple`'s is an unbound `Iterable[_T_co]`.
def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _attachment_tuple(value: Iterable[Attachment]) -> tuple[Attachment, ...]:
    return tuple(value)


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise InvalidTask([FieldError(attribute.name, "must be at least 1")])


@attrs.frozen(kw_only=True)
class Attachment:
    """Metadata of a file attached to a task; the bytes live in the attachment store."""

    id: AttachmentId
    filename: str = attrs.field(validator=_single(filename_problem))
    content_type: str
    size: int
    created_at: datetime = attrs.field(validator=_utc)


@attrs.frozen(kw_only=True)
class Principal:
    """Who is acting: the JWT subject and its groups. Every use case takes one."""

    user_id: UserId
    groups: frozenset[str] = frozenset()

    APPROVERS = "approvers"

    @property
    def is_approver(self) -> bool:
        return self.APPROVERS in self.groups


@attrs.frozen(kw_only=True)
class Task:
    id: TaskId
    owner_id: UserId
    title: str = attrs.field(validator=_single(title_problem))
    description: str = attrs.field(default="", validator=_single(description_problem))
    status: Status = Status.PENDING
    priority: Priority = Priority.MEDIUM
    approval: Approval = Approval.NOT_REQUIRED
    tags: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple, validator=_check_tags)
    due_date: date | None = None
    created_at: datetime = attrs.field(validator=_utc)
    updated_at: datetime = attrs.field(validator=_utc)
    completed_at: datetime | None = attrs.field(default=None, validator=optional(_utc))
    approval_decided_by: UserId | None = None
    approval_decided_at: datetime | None = attrs.field(default=None, validator=optional(_utc))
    attachments: tuple[Attachment, ...] = attrs.field(default=(), converter=_attachment_tuple)
    version: int = attrs.field(default=1, validator=_positive)

    def __attrs_post_init__(self) -> None:
        problems = list(self._invariant_problems())
        if problems:
            raise InvalidTask(problems)

    def _invariant_problems(self) -> Iterable[FieldError]:
        if self.updated_at < self.created_at:
            yield FieldError("updated_at", "must not be before created_at")
        if (self.status is Status.COMPLETED) != (self.completed_at is not None):
            yield FieldError("completed_at", "is set exactly when the task is completed")
        if self.status in (Status.IN_PROGRESS, Status.COMPLETED) and not self.approval.allows_start:
            yield FieldError("approval", f"a {self.approval} approval does not allow starting")
        if self.approval in (Approval.REJECTED, Approval.EXPIRED) and (
            self.status is not Status.CANCELLED
        ):
            yield FieldError("status", f"a {self.approval} approval cancels the task")
        if (
            self.status is Status.PENDING
            and self.priority.needs_approval
            and self.approval is Approval.NOT_REQUIRED
        ):
            yield FieldError("approval", f"a {self.priority} task needs an approval to start")
        decided = self.approval in (Approval.APPROVED, Approval.REJECTED, Approval.EXPIRED)
        if decided != (self.approval_decided_at is not None):
            yield FieldError("approval_decided_at", "is set exactly when the approval is decided")
        by_person = self.approval in (Approval.APPROVED, Approval.REJECTED)
        if by_person != (self.approval_decided_by is not None):
            yield FieldError("approval_decided_by", "is set exactly when a person decided")
        if len(self.attachments) > ATTACHMENTS_MAX:
            yield FieldError("attachments", f"at most {ATTACHMENTS_MAX} per task")
        if len({a.id for a in self.attachments}) != len(self.attachments):
            yield FieldError("attachments", "ids must be unique")

    @classmethod
    def new(
        cls,
        *,
        id: TaskId,
        owner_id: UserId,
        title: str,
        now: datetime,
        description: str = "",
        priority: Priority = Priority.MEDIUM,
        tags: Iterable[str] = (),
        due_date: date | None = None,
        approved_by: UserId | None = None,
    ) -> Task:
        """A new task; `approved_by` (an auto-approval rule's `auto:<name>`) makes a task that
        needs approval start approved, decided at `now`, never awaiting a person."""
        approval = Approval.PENDING if priority.needs_approval else Approval.NOT_REQUIRED
        approved = approved_by is not None and approval is Approval.PENDING
        return cls(
            id=id,
            owner_id=owner_id,
            title=title,
            description=description,
            priority=priority,
            approval=Approval.APPROVED if approved else approval,
            approval_decided_by=approved_by if approved else None,
            approval_decided_at=now if approved else None,
            tags=tuple(tags),
            due_date=due_date,
            created_at=now,
            updated_at=now,
        )

    @property
    def awaiting_approval(self) -> bool:
        """In the approvers' queue: the approval is pending and the task has not moved on."""
        return self.approval is Approval.PENDING and self.status is Status.PENDING

    def _bump(self, now: datetime, **changes: Any) -> Task:
        return attrs.evolve(
            self, updated_at=max(now, self.updated_at), version=self.version + 1, **changes
        )

    def edit(self, now: datetime, *, approved_by: UserId | None = None, **changes: Any) -> Task:
        """Change mutable fields. Unchanged values are dropped; no change, no new version.

        Raising the priority of a pending task that needed no approval to one that does asks
        for one; with `approved_by` (an auto-approval rule's `auto:<name>`, as for `new`) it is
        approved at once instead, decided at `now`, never awaiting a person."""
        unknown = set(changes) - set(MUTABLE_FIELDS)
        if unknown:
            raise InvalidTask(
                [FieldError(name, "is not a mutable field") for name in sorted(unknown)]
            )
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if "tags" in effective:
            effective["tags"] = tuple(effective["tags"])
            if effective["tags"] == self.tags:
                del effective["tags"]
        if not effective:
            return self
        if self.status is Status.CANCELLED:
            raise InvalidTransition(
                "a cancelled task cannot be edited", current=self.status, requested="edit"
            )
        priority = effective.get("priority", self.priority)
        if (
            priority.needs_approval
            and self.status is Status.PENDING
            and self.approval is Approval.NOT_REQUIRED
        ):
            effective["approval"] = Approval.PENDING
            if approved_by is not None:
                effective |= {
                    "approval": Approval.APPROVED,
                    "approval_decided_by": approved_by,
                    "approval_decided_at": now,
                }
        return self._bump(now, **effective)

    def transition_to(self, target: Status, now: datetime) -> Task:
        if target is self.status:
            return self
        if target not in TRANSITIONS[self.status]:
            raise InvalidTransition(
                f"cannot go from {self.status} to {target}", current=self.status, requested=target
            )
        if target is Status.IN_PROGRESS and not self.approval.allows_start:
            raise InvalidTransition(
                f"cannot start while the approval is {self.approval}",
                current=self.status,
                requested=target,
            )
        completed_at = now if target is Status.COMPLETED else None
        return self._bump(now, status=target, completed_at=completed_at)

    def decide(self, decision: Decision, by: UserId, now: datetime) -> Task:
        if not self.awaiting_approval:
            raise InvalidTransition(
                "the task is not awaiting approval", current=self.approval, requested=decision
            )
        if decision is Decision.APPROVE:
            return self._bump(
                now, approval=Approval.APPROVED, approval_decided_by=by, approval_decided_at=now
            )
        return self._bump(
            now,
            approval=Approval.REJECTED,
            status=Status.CANCELLED,
            approval_decided_by=by,
            approval_decided_at=now,
        )

    def expire_approval(self, now: datetime) -> Task:
        if not self.awaiting_approval:
            raise InvalidTransition(
                "the task is not awaiting approval", current=self.approval, requested="expire"
            )
        return self._bump(
            now, approval=Approval.EXPIRED, status=Status.CANCELLED, approval_decided_at=now
        )

    def add_attachment(self, attachment: Attachment, now: datetime) -> Task:
        if self.status is Status.CANCELLED:
            raise InvalidTransition(
                "a cancelled task cannot take attachments", current=self.status, requested="attach"
            )
        if len(self.attachments) >= ATTACHMENTS_MAX:
            raise InvalidTask(
                [FieldError("attachments", f"a task has at most {ATTACHMENTS_MAX} attachments")]
            )
        return self._bump(now, attachments=(*self.attachments, attachment))

    def attachment(self, attachment_id: str) -> Attachment | None:
        return next((a for a in self.attachments if a.id == attachment_id), None)

    def archive_at(self, after: timedelta | None) -> datetime | None:
        """When the task leaves the table for its owner's archive: `after` its completion (the
        stack's `archiveCompletedAfterDays`). None while it is not completed (a reopened task
        stays), or when `after` is None (the stack archives nothing)."""
        if after is None or self.completed_at is None:
            return None
        return self.completed_at + after


# -- exports -----------------------------------------------------------------------------------

ExportId = NewType("ExportId", str)

EXPORT_MAX_ATTEMPTS = 3
"""Runs an export may take (the first and its retries) before it stays failed."""
EXPORT_STALE_AFTER = timedelta(minutes=16)
"""A running export whose record has not moved for this long has no live worker: a Lambda
function runs for at most 15 minutes, and a live run refreshes the record as it goes."""


class ExportStatus(enum.StrEnum):
    REQUESTED = "requested"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


def _utc_moment(_instance: Any, attribute: attrs.Attribute[Any], value: datetime) -> None:
    """`_utc` for an export: its invariants raise ValueError (a bug, not the caller's input)."""
    if value.utcoffset() != timedelta(0):
        raise ValueError(f"{attribute.name} must be a UTC timestamp")


@attrs.frozen(kw_only=True)
class Export:
    """One export of all of an owner's tasks into one NDJSON object.

    Lifecycle::

        requested -> running -> completed
                     running -> failed -> running      (a retry starts from scratch)
                     running -> running                (a stale run is taken over)

    `upload_id` is the object upload of the current (or last failed) run, kept so that a
    retry can abort an upload its predecessor left behind. An invalid export is a bug, never
    the caller's input, so invariants raise `ValueError`.
    """

    id: ExportId
    owner_id: UserId
    status: ExportStatus = ExportStatus.REQUESTED
    items_written: int = attrs.field(default=0, validator=ge(0))
    bytes_written: int = attrs.field(default=0, validator=ge(0))
    attempts: int = attrs.field(default=0, validator=ge(0))
    upload_id: str | None = None
    error: str | None = None
    created_at: datetime = attrs.field(validator=_utc_moment)
    updated_at: datetime = attrs.field(validator=_utc_moment)
    started_at: datetime | None = attrs.field(default=None, validator=optional(_utc_moment))
    completed_at: datetime | None = attrs.field(default=None, validator=optional(_utc_moment))
    version: int = attrs.field(default=1, validator=ge(1))

    def __attrs_post_init__(self) -> None:
        problems = list(self._invariant_problems())
        if problems:
            raise ValueError(f"invalid export {self.id}: " + "; ".join(problems))

    def _invariant_problems(self) -> Iterable[str]:
        requested = self.status is ExportStatus.REQUESTED
        if self.updated_at < self.created_at:
            yield "updated_at must not be before created_at"
        if requested != (self.attempts == 0):
            yield "attempts is 0 exactly while requested"
        if requested != (self.started_at is None):
            yield "started_at is set exactly once started"
        if requested and (self.upload_id is not None or self.items_written or self.bytes_written):
            yield "a requested export has written nothing"
        if (self.status is ExportStatus.COMPLETED) != (self.completed_at is not None):
            yield "completed_at is set exactly when completed"
        if self.status is ExportStatus.COMPLETED and self.upload_id is not None:
            yield "a completed export has no open upload"
        if (self.status is ExportStatus.FAILED) != (self.error is not None):
            yield "error is set exactly when failed"

    @classmethod
    def new(cls, *, id: ExportId, owner_id: UserId, now: datetime) -> Export:
        return cls(id=id, owner_id=owner_id, created_at=now, updated_at=now)

    @property
    def finished(self) -> bool:
        return self.status in (ExportStatus.COMPLETED, ExportStatus.FAILED)

    def can_start(self, now: datetime) -> bool:
        """Whether a worker may (re)start this export now: it was never started, a failed run
        has retries left, or a running one stopped moving (its worker is gone)."""
        if self.status is ExportStatus.REQUESTED:
            return True
        if self.status is ExportStatus.COMPLETED or self.attempts >= EXPORT_MAX_ATTEMPTS:
            return False
        if self.status is ExportStatus.RUNNING:
            return now - self.updated_at >= EXPORT_STALE_AFTER
        return True  # failed, with attempts left

    def start(self, now: datetime, upload_id: str) -> Export:
        """A new run, from scratch, writing into the upload `upload_id`."""
        if not self.can_start(now):
            raise InvalidTransition(
                f"export {self.id} cannot start now (status {self.status}, "
                f"attempt {self.attempts} of {EXPORT_MAX_ATTEMPTS})",
                current=self.status,
                requested=ExportStatus.RUNNING,
            )
        return self._bump(
            now,
            status=ExportStatus.RUNNING,
            attempts=self.attempts + 1,
            upload_id=upload_id,
            items_written=0,
            bytes_written=0,
            error=None,
            started_at=now,
        )

    def _require_running(self, requested: str) -> None:
        if self.status is not ExportStatus.RUNNING:
            raise InvalidTransition(
                f"export {self.id} is {self.status}, not running",
                current=self.status,
                requested=requested,
            )

    def progress(self, now: datetime, *, items: int, size: int) -> Export:
        """How far the run got: the items and bytes written so far."""
        self._require_running("progress")
        if items < self.items_written or size < self.bytes_written:
            raise ValueError("progress never goes backwards within a run")
        return self._bump(now, items_written=items, bytes_written=size)

    def complete(self, now: datetime, *, items: int, size: int) -> Export:
        self._require_running(ExportStatus.COMPLETED)
        return self._bump(
            now,
            status=ExportStatus.COMPLETED,
            items_written=items,
            bytes_written=size,
            upload_id=None,
            completed_at=now,
        )

    def fail(self, now: datetime, reason: str) -> Export:
        self._require_running(ExportStatus.FAILED)
        return self._bump(now, status=ExportStatus.FAILED, error=reason or "failed")

    def _bump(self, now: datetime, **changes: Any) -> Export:
        return attrs.evolve(
            self, updated_at=max(now, self.updated_at), version=self.version + 1, **changes
        )
