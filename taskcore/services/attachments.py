"""Where a task's attachments live in the attachment store: `<owner>/<taskId>/<attachmentId>`.

One place for the key layout, shared by the task use cases (presigned upload and download) and
the consumer that removes a deleted task's files.
"""

from __future__ import annotations

from taskcore.model import Task


def attachment_prefix(owner_id: str, task_id: str) -> str:
    return f"{owner_id}/{task_id}/"


def attachment_key(task: Task, attachment_id: str) -> str:
    return f"{attachment_prefix(task.owner_id, task.id)}{attachment_id}"
