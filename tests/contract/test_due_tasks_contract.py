"""The `DueTasks` contract (the reminder sweep's index), run against every backend: the
in-memory repository (the reference) and the DynamoDB adapter's sparse, sharded due-date index
on moto and on DynamoDB Local. Expected results are computed from what the test wrote."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import cast

import pytest

from taskcore.adapters.dynamodb import DynamoTaskRepository
from taskcore.adapters.dynamodb.table import DUE_SHARDS, due_shard
from taskcore.model import Priority, Status, Task, TaskId
from taskcore.ports import DueTasks
from taskcore.reminders import reminder_due_at
from tests.contract.backends import START, Backend

DUE = date(2030, 1, 5)
DAY_BEFORE = datetime(2030, 1, 4, tzinfo=UTC)
WHOLE_DAY = {"reminded_from": DAY_BEFORE, "until": DAY_BEFORE + timedelta(days=1)}


def due(backend: Backend) -> DueTasks:
    return cast(DueTasks, backend.repo)


def found(backend: Backend, day: date = DUE, **window: datetime) -> list[Task]:
    return sorted(due(backend).due_on(day, **(window or WHOLE_DAY)), key=lambda t: t.id)


def stored(backend: Backend, task: Task) -> Task:
    current = backend.repo.get(task.owner_id, task.id)
    assert current is not None
    return current


class TestDueOn:
    def test_open_tasks_due_that_day_come_back_as_stored(self, backend: Backend) -> None:
        pending = backend.new_task("alice", due_date=DUE, tags=["x"], description="d")
        started = backend.new_task("bob", due_date=DUE, priority=Priority.LOW)
        other_day = backend.new_task("alice", due_date=DUE + timedelta(days=1))
        undated = backend.new_task("alice")
        for task in (pending, started, other_day, undated):
            backend.repo.add(task)
        started_now = started.transition_to(Status.IN_PROGRESS, backend.clock.now())
        backend.repo.save(started_now, 1)
        assert found(backend) == sorted([pending, started_now], key=lambda t: t.id)

    def test_a_task_that_is_not_open_is_not_in_it(self, backend: Backend) -> None:
        tasks = [backend.new_task("alice", due_date=DUE) for _ in range(4)]
        for task in tasks:
            backend.repo.add(task)
        now = backend.clock.now()
        started = tasks[0].transition_to(Status.IN_PROGRESS, now)
        backend.repo.save(started, 1)
        backend.repo.save(started.transition_to(Status.COMPLETED, now), 2)
        backend.repo.save(tasks[1].transition_to(Status.CANCELLED, now), 1)
        backend.repo.delete(tasks[2])
        assert found(backend) == [tasks[3]]

    def test_a_high_priority_task_awaiting_approval_is_open(self, backend: Backend) -> None:
        task = backend.new_task("alice", due_date=DUE, priority=Priority.HIGH)
        backend.repo.add(task)
        assert found(backend) == [task]

    def test_a_moved_or_cleared_due_date_moves_or_removes_it(self, backend: Backend) -> None:
        moved, cleared = (backend.new_task("alice", due_date=DUE) for _ in range(2))
        backend.repo.add(moved)
        backend.repo.add(cleared)
        now = backend.clock.now()
        later = DUE + timedelta(days=2)
        backend.repo.save(moved.edit(now, due_date=later), 1)
        backend.repo.save(cleared.edit(now, due_date=None), 1)
        assert found(backend) == []
        window = {"reminded_from": DAY_BEFORE, "until": DAY_BEFORE + timedelta(days=3)}
        assert found(backend, later, **window) == [stored(backend, moved)]

    def test_reopening_a_completed_task_puts_it_back(self, backend: Backend) -> None:
        task = backend.new_task("alice", due_date=DUE)
        backend.repo.add(task)
        now = backend.clock.now()
        done = task.transition_to(Status.IN_PROGRESS, now).transition_to(Status.COMPLETED, now)
        backend.repo.save(done, 1)
        assert found(backend) == []
        backend.repo.save(done.transition_to(Status.IN_PROGRESS, now), done.version)
        assert found(backend) == [stored(backend, task)]


class TestReminderWindow:
    def test_a_task_due_later_is_found_from_the_start_of_the_day_before(
        self, backend: Backend
    ) -> None:
        task = backend.new_task("alice", due_date=DUE)
        backend.repo.add(task)
        assert reminder_due_at(task) == DAY_BEFORE
        tick = timedelta(microseconds=1)
        assert found(backend, reminded_from=DAY_BEFORE, until=DAY_BEFORE) == [task]
        assert found(backend, reminded_from=DAY_BEFORE - tick, until=DAY_BEFORE - tick) == []
        assert found(backend, reminded_from=DAY_BEFORE + tick, until=DAY_BEFORE + tick) == []

    def test_a_task_changed_on_the_day_before_is_found_from_its_change(
        self, backend: Backend
    ) -> None:
        """START is 2030-01-01 09:00:00.123456: a task due on the 2nd, created then."""
        tomorrow = date(2030, 1, 2)
        task = backend.new_task("alice", due_date=tomorrow)
        backend.repo.add(task)
        changed = task.created_at
        assert changed > START
        assert reminder_due_at(task) == changed
        window = timedelta(minutes=30)
        assert found(backend, tomorrow, reminded_from=changed - window, until=changed) == [task]
        before = {"reminded_from": changed - window, "until": changed - timedelta(microseconds=1)}
        assert found(backend, tomorrow, **before) == []
        edited = task.edit(changed + timedelta(hours=2), title="later")
        backend.repo.save(edited, 1)
        assert found(backend, tomorrow, reminded_from=changed - window, until=changed) == []
        at_edit = {"reminded_from": edited.updated_at, "until": edited.updated_at}
        assert found(backend, tomorrow, **at_edit) == [edited]

    def test_the_window_may_be_given_in_any_time_zone(self, backend: Backend) -> None:
        task = backend.new_task("alice", due_date=DUE)
        backend.repo.add(task)
        plus_two = DAY_BEFORE.astimezone(timezone(timedelta(hours=2)))  # 02:00 there
        assert found(backend, reminded_from=plus_two, until=plus_two) == [task]


class TestShardsAndPages:
    @pytest.mark.parametrize("page_size", [None, 3])
    def test_every_task_of_the_day_comes_back_once_across_shards_and_pages(
        self, backend: Backend, page_size: int | None
    ) -> None:
        if isinstance(backend.repo, DynamoTaskRepository):
            backend.repo.due_page_size = page_size
        owners = ["alice", "bob", "carol", "dave"]
        tasks = [
            backend.new_task(owners[n % 4], due_date=DUE, tick=timedelta(milliseconds=1))
            for n in range(230)  # more than two BatchGetItem requests' worth in all
        ]
        for task in tasks:
            backend.repo.add(task)
        assert {due_shard(t.id) for t in tasks} == set(range(DUE_SHARDS))
        got = found(backend)
        assert [t.id for t in got] == sorted(TaskId(t.id) for t in tasks)
        assert got == sorted(tasks, key=lambda t: t.id)
