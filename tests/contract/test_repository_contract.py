"""The TaskRepository and StatsStore contracts, run against every backend (see conftest.py).

The in-memory adapters in `taskcore.testing` are the reference; the DynamoDB adapters must be
indistinguishable from them through the ports. Expected results are computed in Python from
what the test wrote, never read back from the store under test.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

import attrs
import pytest

from taskcore.cursors import Position
from taskcore.errors import ConcurrentModification, Conflict, NotFound
from taskcore.model import (
    Approval,
    Attachment,
    AttachmentId,
    Decision,
    Priority,
    Status,
    Task,
    TaskId,
    UserId,
)
from taskcore.ports import IdempotencyKeyTaken, IdempotencyRecord, StoredPage
from taskcore.stats import StatsDelta, UserStats
from tests.contract.backends import Backend

ALICE = UserId("alice")
BOB = UserId("bob")
CAROL = UserId("carol")
APPROVER = UserId("approver-7")
LIMITS = (1, 2, 7, 100)

# -- helpers -----------------------------------------------------------------------------------


def follow(
    fetch: Callable[[Position | None], StoredPage], limit: int, max_pages: int = 500
) -> list[tuple[Task, ...]]:
    """Every page, following positions until None; checks the per-page guarantees."""
    pages: list[tuple[Task, ...]] = []
    after: Position | None = None
    while True:
        page = fetch(after)
        assert isinstance(page, StoredPage)
        assert isinstance(page.items, tuple)
        assert len(page.items) <= limit, f"page of {len(page.items)} items with limit {limit}"
        pages.append(page.items)
        if page.last_position is None:
            return pages
        position = page.last_position
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in position.items()), (
            f"positions are string maps (they go into cursors): {position!r}"
        )
        assert position != after, "the position did not move: pagination would loop forever"
        assert len(pages) < max_pages, "pagination does not terminate"
        after = position


def owned(
    backend: Backend,
    owner: UserId,
    *,
    status: Status | None = None,
    priority: Priority | None = None,
    limit: int,
) -> Callable[[Position | None], StoredPage]:
    """One list_owned query, as a function of where to resume."""

    def fetch(after: Position | None) -> StoredPage:
        return backend.repo.list_owned(
            owner, status=status, priority=priority, limit=limit, after=after
        )

    return fetch


def flatten(pages: Iterable[Sequence[Task]]) -> list[Task]:
    return [task for page in pages for task in page]


def ids(tasks: Iterable[Task]) -> list[TaskId]:
    return [task.id for task in tasks]


def assert_dense(pages: Sequence[Sequence[Task]], limit: int) -> None:
    """Without a priority filter every page but the last non-empty one is full; an empty page
    may only come last (DynamoDB returns a position after a full page that had no more)."""
    sizes = [len(page) for page in pages]
    if sizes and sizes[-1] == 0:
        sizes = sizes[:-1]
    assert all(size == limit for size in sizes[:-1]), f"short page before the end: {sizes}"


def listing_problems(
    backend: Backend,
    owner: UserId,
    *,
    status: Status | None,
    priority: Priority | None,
    limit: int,
    expected: Sequence[Task],
) -> list[str]:
    """What is wrong with following the pages of one query (empty: nothing)."""
    where = f"status={status} priority={priority} limit={limit}"
    try:
        pages = follow(owned(backend, owner, status=status, priority=priority, limit=limit), limit)
        got = flatten(pages)
        assert len(set(ids(got))) == len(got), f"duplicates across pages: {ids(got)}"
        assert ids(got) == ids(expected), f"{ids(got)} != {ids(expected)}"
        assert got == list(expected), "same ids, different content"
        if priority is None:
            assert_dense(pages, limit)
    except AssertionError as error:
        return [f"{where}: {error}"]
    return []


def list_all(
    backend: Backend,
    owner: UserId,
    *,
    status: Status | None = None,
    priority: Priority | None = None,
    limit: int = 7,
) -> list[Task]:
    pages = follow(owned(backend, owner, status=status, priority=priority, limit=limit), limit)
    return flatten(pages)


def queue(backend: Backend, limit: int = 5) -> list[Task]:
    pages = follow(
        lambda after: backend.repo.list_awaiting_approval(limit=limit, after=after), limit
    )
    return flatten(pages)


def newest_first(tasks: Iterable[Task]) -> list[Task]:
    return sorted(tasks, key=lambda t: t.id, reverse=True)


def assert_same_task(got: Task | None, expected: Task) -> None:
    assert got is not None, f"task {expected.id} of {expected.owner_id} not found"
    assert got == expected
    # Enums are StrEnums, so a plain str would compare equal: check the types too.
    assert type(got.status) is Status
    assert type(got.priority) is Priority
    assert type(got.approval) is Approval
    assert type(got.version) is int
    assert type(got.tags) is tuple
    assert type(got.attachments) is tuple
    assert all(type(a) is Attachment and type(a.size) is int for a in got.attachments)
    assert got.due_date is None or type(got.due_date) is date


def store(backend: Backend, task: Task, *steps: Callable[[Task], Task]) -> Task:
    """Add `task`, then save each step's result in turn, as the use cases do."""
    backend.repo.add(task)
    for step in steps:
        changed = step(task)
        backend.repo.save(changed, expected_version=task.version)
        task = changed
    return task


def store_in_state(backend: Backend, owner: UserId, status: Status, priority: Priority) -> Task:
    """A task of `owner` brought to `status` through real transitions and saves."""
    task = backend.new_task(owner, priority=priority)
    now = backend.clock.now()
    steps: list[Callable[[Task], Task]] = []
    if status in (Status.IN_PROGRESS, Status.COMPLETED):
        if priority.needs_approval:
            steps.append(lambda t: t.decide(Decision.APPROVE, APPROVER, now))
        steps.append(lambda t: t.transition_to(Status.IN_PROGRESS, now))
    if status is Status.COMPLETED:
        steps.append(lambda t: t.transition_to(Status.COMPLETED, now + timedelta(minutes=5)))
    if status is Status.CANCELLED:
        steps.append(lambda t: t.transition_to(Status.CANCELLED, now))
    stored = store(backend, task, *steps)
    assert stored.status is status
    return stored


def record_for(
    task: Task, key: str, expires_at: datetime, fingerprint: str = "fp-1"
) -> IdempotencyRecord:
    return IdempotencyRecord(
        owner_id=task.owner_id,
        key=key,
        fingerprint=fingerprint,
        task=task,
        expires_at=expires_at,
    )


# -- task shapes for round trips -----------------------------------------------------------------

UNICODE_TITLE = "Zürich 東京 🚀 cafe\u0301 naïve Ωmega — «quoted» 'x' \"y\" % & <b> " * 10
UNICODE_TITLE = UNICODE_TITLE[:199] + "!"
DESCRIPTION = ("Line with ünïcode 🙂\tand a tab,\r\nthen CRLF; 'quotes' and \"more\" #{}[]\n" * 80)[
    :4000
]


def shape_minimal(backend: Backend) -> Task:
    return backend.new_task(ALICE, title="x")


def shape_full(backend: Backend) -> Task:
    created = backend.clock.advance(timedelta(seconds=1))
    decided = created + timedelta(hours=2, microseconds=17)
    started = decided + timedelta(minutes=3)
    completed = started + timedelta(days=1, microseconds=999_999)
    task_id = TaskId(backend.ids.new_id())
    return Task(
        id=task_id,
        owner_id=ALICE,
        title=UNICODE_TITLE,
        description=DESCRIPTION,
        status=Status.COMPLETED,
        priority=Priority.HIGH,
        approval=Approval.APPROVED,
        tags=("zeta", "alpha", "ünïcode", "two words", "#hash", "a" * 32),
        due_date=date(2031, 2, 28),
        created_at=created,
        updated_at=completed,
        completed_at=completed,
        approval_decided_by=UserId("approvér-ü"),
        approval_decided_at=decided,
        attachments=(
            Attachment(
                id=AttachmentId("01J0000000000000000000000B"),
                filename="Résumé 2030 (final).pdf",
                content_type="application/pdf",
                size=5 * 1024 * 1024,
                created_at=started,
            ),
            Attachment(
                id=AttachmentId("01J0000000000000000000000A"),
                filename="写真.jpeg",
                content_type="image/jpeg",
                size=0,
                created_at=started + timedelta(microseconds=1),
            ),
        ),
        version=7,
    )


def shape_rejected(backend: Backend) -> Task:
    task = backend.new_task(ALICE, priority=Priority.CRITICAL, title="  spaced title  ")
    return task.decide(Decision.REJECT, APPROVER, task.created_at + timedelta(seconds=30))


def shape_expired(backend: Backend) -> Task:
    task = backend.new_task(ALICE, priority=Priority.HIGH, tags=["only"])
    return task.expire_approval(task.created_at + timedelta(days=7))


def shape_awaiting(backend: Backend) -> Task:
    return backend.new_task(
        ALICE,
        priority=Priority.CRITICAL,
        description="   ",
        due_date=date(2030, 1, 1),
        tags=["b", "a"],
    )


def shape_in_progress(backend: Backend) -> Task:
    task = backend.new_task(ALICE, priority=Priority.LOW, title="0")
    return task.transition_to(Status.IN_PROGRESS, task.created_at + timedelta(microseconds=1))


SHAPES: dict[str, Callable[[Backend], Task]] = {
    "minimal": shape_minimal,
    "full": shape_full,
    "rejected": shape_rejected,
    "expired": shape_expired,
    "awaiting": shape_awaiting,
    "in_progress": shape_in_progress,
}


# -- the repository ------------------------------------------------------------------------------


class TestRoundTrip:
    def test_titles_and_descriptions_are_at_their_limits(self) -> None:
        assert len(UNICODE_TITLE) == 200
        assert len(DESCRIPTION) == 4000

    @pytest.mark.parametrize("shape", list(SHAPES))
    def test_added_task_reads_back_equal(self, backend: Backend, shape: str) -> None:
        task = SHAPES[shape](backend)
        backend.repo.add(task)
        assert_same_task(backend.repo.get(ALICE, task.id), task)
        listed = list_all(backend, ALICE)
        assert len(listed) == 1
        assert_same_task(listed[0], task)

    def test_saved_task_reads_back_equal(self, backend: Backend) -> None:
        task = store(backend, backend.new_task(ALICE, tags=["one"]))
        now = backend.clock.advance(timedelta(minutes=1, microseconds=3))
        edited = task.edit(
            now,
            title=UNICODE_TITLE,
            description=DESCRIPTION,
            tags=("z", "y", "x"),
            due_date=date(2035, 12, 31),
        )
        backend.repo.save(edited, expected_version=task.version)
        assert_same_task(backend.repo.get(ALICE, task.id), edited)

        attached = edited.add_attachment(
            Attachment(
                id=AttachmentId("01J00000000000000000000ATT"),
                filename="notes.txt",
                content_type="text/plain; charset=utf-8",
                size=12,
                created_at=now,
            ),
            now,
        )
        backend.repo.save(attached, expected_version=edited.version)
        assert_same_task(backend.repo.get(ALICE, task.id), attached)

        # Fields can be cleared again: no stale tags, due date or description survive.
        cleared = attached.edit(now, description="", tags=(), due_date=None)
        backend.repo.save(cleared, expected_version=attached.version)
        assert_same_task(backend.repo.get(ALICE, task.id), cleared)
        assert cleared.tags == ()
        assert cleared.due_date is None

    def test_completion_and_reopening_round_trip(self, backend: Backend) -> None:
        task = store_in_state(backend, ALICE, Status.COMPLETED, Priority.HIGH)
        assert task.completed_at is not None
        assert_same_task(backend.repo.get(ALICE, task.id), task)
        reopened = task.transition_to(Status.IN_PROGRESS, backend.clock.advance(timedelta(days=1)))
        backend.repo.save(reopened, expected_version=task.version)
        got = backend.repo.get(ALICE, task.id)
        assert_same_task(got, reopened)
        assert got is not None
        assert got.completed_at is None

    def test_get_of_unknown_task_is_none(self, backend: Backend) -> None:
        store(backend, backend.new_task(ALICE))
        assert backend.repo.get(ALICE, TaskId(backend.ids.new_id())) is None
        assert backend.repo.get(UserId("nobody"), TaskId(backend.ids.new_id())) is None


class TestOwnership:
    """BOLA at the repository level: a task is only reachable with its owner's id."""

    def test_get_with_another_owner_is_none(self, backend: Backend) -> None:
        task = store(backend, backend.new_task(ALICE))
        store(backend, backend.new_task(BOB))
        assert backend.repo.get(BOB, task.id) is None
        assert backend.repo.get(UserId("alice "), task.id) is None
        assert backend.repo.get(UserId("ALICE"), task.id) is None
        assert_same_task(backend.repo.get(ALICE, task.id), task)

    def test_owner_ids_that_are_prefixes_do_not_share_tasks(self, backend: Backend) -> None:
        short = store(backend, backend.new_task("ab"))
        long = store(backend, backend.new_task("abc"))
        assert ids(list_all(backend, UserId("ab"))) == [short.id]
        assert ids(list_all(backend, UserId("abc"))) == [long.id]
        assert backend.repo.get(UserId("ab"), long.id) is None
        assert backend.repo.get(UserId("abc"), short.id) is None

    def test_writes_with_another_owner_do_not_reach_the_task(self, backend: Backend) -> None:
        task = store(backend, backend.new_task(ALICE))
        foreign = attrs.evolve(task, owner_id=BOB)
        with pytest.raises(NotFound):
            backend.repo.save(foreign.edit(backend.clock.now(), title="hijacked"), task.version)
        with pytest.raises(NotFound):
            backend.repo.delete(foreign)
        assert_same_task(backend.repo.get(ALICE, task.id), task)
        assert backend.repo.get(BOB, task.id) is None
        assert list_all(backend, BOB) == []


class TestAdd:
    def test_duplicate_id_is_a_conflict_and_keeps_the_first(self, backend: Backend) -> None:
        task = store(backend, backend.new_task(ALICE, title="first"))
        with pytest.raises(Conflict) as raised:
            backend.repo.add(attrs.evolve(task, title="second"))
        assert not isinstance(raised.value, ConcurrentModification | NotFound)
        with pytest.raises(Conflict):
            backend.repo.add(task)
        assert_same_task(backend.repo.get(ALICE, task.id), task)
        assert ids(list_all(backend, ALICE)) == [task.id]

    def test_duplicate_of_a_saved_task_is_a_conflict(self, backend: Backend) -> None:
        original = backend.new_task(ALICE)
        saved = store(backend, original, lambda t: t.edit(backend.clock.now(), title="moved on"))
        with pytest.raises(Conflict):
            backend.repo.add(original)
        assert_same_task(backend.repo.get(ALICE, original.id), saved)


class TestConditionalWrites:
    def test_saves_in_sequence_each_expecting_the_last(self, backend: Backend) -> None:
        task = store(backend, backend.new_task(ALICE))
        for round_ in range(5):
            edited = task.edit(backend.clock.advance(timedelta(seconds=1)), title=f"v{round_}")
            backend.repo.save(edited, expected_version=task.version)
            task = edited
        assert task.version == 6
        assert_same_task(backend.repo.get(ALICE, task.id), task)

    def test_stale_save_is_refused_and_changes_nothing(self, backend: Backend) -> None:
        task = store(backend, backend.new_task(ALICE, title="original"))
        now = backend.clock.advance(timedelta(seconds=1))
        winner = task.edit(now, title="winner")
        loser = task.edit(now, title="loser", tags=["lost"])
        backend.repo.save(winner, expected_version=task.version)
        with pytest.raises(ConcurrentModification):
            backend.repo.save(loser, expected_version=task.version)
        assert_same_task(backend.repo.get(ALICE, task.id), winner)

    def test_save_expecting_a_future_version_is_refused(self, backend: Backend) -> None:
        task = store(backend, backend.new_task(ALICE))
        edited = task.edit(backend.clock.now(), title="ahead")
        with pytest.raises(ConcurrentModification):
            backend.repo.save(edited, expected_version=task.version + 1)
        with pytest.raises(ConcurrentModification):
            backend.repo.save(edited, expected_version=edited.version)
        assert_same_task(backend.repo.get(ALICE, task.id), task)

    def test_save_of_a_missing_task_is_not_found(self, backend: Backend) -> None:
        store(backend, backend.new_task(ALICE))
        ghost = backend.new_task(ALICE)
        with pytest.raises(NotFound):
            backend.repo.save(ghost, expected_version=1)
        with pytest.raises(NotFound):
            backend.repo.save(ghost.edit(backend.clock.now(), title="ghost"), expected_version=1)
        # A refused save must not create the task (no upsert).
        assert backend.repo.get(ALICE, ghost.id) is None
        assert len(list_all(backend, ALICE)) == 1

    def test_delete_of_a_missing_task_is_not_found(self, backend: Backend) -> None:
        with pytest.raises(NotFound):
            backend.repo.delete(backend.new_task(ALICE))

    def test_delete_then_get_is_none(self, backend: Backend) -> None:
        keep = store(backend, backend.new_task(ALICE))
        doomed = store(
            backend, backend.new_task(ALICE), lambda t: t.edit(backend.clock.now(), title="v2")
        )
        backend.repo.delete(doomed)
        assert backend.repo.get(ALICE, doomed.id) is None
        assert ids(list_all(backend, ALICE)) == [keep.id]
        assert_same_task(backend.repo.get(ALICE, keep.id), keep)
        with pytest.raises(NotFound):
            backend.repo.delete(doomed)
        with pytest.raises(NotFound):
            backend.repo.save(doomed.edit(backend.clock.now(), title="back"), doomed.version)
        assert backend.repo.get(ALICE, doomed.id) is None

    def test_stale_delete_is_refused_and_keeps_the_task(self, backend: Backend) -> None:
        task = store(backend, backend.new_task(ALICE))
        edited = task.edit(backend.clock.now(), title="newer")
        backend.repo.save(edited, expected_version=task.version)
        with pytest.raises(ConcurrentModification):
            backend.repo.delete(task)
        assert_same_task(backend.repo.get(ALICE, task.id), edited)
        backend.repo.delete(edited)
        assert backend.repo.get(ALICE, task.id) is None


class TestListFilters:
    @pytest.fixture
    def corpus(self, backend: Backend) -> list[Task]:
        """Two tasks of alice per (status, priority) in a shuffled order, a few of bob's, an
        idempotency record and stats in alice's name (which must never show up as tasks)."""
        combos = [(s, p) for s in Status for p in Priority] * 2
        random.Random(20300101).shuffle(combos)
        tasks: list[Task] = []
        for index, (status, priority) in enumerate(combos):
            tasks.append(store_in_state(backend, ALICE, status, priority))
            if index % 8 == 0:
                tasks.append(store_in_state(backend, BOB, status, priority))
        extra = backend.new_task(ALICE, priority=Priority.LOW)
        backend.repo.add(extra, record_for(extra, "key-1", backend.clock.now() + timedelta(1)))
        tasks.append(extra)
        backend.stats.apply(ALICE, "event-1", StatsDelta(status_counts={"pending": 1}))
        return tasks

    def test_every_filter_matches_the_model(self, backend: Backend, corpus: list[Task]) -> None:
        problems: list[str] = []
        for status in (None, *Status):
            for priority in (None, *Priority):
                expected = newest_first(
                    t
                    for t in corpus
                    if t.owner_id == ALICE
                    and (status is None or t.status is status)
                    and (priority is None or t.priority is priority)
                )
                assert expected, "the corpus covers every combination"
                for limit in (2, 5):
                    problems += listing_problems(
                        backend,
                        ALICE,
                        status=status,
                        priority=priority,
                        limit=limit,
                        expected=expected,
                    )
        assert not problems, "\n".join(problems)

    def test_filters_of_an_owner_without_tasks_are_empty(
        self, backend: Backend, corpus: list[Task]
    ) -> None:
        for status in (None, Status.PENDING):
            for priority in (None, Priority.HIGH):
                page = backend.repo.list_owned(
                    CAROL, status=status, priority=priority, limit=10, after=None
                )
                assert page.items == ()
                assert page.last_position is None

    def test_filters_follow_saved_changes(self, backend: Backend) -> None:
        task = store(backend, backend.new_task(ALICE, priority=Priority.LOW))

        def listed(status: Status | None, priority: Priority | None) -> list[TaskId]:
            return ids(list_all(backend, ALICE, status=status, priority=priority))

        assert listed(Status.PENDING, Priority.LOW) == [task.id]
        now = backend.clock.now()
        raised = task.edit(now, priority=Priority.CRITICAL)
        backend.repo.save(raised, expected_version=task.version)
        assert listed(None, Priority.LOW) == []
        assert listed(Status.PENDING, Priority.CRITICAL) == [task.id]
        approved = raised.decide(Decision.APPROVE, APPROVER, now)
        backend.repo.save(approved, expected_version=raised.version)
        started = approved.transition_to(Status.IN_PROGRESS, now)
        backend.repo.save(started, expected_version=approved.version)
        assert listed(Status.PENDING, None) == []
        assert listed(Status.IN_PROGRESS, Priority.CRITICAL) == [task.id]
        done = started.transition_to(Status.COMPLETED, now)
        backend.repo.save(done, expected_version=started.version)
        assert listed(Status.IN_PROGRESS, None) == []
        assert listed(Status.COMPLETED, Priority.CRITICAL) == [task.id]
        assert_same_task(list_all(backend, ALICE, status=Status.COMPLETED)[0], done)
        backend.repo.delete(done)
        assert listed(Status.COMPLETED, None) == []
        assert listed(None, None) == []


class TestPagination:
    @pytest.fixture
    def tasks(self, backend: Backend) -> list[Task]:
        """25 of alice's tasks with bob's interleaved, some moved on to other states."""
        made: list[Task] = []
        for index in range(25):
            status = (Status.PENDING, Status.IN_PROGRESS, Status.COMPLETED)[index % 3]
            priority = (Priority.LOW, Priority.MEDIUM, Priority.HIGH, Priority.CRITICAL)[index % 4]
            made.append(store_in_state(backend, ALICE, status, priority))
            if index % 5 == 0:
                store_in_state(backend, BOB, Status.PENDING, Priority.LOW)
        return made

    def test_every_task_once_newest_first(self, backend: Backend, tasks: list[Task]) -> None:
        expected = newest_first(tasks)
        assert [t.created_at for t in expected] == sorted(
            (t.created_at for t in tasks), reverse=True
        )
        problems: list[str] = []
        for limit in LIMITS:
            problems += listing_problems(
                backend, ALICE, status=None, priority=None, limit=limit, expected=expected
            )
            pages = follow(owned(backend, ALICE, limit=limit), limit)
            if len(pages) > math.ceil(len(tasks) / limit) + 1:
                problems.append(f"limit={limit}: {len(pages)} pages for {len(tasks)} tasks")
        assert not problems, "\n".join(problems)

    @pytest.mark.parametrize(
        ("status", "priority"),
        [
            (Status.PENDING, None),
            (Status.COMPLETED, None),
            (None, Priority.CRITICAL),
            (Status.IN_PROGRESS, Priority.LOW),
        ],
    )
    def test_filtered_pages_cover_every_match_once(
        self,
        backend: Backend,
        tasks: list[Task],
        status: Status | None,
        priority: Priority | None,
    ) -> None:
        expected = newest_first(
            t
            for t in tasks
            if (status is None or t.status is status)
            and (priority is None or t.priority is priority)
        )
        assert expected
        problems: list[str] = []
        for limit in LIMITS:
            problems += listing_problems(
                backend, ALICE, status=status, priority=priority, limit=limit, expected=expected
            )
        assert not problems, "\n".join(problems)

    @pytest.mark.parametrize("change", ["deleted", "moved out of the filter"])
    def test_position_survives_its_task_changing(
        self, backend: Backend, tasks: list[Task], change: str, request: pytest.FixtureRequest
    ) -> None:
        """A client acts on the last task of a page, then asks for the next page."""
        pending = newest_first(t for t in tasks if t.status is Status.PENDING)
        limit = 3
        first = backend.repo.list_owned(
            ALICE, status=Status.PENDING, priority=None, limit=limit, after=None
        )
        assert first.items == tuple(pending[:limit])
        assert first.last_position is not None
        seen = first.items[-1]
        if change == "deleted":
            backend.repo.delete(seen)
        else:
            moved = seen.transition_to(Status.CANCELLED, backend.clock.now())
            backend.repo.save(moved, expected_version=seen.version)
        start = first.last_position
        fetch = owned(backend, ALICE, status=Status.PENDING, limit=limit)
        rest = follow(lambda after: fetch(after or start), limit)
        assert ids(flatten(rest)) == ids(pending[limit:])


class TestApprovalQueue:
    def test_queue_holds_only_awaiting_tasks_oldest_first(self, backend: Backend) -> None:
        now = backend.clock.now
        awaiting_1 = store(backend, backend.new_task(ALICE, priority=Priority.HIGH))
        store(backend, backend.new_task(ALICE, priority=Priority.LOW))
        awaiting_2 = store(backend, backend.new_task(BOB, priority=Priority.CRITICAL))
        store(  # approved: decided, not waiting
            backend,
            backend.new_task(BOB, priority=Priority.HIGH),
            lambda t: t.decide(Decision.APPROVE, APPROVER, now()),
        )
        store(  # cancelled while the approval was pending
            backend,
            backend.new_task(BOB, priority=Priority.HIGH),
            lambda t: t.transition_to(Status.CANCELLED, now()),
        )
        store(
            backend,
            backend.new_task(CAROL, priority=Priority.CRITICAL),
            lambda t: t.decide(Decision.REJECT, APPROVER, now()),
        )
        store(
            backend,
            backend.new_task(CAROL, priority=Priority.HIGH),
            lambda t: t.expire_approval(now()),
        )
        # Raised to high while pending: joins the queue through a save.
        awaiting_3 = store(
            backend,
            backend.new_task(CAROL, priority=Priority.MEDIUM),
            lambda t: t.edit(now(), priority=Priority.HIGH),
        )
        # Edited while waiting: stays, and the queue shows the new content.
        awaiting_4 = store(
            backend,
            backend.new_task(ALICE, priority=Priority.CRITICAL),
            lambda t: t.edit(now(), title="edited while waiting", tags=["urgent"]),
        )
        expected = [awaiting_1, awaiting_2, awaiting_3, awaiting_4]
        for limit in (1, 2, 3, 100):
            assert queue(backend, limit) == expected, f"limit {limit}"
        for task in expected:
            assert_same_task(backend.repo.get_awaiting_approval(task.id), task)

    def test_decided_cancelled_or_deleted_tasks_leave_the_queue(self, backend: Backend) -> None:
        now = backend.clock.now
        waiting = [
            store(backend, backend.new_task(owner, priority=Priority.HIGH))
            for owner in (ALICE, BOB, ALICE, CAROL, BOB, ALICE)
        ]
        assert queue(backend) == waiting
        approved, rejected, expired, cancelled, deleted, remaining = waiting
        leave: list[Task] = []
        changes: list[tuple[Task, Callable[[Task], Task]]] = [
            (approved, lambda t: t.decide(Decision.APPROVE, APPROVER, now())),
            (rejected, lambda t: t.decide(Decision.REJECT, APPROVER, now())),
            (expired, lambda t: t.expire_approval(now())),
            (cancelled, lambda t: t.transition_to(Status.CANCELLED, now())),
        ]
        for task, change in changes:
            changed = change(task)
            backend.repo.save(changed, expected_version=task.version)
            leave.append(changed)
        backend.repo.delete(deleted)
        assert queue(backend, 1) == [remaining]
        assert queue(backend, 100) == [remaining]
        for task in (*leave, deleted):
            assert backend.repo.get_awaiting_approval(task.id) is None
        assert_same_task(backend.repo.get_awaiting_approval(remaining.id), remaining)
        # The decided tasks are still their owners' tasks.
        for task in leave:
            assert_same_task(backend.repo.get(task.owner_id, task.id), task)
        # Starting the approved task keeps it out of the queue.
        started = leave[0].transition_to(Status.IN_PROGRESS, now())
        backend.repo.save(started, expected_version=leave[0].version)
        assert queue(backend) == [remaining]

    def test_get_awaiting_approval_of_other_tasks_is_none(self, backend: Backend) -> None:
        low = store(backend, backend.new_task(ALICE, priority=Priority.LOW))
        started = store_in_state(backend, ALICE, Status.IN_PROGRESS, Priority.CRITICAL)
        assert backend.repo.get_awaiting_approval(low.id) is None
        assert backend.repo.get_awaiting_approval(started.id) is None
        assert backend.repo.get_awaiting_approval(TaskId(backend.ids.new_id())) is None
        page = backend.repo.list_awaiting_approval(limit=10, after=None)
        assert page.items == ()
        assert page.last_position is None


class TestIdempotentCreate:
    def test_second_add_with_the_same_key_gets_the_first_record(self, backend: Backend) -> None:
        expires = backend.clock.now() + timedelta(hours=24, microseconds=5)
        first = SHAPES["full"](backend)
        first_record = record_for(first, "key#1/ü", expires, fingerprint="sha256:aaa")
        backend.repo.add(first, first_record)

        second = backend.new_task(ALICE, title="another body")
        second_record = record_for(second, "key#1/ü", expires, fingerprint="sha256:bbb")
        with pytest.raises(IdempotencyKeyTaken) as raised:
            backend.repo.add(second, second_record)
        assert raised.value.record == first_record
        assert_same_task(raised.value.record.task, first)
        assert backend.repo.get(ALICE, second.id) is None
        assert list_all(backend, ALICE) == [first]

    def test_retrying_the_very_same_add_reports_the_key(self, backend: Backend) -> None:
        task = backend.new_task(ALICE)
        record = record_for(task, "retry", backend.clock.now() + timedelta(hours=1))
        backend.repo.add(task, record)
        with pytest.raises(IdempotencyKeyTaken) as raised:
            backend.repo.add(task, record)
        assert raised.value.record == record

    def test_the_record_keeps_the_snapshot_taken_at_creation(self, backend: Backend) -> None:
        task = backend.new_task(ALICE, title="as created")
        record = record_for(task, "snap", backend.clock.now() + timedelta(hours=1))
        backend.repo.add(task, record)
        edited = task.edit(backend.clock.now(), title="edited later")
        backend.repo.save(edited, expected_version=task.version)
        other = backend.new_task(ALICE)
        with pytest.raises(IdempotencyKeyTaken) as raised:
            backend.repo.add(other, record_for(other, "snap", record.expires_at))
        assert raised.value.record == record
        backend.repo.delete(edited)
        with pytest.raises(IdempotencyKeyTaken) as raised:
            backend.repo.add(other, record_for(other, "snap", record.expires_at))
        assert raised.value.record == record
        assert backend.repo.get(ALICE, other.id) is None

    def test_keys_are_per_owner(self, backend: Backend) -> None:
        expires = backend.clock.now() + timedelta(hours=1)
        alices = backend.new_task(ALICE)
        bobs = backend.new_task(BOB)
        alice_record = record_for(alices, "shared-key", expires, fingerprint="a")
        bob_record = record_for(bobs, "shared-key", expires, fingerprint="b")
        backend.repo.add(alices, alice_record)
        backend.repo.add(bobs, bob_record)
        assert_same_task(backend.repo.get(BOB, bobs.id), bobs)
        for owner, record in ((ALICE, alice_record), (BOB, bob_record)):
            late = backend.new_task(owner)
            with pytest.raises(IdempotencyKeyTaken) as raised:
                backend.repo.add(late, record_for(late, "shared-key", expires, fingerprint="c"))
            assert raised.value.record == record
        assert list_all(backend, ALICE) == [alices]
        assert list_all(backend, BOB) == [bobs]

    def test_other_keys_and_no_key_do_not_block(self, backend: Backend) -> None:
        expires = backend.clock.now() + timedelta(hours=1)
        tasks = [backend.new_task(ALICE) for _ in range(4)]
        backend.repo.add(tasks[0], record_for(tasks[0], "abc", expires))
        backend.repo.add(tasks[1], record_for(tasks[1], "abcd", expires))
        backend.repo.add(tasks[2], record_for(tasks[2], "ab", expires))
        backend.repo.add(tasks[3])
        assert list_all(backend, ALICE) == newest_first(tasks)

    def test_an_expired_record_no_longer_blocks(self, backend: Backend) -> None:
        first = backend.new_task(ALICE)
        first_record = record_for(first, "k", backend.clock.now() + timedelta(hours=1))
        backend.repo.add(first, first_record)

        backend.clock.current = first_record.expires_at - timedelta(seconds=1)
        early = backend.new_task(ALICE, tick=timedelta(0))
        with pytest.raises(IdempotencyKeyTaken) as raised:
            backend.repo.add(early, record_for(early, "k", backend.clock.now() + timedelta(1)))
        assert raised.value.record == first_record
        assert backend.repo.get(ALICE, early.id) is None

        backend.clock.current = first_record.expires_at + timedelta(seconds=1)
        second = backend.new_task(ALICE, tick=timedelta(0))
        second_record = record_for(second, "k", backend.clock.now() + timedelta(hours=1), "fp-2")
        backend.repo.add(second, second_record)
        assert_same_task(backend.repo.get(ALICE, second.id), second)

        # The new record replaced the expired one.
        third = backend.new_task(ALICE)
        with pytest.raises(IdempotencyKeyTaken) as raised:
            backend.repo.add(third, record_for(third, "k", backend.clock.now() + timedelta(1)))
        assert raised.value.record == second_record
        assert list_all(backend, ALICE) == [second, first]

    def test_a_record_is_expired_from_its_expires_at_on(self, backend: Backend) -> None:
        """Live while now < expires_at, to the microsecond (as the in-memory reference)."""
        first = backend.new_task(ALICE)
        first_record = record_for(first, "edge", backend.clock.now() + timedelta(hours=1))
        assert first_record.expires_at.microsecond != 0
        backend.repo.add(first, first_record)

        backend.clock.current = first_record.expires_at - timedelta(microseconds=1)
        early = backend.new_task(ALICE, tick=timedelta(0))
        with pytest.raises(IdempotencyKeyTaken):
            backend.repo.add(early, record_for(early, "edge", backend.clock.now() + timedelta(1)))

        backend.clock.current = first_record.expires_at
        on_time = backend.new_task(ALICE, tick=timedelta(0))
        backend.repo.add(on_time, record_for(on_time, "edge", backend.clock.now() + timedelta(1)))
        assert ids(list_all(backend, ALICE)) == [on_time.id, first.id]

    def test_an_existing_id_with_a_fresh_key_conflicts_and_leaves_the_key_free(
        self, backend: Backend
    ) -> None:
        expires = backend.clock.now() + timedelta(hours=1)
        task = store(backend, backend.new_task(ALICE))
        with pytest.raises(Conflict):
            backend.repo.add(task, record_for(task, "fresh", expires))
        # The add was refused as a whole: the key was not recorded.
        other = backend.new_task(ALICE)
        other_record = record_for(other, "fresh", expires, fingerprint="fp-other")
        backend.repo.add(other, other_record)
        late = backend.new_task(ALICE)
        with pytest.raises(IdempotencyKeyTaken) as raised:
            backend.repo.add(late, record_for(late, "fresh", expires))
        assert raised.value.record == other_record


# -- the stats store -----------------------------------------------------------------------------


def normalized(stats: UserStats) -> tuple[object, ...]:
    """Stats as compared: zero status counts are the same as absent ones."""
    return (
        stats.owner_id,
        {status: count for status, count in stats.by_status.items() if count != 0},
        dict(stats.completed_by_week),
        dict(stats.completion_histogram),
    )


class TestStats:
    def test_unknown_owner_has_empty_stats(self, backend: Backend) -> None:
        stats = backend.stats.get(CAROL)
        assert normalized(stats) == normalized(UserStats(owner_id=CAROL))
        assert stats.median_completion_seconds() is None

    def test_apply_once_per_event_id(self, backend: Backend) -> None:
        delta = StatsDelta(status_counts={"pending": 1})
        assert backend.stats.apply(ALICE, "evt-1", delta) is True
        assert backend.stats.apply(ALICE, "evt-1", delta) is False
        # A repeat is refused whatever it carries.
        assert (
            backend.stats.apply(
                ALICE, "evt-1", StatsDelta(status_counts={"pending": 5}, completion_bucket=3)
            )
            is False
        )
        stats = backend.stats.get(ALICE)
        assert stats.count(Status.PENDING) == 1
        assert dict(stats.completion_histogram) == {}

    def test_deltas_accumulate_like_the_model(self, backend: Backend) -> None:
        deltas = [
            StatsDelta(status_counts={"pending": -1}),  # a delete seen before its create
            StatsDelta(status_counts={"pending": 1}),
            StatsDelta(status_counts={"pending": 1}),
            StatsDelta(status_counts={"pending": 1}),
            StatsDelta(status_counts={"pending": -1, "in_progress": 1}),
            StatsDelta(status_counts={"in_progress": -1, "completed": 1}),
            StatsDelta(completed_week="2030-W01", completion_bucket=0),
            StatsDelta(completed_week="2030-W01", completion_bucket=17),
            StatsDelta(completed_week="2029-W52", completion_bucket=17),
            StatsDelta(status_counts={"pending": -1, "cancelled": 1}),
            StatsDelta(completed_week="2030-W02", completion_bucket=63),
        ]
        expected = UserStats(owner_id=ALICE)
        bobs = StatsDelta(status_counts={"pending": 1}, completed_week="2030-W01")
        assert backend.stats.apply(BOB, "bob-1", bobs) is True
        for index, delta in enumerate(deltas):
            assert backend.stats.apply(ALICE, f"evt-{index}", delta) is True
            assert backend.stats.apply(ALICE, f"evt-{index}", delta) is False
            expected = expected.apply(delta)
            assert normalized(backend.stats.get(ALICE)) == normalized(expected), index
        got = backend.stats.get(ALICE)
        assert normalized(got) == (
            ALICE,
            {"completed": 1, "cancelled": 1},
            {"2030-W01": 2, "2029-W52": 1, "2030-W02": 1},
            {0: 1, 17: 2, 63: 1},
        )
        assert got.median_completion_seconds() == expected.median_completion_seconds()
        assert got.completed_in_week_of(datetime(2030, 1, 2, tzinfo=UTC)) == 2
        assert normalized(backend.stats.get(BOB)) == normalized(UserStats(owner_id=BOB).apply(bobs))
