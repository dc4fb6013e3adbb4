"""The archive of completed tasks: when a task expires (`Task.archive_at`), where it is kept
(one NDJSON object per owner and month), and `ArchiveService` writing it there once, however
often its event is delivered and however many archivers write the same month at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskcore.errors import ConcurrentModification, InvalidQuery, NotFound
from taskcore.model import Status, Task, TaskId
from taskcore.ports import StoredObject
from taskcore.serialization import task_from_json, task_to_json, task_to_ndjson
from taskcore.services.archive import (
    ArchiveService,
    archive_key,
    archive_month,
    archive_prefix,
    holds,
    month_of_key,
    parse_month,
)
from taskcore.testing import FixedClock, InMemoryArchiveStore, build_task, principal

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def completed(n: int = 1, owner: str = "alice", at: datetime = T0, **fields: Any) -> Task:
    task = build_task(n=n, owner=owner, now=at - timedelta(hours=2), **fields)
    return task.transition_to(Status.IN_PROGRESS, at - timedelta(hours=1)).transition_to(
        Status.COMPLETED, at
    )


def lines(store: InMemoryArchiveStore, key: str) -> list[dict[str, Any]]:
    data = store.objects[key].decode()
    assert data.endswith("\n")
    return [json.loads(line) for line in data.splitlines()]


def service(
    store: InMemoryArchiveStore | None = None,
    *,
    max_attempts: int = 10,
    pause: Callable[[int], None] = lambda _: None,
) -> ArchiveService:
    return ArchiveService(
        store=store or InMemoryArchiveStore(),
        clock=FixedClock(T0),
        max_attempts=max_attempts,
        pause=pause,
    )


class TestExpiry:
    def test_a_completed_task_expires_after_the_stack_s_delay(self) -> None:
        task = completed()
        assert task.archive_at(WEEK) == T0 + WEEK

    def test_an_open_task_never_expires(self) -> None:
        task = build_task()
        assert task.archive_at(WEEK) is None
        assert task.transition_to(Status.IN_PROGRESS, T0).archive_at(WEEK) is None

    def test_a_reopened_task_no_longer_expires(self) -> None:
        reopened = completed().transition_to(Status.IN_PROGRESS, T0 + timedelta(days=1))
        assert reopened.archive_at(WEEK) is None

    def test_a_stack_that_archives_nothing_expires_nothing(self) -> None:
        assert completed().archive_at(None) is None


class TestLayout:
    def test_a_task_is_kept_under_its_owner_and_month_of_completion(self) -> None:
        task = completed(at=datetime(2030, 3, 31, 23, 59, tzinfo=UTC))
        assert archive_month(task) == "2030-03"
        assert archive_key("alice", "2030-03") == "archive/alice/2030-03.ndjson"
        assert archive_prefix("alice") == "archive/alice/"

    def test_a_task_that_is_somehow_not_completed_is_kept_under_its_last_change(self) -> None:
        task = build_task(now=datetime(2031, 7, 4, tzinfo=UTC))
        assert archive_month(task) == "2031-07"

    @pytest.mark.parametrize(
        ("owner", "key", "month"),
        [
            ("alice", "archive/alice/2030-01.ndjson", "2030-01"),
            ("alice", "archive/alice/2030-13.ndjson", None),
            ("alice", "archive/alice/2030-01.json", None),
            ("alice", "archive/alicia/2030-01.ndjson", None),
            ("a", "archive/a/b/2030-01.ndjson", None),  # user `a/b`'s month, not user `a`'s
            ("a/b", "archive/a/b/2030-01.ndjson", "2030-01"),
            ("alice", "exports/alice/2030-01.ndjson", None),
        ],
    )
    def test_a_key_names_a_month_of_one_owner_only(
        self, owner: str, key: str, month: str | None
    ) -> None:
        assert month_of_key(owner, key) == month

    @pytest.mark.parametrize("text", ["2030-01", "1999-12", "0001-10"])
    def test_a_month_is_yyyy_mm(self, text: str) -> None:
        assert parse_month(text) == text

    @pytest.mark.parametrize(
        "text",
        [
            "2030-1",
            "2030-00",
            "2030-13",
            "30-01",
            "2030-01-01",
            "2030_01",
            "",
            "\uff12\uff10\uff13\uff10-01",
        ],
    )
    def test_anything_else_is_an_invalid_query(self, text: str) -> None:
        with pytest.raises(InvalidQuery) as raised:
            parse_month(text)
        assert raised.value.fields == ("month",)


class TestArchive:
    def test_the_line_is_the_task_exactly_as_the_api_shows_it(self) -> None:
        store = InMemoryArchiveStore()
        task = completed(description="two\nlines", tags=["x"])
        assert service(store).archive(task) is True
        key = archive_key("alice", "2030-01")
        assert store.objects[key] == task_to_ndjson(task)
        assert task_from_json(lines(store, key)[0]) == task

    def test_tasks_of_a_month_share_its_object_in_the_order_archived(self) -> None:
        store = InMemoryArchiveStore()
        archiver = service(store)
        first, second = completed(1), completed(2, at=T0 + timedelta(days=3))
        assert archiver.archive(second)
        assert archiver.archive(first)
        key = archive_key("alice", "2030-01")
        assert [line["id"] for line in lines(store, key)] == [second.id, first.id]

    def test_months_and_owners_have_objects_of_their_own(self) -> None:
        store = InMemoryArchiveStore()
        archiver = service(store)
        archiver.archive(completed(1))
        archiver.archive(completed(2, at=datetime(2030, 2, 1, tzinfo=UTC)))
        archiver.archive(completed(3, owner="bob"))
        assert sorted(store.objects) == [
            "archive/alice/2030-01.ndjson",
            "archive/alice/2030-02.ndjson",
            "archive/bob/2030-01.ndjson",
        ]

    def test_a_redelivered_task_is_not_archived_twice(self) -> None:
        store = InMemoryArchiveStore()
        archiver = service(store)
        task = completed()
        assert archiver.archive(task) is True
        before = dict(store.objects)
        assert archiver.archive(task) is False
        assert archiver.archive(attrs.evolve(task, title="changed since?")) is False
        assert store.objects == before
        assert store.writes == 1

    def test_a_cut_last_line_is_ended_before_the_next(self) -> None:
        store = InMemoryArchiveStore()
        key = archive_key("alice", "2030-01")
        cut = task_to_ndjson(completed(1))[:-1]
        store.objects[key] = cut
        service(store).archive(completed(2))
        assert store.objects[key] == cut + b"\n" + task_to_ndjson(completed(2))

    @settings(max_examples=60, deadline=None)
    @given(
        title=st.text(min_size=1, max_size=60).filter(str.strip),
        description=st.text(max_size=200),
    )
    def test_no_text_in_a_task_looks_like_another_task_s_line(
        self, title: str, description: str
    ) -> None:
        """`holds` finds a task by the start of its line; whatever a title or description
        holds (quotes, newlines, another id) is escaped inside its line."""
        other = TaskId("01JD0000000000000000000002")
        try:
            task = completed(1, title=title, description=f'\n{{"id":"{other}",' + description)
        except Exception:  # a text the model refuses (control characters): not a task
            return
        data = task_to_ndjson(task)
        assert holds(data, task.id)
        assert not holds(data, other)


class _Racing(InMemoryArchiveStore):
    """A store where, after each of the first `races` reads, another archiver writes the same
    object first: the reader's conditional write must then be refused."""

    def __init__(self, rival: list[Task], races: int) -> None:
        super().__init__()
        self.rival, self.races, self.lost = list(rival), races, 0

    def read(self, key: str) -> StoredObject | None:
        stored = super().read(key)
        if self.races > 0 and self.rival:
            self.races -= 1
            rival = InMemoryArchiveStore(objects=self.objects)
            ArchiveService(store=rival, clock=FixedClock()).archive(self.rival.pop(0))
        return stored

    def write(self, key: str, data: bytes, *, replacing: str | None) -> None:
        try:
            super().write(key, data, replacing=replacing)
        except ConcurrentModification:
            self.lost += 1
            raise


class TestConcurrentArchivers:
    def test_a_write_lost_to_another_archiver_is_read_again_and_retried(self) -> None:
        rivals = [completed(2), completed(3)]
        store = _Racing(rivals, races=2)
        pauses: list[int] = []
        assert service(store, pause=pauses.append).archive(completed(1))
        ids = [line["id"] for line in lines(store, archive_key("alice", "2030-01"))]
        assert sorted(ids) == sorted(t.id for t in (completed(1), completed(2), completed(3)))
        assert (store.lost, pauses) == (2, [1, 2])

    def test_by_default_the_core_retries_at_once(self) -> None:
        """The core never sleeps: only a handler's `pause` may (`handlers.bootstrap`)."""
        store = _Racing([completed(2)], races=1)
        archiver = ArchiveService(store=store, clock=FixedClock())
        assert archiver.archive(completed(1))
        assert store.lost == 1

    def test_an_archiver_that_always_loses_gives_up_for_a_later_retry(self) -> None:
        store = _Racing([completed(n) for n in range(2, 20)], races=100)
        pauses: list[int] = []
        with pytest.raises(ConcurrentModification):
            service(store, max_attempts=4, pause=pauses.append).archive(completed(1))
        assert pauses == [1, 2, 3]
        assert not holds(store.objects[archive_key("alice", "2030-01")], completed(1).id)

    @settings(max_examples=15, deadline=None)
    @given(st.integers(min_value=2, max_value=12), st.integers(min_value=1, max_value=4))
    def test_concurrent_archivers_of_one_month_lose_no_line(self, tasks: int, copies: int) -> None:
        """Threads archive the same month at once, each task `copies` times (redeliveries):
        every task ends up there exactly once."""
        store = InMemoryArchiveStore()
        archiver = service(store, max_attempts=1000)
        todo = [completed(n) for n in range(1, tasks + 1)] * copies
        threads = [threading.Thread(target=archiver.archive, args=(t,)) for t in todo]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ids = [line["id"] for line in lines(store, archive_key("alice", "2030-01"))]
        assert sorted(ids) == sorted(completed(n).id for n in range(1, tasks + 1))


class TestReading:
    def test_an_owner_s_months_come_newest_first(self) -> None:
        fakes_service = service()
        for n, month in enumerate((3, 1, 12), start=1):
            fakes_service.archive(completed(n, at=datetime(2030, month, 2, tzinfo=UTC)))
        fakes_service.archive(completed(9, at=datetime(2029, 6, 2, tzinfo=UTC)))
        assert fakes_service.months(principal("alice")) == [
            "2030-12",
            "2030-03",
            "2030-01",
            "2029-06",
        ]

    def test_nobody_sees_another_owner_s_months(self) -> None:
        archiver = service()
        archiver.archive(completed(1, owner="a/b"))
        archiver.archive(completed(2, owner="alice"))
        assert archiver.months(principal("a")) == []
        assert archiver.months(principal("bob")) == []
        with pytest.raises(NotFound):
            archiver.month_download(principal("a"), "2030-01")
        with pytest.raises(NotFound):
            archiver.month_download(principal("bob"), "2030-01")

    def test_a_month_downloads_through_a_short_lived_link(self) -> None:
        archiver = service()
        archiver.archive(completed())
        download = archiver.month_download(principal("alice"), "2030-01")
        assert download.month == "2030-01"
        assert download.expires_at == T0 + timedelta(minutes=15)
        assert download.url == (
            "memory://archive/archive/alice/2030-01.ndjson"
            "?filename=tasks-archive-2030-01.ndjson&expires=900"
        )

    def test_a_month_with_nothing_archived_is_not_found(self) -> None:
        archiver = service()
        archiver.archive(completed())
        with pytest.raises(NotFound, match="2030-02"):
            archiver.month_download(principal("alice"), "2030-02")

    def test_a_malformed_month_is_an_invalid_query(self) -> None:
        with pytest.raises(InvalidQuery):
            service().month_download(principal("alice"), "2030-1")

    def test_a_round_trip_gives_back_what_get_showed(self) -> None:
        store = InMemoryArchiveStore()
        task = completed(tags=["a", "b"], description="é ✓")
        service(store).archive(task)
        (line,) = lines(store, archive_key("alice", "2030-01"))
        assert line == task_to_json(task)  # the API's own JSON, key for key
