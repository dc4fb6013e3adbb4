"""Every task of an owner, read a page at a time: what the streaming download sends
(`handlers.download`) and an export run writes (`taskcore.services.exports`). One page is held
at a time, so memory stays flat however many tasks there are."""

from __future__ import annotations

from collections.abc import Generator

from taskcore.model import Status, Task, UserId
from taskcore.ports import TaskRepository

DOWNLOAD_PAGE_SIZE = 100
"""Tasks per Query: a page of 100 tasks is ~60 KB, well under DynamoDB's 1 MB per Query."""


def owned_pages(
    tasks: TaskRepository,
    owner_id: UserId,
    *,
    status: Status | None = None,
    page_size: int = DOWNLOAD_PAGE_SIZE,
) -> Generator[tuple[Task, ...], None, None]:
    """The owner's tasks, newest first, one non-empty page at a time; the next page is read
    only when the caller asks for it."""
    after = None
    while True:
        page = tasks.list_owned(
            owner_id, status=status, priority=None, limit=page_size, after=after
        )
        if page.items:
            yield page.items
        if page.last_position is None:
            return
        after = page.last_position
