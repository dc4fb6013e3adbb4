"""The archive of completed tasks: where an archived task is kept, how it is written there, and
how its owner reads it back (`ArchiveService`).

A completed task leaves the table `archiveCompletedAfterDays` after its completion (DynamoDB's
TTL; `Task.archive_at`); the `TaskArchived` event its removal means is written to the archive:
one NDJSON object per owner and month of completion, `archive/<owner>/<YYYY-MM>.ndjson`, each
line the task exactly as `GET /tasks/{taskId}` last showed it.

An object cannot be appended to: each archived task is a read-modify-write of its month's
object, made conditional on the object being the one read (S3's conditional writes), and
retried when another writer got there first, so concurrent archivers of one owner and month
never lose a line. A task already in its month's object is not written again: a redelivered
event archives nothing twice. The cost: each archived task reads and rewrites its whole month
(O(n) bytes for the n-th task of a month); docs/archive.md weighs it against batching.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from taskcore.errors import ConcurrentModification, FieldError, InvalidQuery, NotFound
from taskcore.model import Principal, Task, TaskId, UserId
from taskcore.ports import ArchiveStore, Clock
from taskcore.serialization import task_to_ndjson

ARCHIVE_PREFIX = "archive/"
"""Where the archive lives in the bucket: the archive's permissions and lifecycle rule name
this prefix, and nothing else."""
ARCHIVE_SUFFIX = ".ndjson"
MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
"""A month as the archive names it: `YYYY-MM` (UTC)."""
ARCHIVE_ATTEMPTS = 10
"""Read-modify-writes an archiver tries, each lost to another writer of the same month, before
it gives up (and the platform retries the event later)."""


def archive_month(task: Task) -> str:
    """The month (UTC) whose object keeps the task: that of its completion. An archived task is
    always completed (only a completed task gets an expiry); a task that somehow is not is kept
    under the month it last changed."""
    moment = task.completed_at or task.updated_at
    return f"{moment.year:04d}-{moment.month:02d}"


def archive_prefix(owner_id: str) -> str:
    return f"{ARCHIVE_PREFIX}{owner_id}/"


def archive_key(owner_id: str, month: str) -> str:
    return f"{archive_prefix(owner_id)}{month}{ARCHIVE_SUFFIX}"


def month_of_key(owner_id: str, key: str) -> str | None:
    """The month an owner's archive key names; None for any other key (another owner's, one in
    a deeper 'folder', anything that is not a month's object)."""
    prefix = archive_prefix(owner_id)
    if not key.startswith(prefix) or not key.endswith(ARCHIVE_SUFFIX):
        return None
    month = key[len(prefix) : -len(ARCHIVE_SUFFIX)]
    return month if MONTH.fullmatch(month) else None


def parse_month(text: str) -> str:
    """A month from a request (`YYYY-MM`), or `InvalidQuery` (400)."""
    if not MONTH.fullmatch(text):
        raise InvalidQuery([FieldError("month", "must be a month, YYYY-MM (e.g. 2026-11)")])
    return text


def _line_start(task_id: TaskId) -> bytes:
    # Every line is `task_to_ndjson`: a task's JSON object, whose first member is its id.
    return b'{"id":"' + task_id.encode() + b'",'


def holds(data: bytes, task_id: TaskId) -> bool:
    """Whether an archive object's lines include the task `task_id`."""
    start = _line_start(task_id)
    return data.startswith(start) or b"\n" + start in data


def _no_pause(_attempt: int) -> None:
    return None


@attrs.frozen(kw_only=True)
class ArchiveDownload:
    month: str
    url: str
    expires_at: datetime


@attrs.frozen(kw_only=True)
class ArchiveService:
    """Writing archived tasks (the archiver consumer) and reading an owner's archive (the API).

    `pause(attempt)` is called between attempts lost to another writer (the handler passes a
    jittered sleep; the core itself never sleeps)."""

    store: ArchiveStore
    clock: Clock
    link_ttl: timedelta = timedelta(minutes=15)
    max_attempts: int = ARCHIVE_ATTEMPTS
    pause: Callable[[int], None] = _no_pause

    def archive(self, task: Task) -> bool:
        """Add the task to its owner's month; False if it is there already (a redelivery).
        Raises `ConcurrentModification` after `max_attempts` writes lost to other writers."""
        key = archive_key(task.owner_id, archive_month(task))
        line = task_to_ndjson(task)
        attempt = 1
        while True:
            stored = self.store.read(key)
            data = stored.data if stored is not None else b""
            if holds(data, task.id):
                return False
            if data and not data.endswith(b"\n"):
                data += b"\n"  # never glue a line to a cut one
            try:
                self.store.write(key, data + line, replacing=stored.tag if stored else None)
                return True
            except ConcurrentModification:
                if attempt >= self.max_attempts:
                    raise
                self.pause(attempt)
                attempt += 1

    def months(self, principal: Principal) -> list[str]:
        """The months the caller has archived tasks in, newest first (only the caller's: the
        listing is of the caller's own prefix)."""
        return sorted(self._months(principal.user_id), reverse=True)

    def month_download(self, principal: Principal, month: str) -> ArchiveDownload:
        """A presigned download of one of the caller's months; `NotFound` if the caller has
        nothing archived in it, `InvalidQuery` if `month` is no month."""
        month = parse_month(month)
        if month not in self._months(principal.user_id):
            raise NotFound(f"nothing archived in {month}")
        url = self.store.presign_download(
            archive_key(principal.user_id, month),
            filename=f"tasks-archive-{month}{ARCHIVE_SUFFIX}",
            expires_in=int(self.link_ttl.total_seconds()),
        )
        return ArchiveDownload(month=month, url=url, expires_at=self.clock.now() + self.link_ttl)

    def _months(self, owner_id: UserId) -> set[str]:
        keys = self.store.list_keys(archive_prefix(owner_id))
        return {m for m in (month_of_key(owner_id, key) for key in keys) if m is not None}
