"""The use cases that react to what already happened: the event consumers and the approval
workflow's steps.

Each is a plain function taking only the ports it needs (a stats store, an attachment store,
the workflow), so a consumer's Lambda function builds nothing else:

- `record_stats`: fold a task event into its owner's stats;
- `remove_attachments`: a deleted task's files go too;
- `resume_workflow`: a decided approval releases the workflow waiting on it;
- `expire_approval`: the workflow's timeout expires an approval still awaited;
- `decision_output`: what the workflow's waiting step returns once released.
"""

from __future__ import annotations

from taskcore.auto_approval import is_auto_decided
from taskcore.events import ApprovalDecided, Event
from taskcore.model import Approval, Task, TaskId, UserId
from taskcore.ports import ApprovalWorkflow, AttachmentStore, Clock, StatsStore, TaskRepository
from taskcore.serialization import task_to_json
from taskcore.services.attachments import attachment_prefix
from taskcore.stats import delta_for


def record_stats(stats: StatsStore, event: Event) -> bool:
    """Fold an event into its owner's stats, once per event id; False if nothing changed."""
    delta = delta_for(event)
    if delta is None:
        return False
    return stats.apply(event.owner_id, event.event_id, delta)


def remove_attachments(attachments: AttachmentStore, event: Event) -> int:
    """After a task is deleted, its files go too (idempotent: a second run finds none).

    A task that never had an attachment has no files: an upload's key is handed out only after
    its attachment is recorded on the task, and the event holds the task as it was deleted.
    The bucket is then not asked at all (a LIST is billed at S3's PUT rate: it was the largest
    item of a delete's cost, docs/cost.md)."""
    if not event.task.attachments:
        return 0
    return attachments.delete_prefix(attachment_prefix(event.owner_id, event.task_id))


def decision_output(task: Task) -> dict[str, str]:
    """What the approval workflow's waiting task returns: the outcome, and who decided when,
    in the task's own JSON forms (`decidedAt` as the API writes it), so that the workflow's
    auto path, which reads them from the event's task, records the same shape."""
    task_json = task_to_json(task)
    return {
        "approval": task_json["approval"],
        "decidedBy": task_json["approvalDecidedBy"] or "",
        "decidedAt": task_json["approvalDecidedAt"] or "",
    }


def resume_workflow(workflow: ApprovalWorkflow, event: Event) -> bool:
    """A decided approval (approve or reject) releases the workflow waiting on it. An expiry
    does not: the workflow expired it itself. Nor does a rule's approval: its workflow took
    the auto path and waits for nothing, so there is nothing to record or release."""
    if not isinstance(event, ApprovalDecided) or event.outcome is Approval.EXPIRED:
        return False
    if is_auto_decided(event.task):
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
