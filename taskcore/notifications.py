"""Notifications: what an event tells people, and who they are.

A notification is addressed to an inbox: a user's own (`user:<sub>`), or the approvers' shared
one (`group:approvers`): approval requests are addressed to a role, the way the approvers' queue
is, so no directory of who the approvers are is needed, and an operator subscribes the
approvers' email list to them by that address (an SNS filter policy on `recipient`).

- an approval requested (and still awaited: an auto-approved task asks nobody) → the approvers;
- an approval decided (approved, rejected) or expired → the task's owner;
- a task due tomorrow (`TaskDueSoon`, from the reminders' sweep) → the task's owner.

A notification's id is derived from its event and its recipient (a ULID whose time is the
event's, `made_at`, and whose other 80 bits are a digest of both), so a redelivered event makes
the same notification, which the inbox stores once: one event, one notification per recipient.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import UTC, date, datetime, time, timedelta
from typing import NewType

import attrs
import ulid

from taskcore.events import ApprovalDecided, ApprovalRequested, Event, TaskDueSoon
from taskcore.model import Approval, Principal, Priority, Status, TaskId, UserId

NotificationId = NewType("NotificationId", str)

RETENTION = timedelta(days=30)
"""How long an inbox keeps a notification (DynamoDB's TTL removes it; reads hide it sooner)."""

USER = "user"
GROUP = "group"
APPROVERS_INBOX = f"{GROUP}:{Principal.APPROVERS}"


class Kind(enum.StrEnum):
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_DECIDED = "approval_decided"
    APPROVAL_EXPIRED = "approval_expired"
    DUE_SOON = "due_soon"


def user_inbox(user_id: str) -> str:
    return f"{USER}:{user_id}"


def inboxes_of(principal: Principal) -> tuple[str, ...]:
    """The inboxes a principal reads: their own, then the approvers' if they are one."""
    own = user_inbox(principal.user_id)
    return (own, APPROVERS_INBOX) if principal.is_approver else (own,)


def notification_id(event_id: str, recipient: str, at: datetime) -> NotificationId:
    """A ULID: the event's time (so an inbox sorts by it), then 80 bits of a digest of the
    event id and the recipient (so a redelivery names the same notification)."""
    millis = int(at.timestamp() * 1000)
    digest = hashlib.sha256(f"{event_id}\n{recipient}".encode()).digest()
    return NotificationId(str(ulid.ULID.from_bytes(millis.to_bytes(6, "big") + digest[:10])))


@attrs.frozen(kw_only=True)
class Notification:
    id: NotificationId
    recipient: str
    kind: Kind
    event_id: str
    task_id: TaskId
    owner_id: UserId
    title: str
    priority: Priority
    created_at: datetime
    outcome: Approval | None = None
    """What was decided (approval_decided, approval_expired)."""
    decided_by: str | None = None
    due_date: date | None = None
    """The day the task is due (due_soon)."""
    read_at: datetime | None = None
    sent_at: datetime | None = None
    """When it was published to the topic (internal: not shown by the API)."""

    @property
    def message(self) -> str:
        """One line for people (the topic's email, the inbox's text)."""
        title = f"“{self.title}”"
        if self.kind is Kind.APPROVAL_REQUESTED:
            return f"Approval requested: {title} ({self.priority.value}) by {self.owner_id}"
        if self.kind is Kind.APPROVAL_DECIDED:
            outcome = self.outcome.value if self.outcome else "decided"
            by = f" by {self.decided_by}" if self.decided_by else ""
            return f"Your task {title} was {outcome}{by}"
        if self.kind is Kind.APPROVAL_EXPIRED:
            return f"The approval of your task {title} expired: the task was cancelled"
        return f"Your task {title} is due tomorrow ({self.due_date})"

    @property
    def subject(self) -> str:
        """A short subject line (the topic's email subject)."""
        return {
            Kind.APPROVAL_REQUESTED: "Approval requested",
            Kind.APPROVAL_DECIDED: "Approval decided",
            Kind.APPROVAL_EXPIRED: "Approval expired",
            Kind.DUE_SOON: "Task due tomorrow",
        }[self.kind]

    def expires_at(self) -> datetime:
        return self.created_at + RETENTION


def _addressed(event: Event) -> list[tuple[str, Kind]]:
    task = event.task
    if isinstance(event, ApprovalRequested):
        # An auto-approved task emits ApprovalRequested too (it starts the workflow), but asks
        # nobody: only an approval still awaited at this version is a request to people.
        return [(APPROVERS_INBOX, Kind.APPROVAL_REQUESTED)] if task.awaiting_approval else []
    if isinstance(event, ApprovalDecided):
        # Its outcome is approved, rejected or expired: a decision ends the pending approval.
        expired = event.outcome is Approval.EXPIRED
        return [
            (
                user_inbox(event.owner_id),
                Kind.APPROVAL_EXPIRED if expired else Kind.APPROVAL_DECIDED,
            )
        ]
    if isinstance(event, TaskDueSoon):
        still_due = task.due_date == event.due_date and task.status in (
            Status.PENDING,
            Status.IN_PROGRESS,
        )
        return [(user_inbox(event.owner_id), Kind.DUE_SOON)] if still_due else []
    return []


def made_at(event: Event) -> datetime:
    """When a notification of `event` was made: a time every delivery of the event agrees on,
    since the id is made from it. A change's event carries its stream record's time, the same
    on every redelivery; the sweep sends a reminder again on its next run with that run's time,
    so a reminder's is the moment it became due, the start of the day before the due date."""
    if isinstance(event, TaskDueSoon):
        return datetime.combine(event.due_date - timedelta(days=1), time(), UTC)
    return event.occurred_at


def notifications_for(event: Event) -> list[Notification]:
    """The notifications an event means, one per recipient (none for most events)."""
    task = event.task
    at = made_at(event)
    return [
        Notification(
            id=notification_id(event.event_id, recipient, at),
            recipient=recipient,
            kind=kind,
            event_id=event.event_id,
            task_id=event.task_id,
            owner_id=event.owner_id,
            title=task.title,
            priority=task.priority,
            created_at=at,
            outcome=event.outcome if isinstance(event, ApprovalDecided) else None,
            decided_by=task.approval_decided_by if isinstance(event, ApprovalDecided) else None,
            due_date=event.due_date if isinstance(event, TaskDueSoon) else None,
        )
        for recipient, kind in _addressed(event)
    ]
