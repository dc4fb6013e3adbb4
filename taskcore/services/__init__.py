"""The use cases, one module per family:

- `tasks`: `TaskService`, what the HTTP API does with tasks, attachments and approvals;
- `reactions`: what the event consumers and the approval workflow's steps do (plain functions,
  each taking only the ports it needs);
- `exports`: `ExportService` and the `MultipartWriter` a run streams through;
- `notifications`: delivering notifications (the consumer) and reading inboxes (the API);
- `downloads`: `owned_pages`, every task of an owner a page at a time (downloads, exports);
- `reminders`: the due-date reminder sweep (`send_reminders`, `due_soon`);
- `attachments`, `ids`: the attachment key layout and the id check the others share;
- `archive`: `ArchiveService`, archived tasks written to (and read back from) the archive.

The names other packages use are re-exported here: `from taskcore.services import TaskService`,
`services.record_stats(stats, event)`.
"""

from __future__ import annotations

from taskcore.services.archive import (
    ArchiveDownload,
    ArchiveService,
    archive_key,
    archive_month,
    archive_prefix,
)
from taskcore.services.attachments import attachment_key, attachment_prefix
from taskcore.services.downloads import DOWNLOAD_PAGE_SIZE, owned_pages
from taskcore.services.exports import (
    EXPORT_PART_SIZE,
    NDJSON,
    ExportService,
    ExportView,
    MultipartWriter,
    export_key,
    failure_reason,
)
from taskcore.services.ids import USER_ID_MAX, is_ulid, is_user_id
from taskcore.services.notifications import (
    Delivery,
    NotificationPage,
    NotificationService,
    deliver_notifications,
)
from taskcore.services.reactions import (
    decision_output,
    expire_approval,
    record_stats,
    remove_attachments,
    resume_workflow,
)
from taskcore.services.reminders import SweepResult, due_soon, send_reminders
from taskcore.services.tasks import (
    IDEMPOTENCY_KEY_MAX,
    CreateResult,
    NewAttachment,
    Page,
    TaskService,
)

__all__ = [
    "DOWNLOAD_PAGE_SIZE",
    "EXPORT_PART_SIZE",
    "IDEMPOTENCY_KEY_MAX",
    "NDJSON",
    "USER_ID_MAX",
    "ArchiveDownload",
    "ArchiveService",
    "CreateResult",
    "Delivery",
    "ExportService",
    "ExportView",
    "MultipartWriter",
    "NewAttachment",
    "NotificationPage",
    "NotificationService",
    "Page",
    "SweepResult",
    "TaskService",
    "archive_key",
    "archive_month",
    "archive_prefix",
    "attachment_key",
    "attachment_prefix",
    "decision_output",
    "deliver_notifications",
    "due_soon",
    "expire_approval",
    "export_key",
    "failure_reason",
    "is_ulid",
    "is_user_id",
    "owned_pages",
    "record_stats",
    "remove_attachments",
    "resume_workflow",
    "send_reminders",
]
