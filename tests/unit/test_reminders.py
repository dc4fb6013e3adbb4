"""Due-date reminders: when a reminder becomes due (`taskcore.reminders`) and the sweep that
sends them (`taskcore.services.reminders`), on the in-memory `DueTasks`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskcore import services
from taskcore.errors import Unavailable
from taskcore.events import TaskDueSoon
from taskcore.model import Status, Task, TaskId, UserId
from taskcore.reminders import reminder_due_at
from taskcore.serialization import event_from_json
from taskcore.services.reminders import LOOKBACK, PUBLISH_ATTEMPTS, SWEEP_EVERY, due_soon
from taskcore.testing import FixedClock, InMemoryEventPublisher, InMemoryTaskRepository

DUE = date(2030, 1, 10)
DAY_BEFORE = datetime(2030, 1, 9, tzinfo=UTC)
EARLY = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)


def task(n: int = 1, *, due: date | None = DUE, at: datetime = EARLY, owner: str = "alice") -> Task:
    return Task.new(
        id=TaskId(f"01JD{n:022d}"), owner_id=UserId(owner), title=f"t{n}", now=at, due_date=due
    )


def repo(*tasks: Task) -> InMemoryTaskRepository:
    stored = InMemoryTaskRepository(clock=FixedClock(EARLY))
    for t in tasks:
        stored.add(t)
    return stored


def reminded(stored: InMemoryTaskRepository, now: datetime) -> list[TaskId]:
    return [event.task_id for event in due_soon(stored, now)]


class TestReminderDueAt:
    def test_a_task_due_later_is_reminded_from_the_start_of_the_day_before(self) -> None:
        assert reminder_due_at(task(at=EARLY)) == DAY_BEFORE

    def test_a_change_during_the_day_before_makes_it_due_then(self) -> None:
        created = DAY_BEFORE + timedelta(hours=15, minutes=3)
        assert reminder_due_at(task(at=created)) == created
        edited = task(at=EARLY).edit(created, title="later")
        assert reminder_due_at(edited) == created

    def test_a_task_without_a_due_date_has_no_reminder(self) -> None:
        assert reminder_due_at(task(due=None)) is None

    @pytest.mark.parametrize("status", [Status.COMPLETED, Status.CANCELLED])
    def test_a_task_that_is_no_longer_open_has_no_reminder(self, status: Status) -> None:
        started = task().transition_to(Status.IN_PROGRESS, EARLY)
        assert reminder_due_at(started) == DAY_BEFORE
        assert reminder_due_at(started.transition_to(status, EARLY)) is None

    def test_reopening_a_task_gives_its_reminder_back(self) -> None:
        started = task().transition_to(Status.IN_PROGRESS, EARLY)
        done = started.transition_to(Status.COMPLETED, EARLY)
        assert reminder_due_at(done.transition_to(Status.IN_PROGRESS, EARLY)) == DAY_BEFORE


class TestDueSoon:
    def test_a_run_on_the_day_before_reminds_of_tasks_due_tomorrow(self) -> None:
        stored = repo(task(1), task(2, due=DUE + timedelta(days=1)), task(3, due=None))
        (event,) = due_soon(stored, DAY_BEFORE)
        assert isinstance(event, TaskDueSoon)
        assert (event.task_id, event.due_date, event.occurred_at) == (task(1).id, DUE, DAY_BEFORE)
        assert event.event_id == f"{task(1).id}:2030-01-10:TaskDueSoon"
        assert event.task == stored.get(UserId("alice"), task(1).id)

    def test_only_reminders_that_became_due_in_the_lookback_are_sent(self) -> None:
        stored = repo(task(1))
        assert reminded(stored, DAY_BEFORE + LOOKBACK) == [task(1).id]
        assert reminded(stored, DAY_BEFORE + LOOKBACK + timedelta(microseconds=1)) == []
        assert reminded(stored, DAY_BEFORE - timedelta(microseconds=1)) == []

    def test_a_run_reminds_of_tomorrow_in_utc_whatever_the_time_zone_of_its_time(self) -> None:
        stored = repo(task(1))
        paris = DAY_BEFORE.astimezone(ZoneInfo("Europe/Paris"))  # 01:00 on the 9th there
        assert reminded(stored, paris) == [task(1).id]

    def test_a_lost_run_loses_no_reminder(self) -> None:
        """Each reminder is in two runs' windows: the run after a lost one still finds it."""
        changed = DAY_BEFORE + timedelta(hours=10, minutes=1)
        stored = repo(task(1, at=changed))
        lost = DAY_BEFORE + timedelta(hours=10, minutes=15)
        assert reminded(stored, lost) == [task(1).id]
        assert reminded(stored, lost + SWEEP_EVERY) == [task(1).id]
        assert reminded(stored, lost + 2 * SWEEP_EVERY) == []

    def test_a_naive_time_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            list(due_soon(repo(), DAY_BEFORE.replace(tzinfo=None)))

    def test_a_completed_or_deleted_task_is_not_reminded(self) -> None:
        stored = repo(task(1), task(2), task(3))
        started = task(1).transition_to(Status.IN_PROGRESS, EARLY)
        stored.save(started, 1)
        stored.save(started.transition_to(Status.COMPLETED, EARLY), 2)
        stored.delete(task(2))
        assert reminded(stored, DAY_BEFORE) == [task(3).id]

    def test_a_moved_or_cleared_due_date_moves_or_cancels_the_reminder(self) -> None:
        stored = repo(task(1), task(2))
        stored.save(task(1).edit(EARLY, due_date=DUE + timedelta(days=3)), 1)
        stored.save(task(2).edit(EARLY, due_date=None), 1)
        assert reminded(stored, DAY_BEFORE) == []
        assert reminded(stored, DAY_BEFORE + timedelta(days=3)) == [task(1).id]

    def test_the_port_is_checked_again(self) -> None:
        """A stale index entry (a completed task, an old due date) is not reminded, whatever
        the store hands back."""

        class Stale:
            def due_on(self, day, *, reminded_from, until):
                started = task(1).transition_to(Status.IN_PROGRESS, EARLY)
                yield started.transition_to(Status.COMPLETED, EARLY)
                yield task(2, due=DUE - timedelta(days=1))
                yield task(3)

        assert [e.task_id for e in due_soon(Stale(), DAY_BEFORE)] == [task(3).id]

    def test_a_task_given_tomorrows_date_after_the_last_run_of_the_day_is_not_reminded(
        self,
    ) -> None:
        """The documented gap: the next run is on the due day itself."""
        late = datetime(2030, 1, 9, 23, 50, tzinfo=UTC)
        stored = repo(task(1, at=late))
        midnight = datetime(2030, 1, 10, tzinfo=UTC)
        assert reminded(stored, late - timedelta(minutes=5)) == []
        assert reminded(stored, midnight) == []


class TestSendReminders:
    def test_reminders_go_out_ten_at_a_time_as_envelopes(self) -> None:
        stored = repo(*(task(n, owner=f"u{n % 3}") for n in range(1, 26)))
        bus = InMemoryEventPublisher()
        result = services.send_reminders(stored, bus, DAY_BEFORE)
        assert (result.due_date, result.published) == (DUE, 25)
        assert bus.batches == 3
        assert {e.detail_type for e in bus.published} == {"TaskDueSoon"}
        back = [event_from_json({**e.detail, "type": e.detail_type}) for e in bus.published]
        assert sorted(e.task_id for e in back) == sorted(task(n).id for n in range(1, 26))
        assert all(isinstance(e, TaskDueSoon) and e.due_date == DUE for e in back)

    def test_a_second_run_sends_the_same_ids(self) -> None:
        stored = repo(task(1), task(2))
        first, second = InMemoryEventPublisher(), InMemoryEventPublisher()
        services.send_reminders(stored, first, DAY_BEFORE)
        services.send_reminders(stored, second, DAY_BEFORE + SWEEP_EVERY)
        assert [e.event_id for e in first.published] == [e.event_id for e in second.published]

    def test_a_run_made_on_the_due_day_sends_nothing(self) -> None:
        """A redriven run: its reminders would say "due tomorrow" of a task due today."""
        stored, bus = repo(task(1)), InMemoryEventPublisher()
        late = services.send_reminders(stored, bus, DAY_BEFORE, received=DAY_BEFORE + timedelta(1))
        assert (late.due_date, late.published, late.late) == (DUE, 0, True)
        assert bus.batches == 0
        in_time = services.send_reminders(
            stored, bus, DAY_BEFORE, received=DAY_BEFORE + timedelta(hours=23, minutes=59)
        )
        assert (in_time.published, in_time.late) == (1, False)

    def test_nothing_due_publishes_nothing(self) -> None:
        bus = InMemoryEventPublisher()
        assert services.send_reminders(repo(), bus, DAY_BEFORE).published == 0
        assert bus.batches == 0

    def test_refused_entries_are_sent_again(self) -> None:
        stored = repo(task(1), task(2))
        refused = f"{task(2).id}:2030-01-10:TaskDueSoon"

        class Flaky(InMemoryEventPublisher):
            def publish(self, envelopes):
                failed = super().publish(envelopes)
                self.fail_ids.clear()  # refused once, then accepted
                return failed

        bus = Flaky(fail_ids={refused})
        assert services.send_reminders(stored, bus, DAY_BEFORE).published == 2
        assert [e.event_id for e in bus.published][-1] == refused
        assert bus.batches == 2

    def test_entries_refused_every_time_fail_the_run(self) -> None:
        stored = repo(task(1))
        refused = f"{task(1).id}:2030-01-10:TaskDueSoon"
        bus = InMemoryEventPublisher(fail_ids={refused})
        with pytest.raises(Unavailable, match=refused):
            services.send_reminders(stored, bus, DAY_BEFORE)
        assert bus.batches == PUBLISH_ATTEMPTS


# -- a day of runs, as a property ----------------------------------------------------------------

START = datetime(2030, 1, 8, 20, 0, tzinfo=UTC)
HOURS = 32  # from 20:00 two days before the first due date into the due day
DUE_DATES = [date(2030, 1, 9), date(2030, 1, 10), date(2030, 1, 11), None]
OPERATIONS = ["create", "move", "start", "complete", "reopen", "cancel", "delete", "edit"]

operations = st.lists(
    st.tuples(
        st.integers(0, HOURS * 60 - 1),  # minute of the change
        st.integers(1, 4),  # which task
        st.sampled_from(OPERATIONS),
        st.sampled_from(DUE_DATES),
    ),
    max_size=40,
)


def apply(
    stored: InMemoryTaskRepository, n: int, operation: str, due: date | None, at: datetime
) -> None:
    """One change to task `n` at `at`, if the task's rules allow it (else nothing)."""
    current = stored.get(UserId("alice"), task(n).id)
    if operation == "create":
        if current is None:
            stored.add(task(n, due=due, at=at))
        return
    if current is None:
        return
    changes = {
        "move": lambda: current.edit(at, due_date=due),
        "edit": lambda: current.edit(at, title=f"edited {at:%H%M}"),
        "start": lambda: current.transition_to(Status.IN_PROGRESS, at),
        "complete": lambda: current.transition_to(Status.COMPLETED, at),
        "reopen": lambda: current.transition_to(Status.IN_PROGRESS, at),
        "cancel": lambda: current.transition_to(Status.CANCELLED, at),
    }
    if operation == "delete":
        stored.delete(current)
        return
    try:
        changed = changes[operation]()
    except Exception:  # a transition the task's rules refuse: the API would answer 409
        return
    if changed is not current:
        stored.save(changed, current.version)


def open_and_due_tomorrow(stored: InMemoryTaskRepository, at: datetime) -> set[TaskId]:
    tomorrow = at.date() + timedelta(days=1)
    return {t.id for t in stored.tasks.values() if t.status.is_open and t.due_date == tomorrow}


@settings(max_examples=150, deadline=None)
@given(operations, st.none() | st.integers(0, HOURS * 4 - 1))
def test_every_open_task_due_tomorrow_has_been_reminded_and_nothing_else_is(
    changes: list[tuple[int, int, str, date | None]], missed: int | None
) -> None:
    """Runs every `SWEEP_EVERY` (one of them, `missed`, perhaps lost) among random changes:
    at every run that happens, every task open and due tomorrow has been reminded of that
    date by a run of that day, and a run reminds only of tasks open and due tomorrow then."""
    stored = repo()
    runs = [START + i * SWEEP_EVERY for i in range(HOURS * 4)]
    timeline = sorted(
        [(START + timedelta(minutes=m), 0, (n, op, due)) for m, n, op, due in changes]
        + [(run, 1, i) for i, run in enumerate(runs)],
        key=lambda entry: (entry[0], entry[1]),  # a change at a run's minute comes first
    )
    sent: dict[date, set[TaskId]] = {}
    for at, kind, what in timeline:
        if kind == 0:
            n, op, due = what  # type: ignore[misc]
            apply(stored, n, op, due, at)
            continue
        if what == missed:
            continue
        expected = open_and_due_tomorrow(stored, at)
        found = {event.task_id for event in due_soon(stored, at)}
        assert found <= expected, "a reminder for a task not open and due tomorrow"
        tomorrow = at.date() + timedelta(days=1)
        sent.setdefault(tomorrow, set()).update(found)
        assert expected <= sent[tomorrow], f"not reminded by {at}: {expected - sent[tomorrow]}"
