"""`taskcore.services.downloads.owned_pages` and `taskcore.commands.parse_download_query`: every
task of an owner, a page at a time, each page read only when asked for."""

from __future__ import annotations

from typing import Any

import pytest

from taskcore.commands import DownloadQuery, parse_download_query
from taskcore.errors import InvalidQuery
from taskcore.model import Status, UserId
from taskcore.ports import StoredPage
from taskcore.services import owned_pages
from taskcore.testing import InMemoryTaskRepository, build_task


class CountingRepository(InMemoryTaskRepository):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def list_owned(self, owner_id: UserId, **kwargs: Any) -> StoredPage:
        self.reads += 1
        return super().list_owned(owner_id, **kwargs)


@pytest.fixture
def repository() -> CountingRepository:
    repo = CountingRepository()
    for n in range(1, 26):
        repo.add(build_task(n=n))
    repo.add(build_task(n=99, owner="bob"))
    return repo


def test_every_task_newest_first_one_page_at_a_time(repository: CountingRepository) -> None:
    pages = owned_pages(repository, UserId("alice"), page_size=10)
    assert repository.reads == 0  # nothing is read before the first page is asked for
    first = next(pages)
    assert repository.reads == 1
    rest = list(pages)
    assert [len(p) for p in (first, *rest)] == [10, 10, 5]
    ids = [task.id for page in (first, *rest) for task in page]
    assert ids == sorted(ids, reverse=True)
    assert {task.owner_id for page in (first, *rest) for task in page} == {"alice"}


def test_an_owner_with_no_tasks_has_no_pages(repository: CountingRepository) -> None:
    assert list(owned_pages(repository, UserId("carol"))) == []


def test_a_last_full_page_is_followed_by_no_empty_one(repository: CountingRepository) -> None:
    pages = list(owned_pages(repository, UserId("alice"), page_size=25))
    assert [len(p) for p in pages] == [25]


def test_the_status_filter(repository: CountingRepository) -> None:
    task = repository.tasks[("alice", build_task(n=3).id)]
    repository.save(task.transition_to(Status.IN_PROGRESS, task.updated_at), task.version)
    pages = list(owned_pages(repository, UserId("alice"), status=Status.IN_PROGRESS))
    assert [[t.id for t in page] for page in pages] == [[task.id]]


@pytest.mark.parametrize(
    ("params", "query"),
    [({}, DownloadQuery()), ({"status": "completed"}, DownloadQuery(status=Status.COMPLETED))],
)
def test_the_download_query(params: dict[str, str], query: DownloadQuery) -> None:
    assert parse_download_query(params) == query


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "finished"}, "status"), ({"limit": "10"}, "limit"), ({"cursor": "x"}, "cursor")],
)
def test_anything_else_is_an_invalid_query(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidQuery) as refused:
        parse_download_query(params)
    assert [e.field for e in refused.value.errors] == [field]
