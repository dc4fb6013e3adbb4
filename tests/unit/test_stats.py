from __future__ import annotations

import math
import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskcore.events import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    TaskArchived,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskDueSoon,
    TaskUpdated,
    derive_events,
)
from taskcore.model import Decision, Priority, Status, Task, TaskId, UserId
from taskcore.stats import (
    BUCKETS_PER_DOUBLING,
    StatsDelta,
    UserStats,
    bucket_middle,
    completion_bucket,
    delta_for,
    iso_week,
)
from taskcore.testing import build_task

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
ALICE = UserId("alice")
BOB = UserId("bob")
HALF_BUCKET = 2 ** (1 / (2 * BUCKETS_PER_DOUBLING))  # 2**(1/8), about 9%


def only(events: list[Event], kind: type[Event]) -> Event:
    matching = [e for e in events if type(e) is kind]
    assert len(matching) == 1, events
    return matching[0]


def deltas(old: Task | None, new: Task | None, at: datetime = T0) -> list[StatsDelta | None]:
    return [delta_for(e) for e in derive_events(old, new, at)]


class TestDeltaFor:
    def test_a_created_task_counts_in_its_status(self) -> None:
        assert deltas(None, build_task()) == [StatsDelta(status_counts={"pending": 1})]

    @pytest.mark.parametrize("status", [Status.PENDING, Status.IN_PROGRESS])
    def test_a_reminder_does_not_move_stats(self, status: Status) -> None:
        task = build_task(due_date=date(2030, 1, 2)).transition_to(status, T0)
        assert delta_for(TaskDueSoon.for_task(task, date(2030, 1, 2), occurred_at=T0)) is None

    def test_an_approval_request_does_not_move_stats(self) -> None:
        events = derive_events(None, build_task(priority=Priority.HIGH), T0)
        assert [type(e) for e in events] == [TaskCreated, ApprovalRequested]
        assert [delta_for(e) for e in events] == [StatsDelta(status_counts={"pending": 1}), None]

    def test_a_deleted_task_leaves_its_status(self) -> None:
        started = build_task().transition_to(Status.IN_PROGRESS, T0)
        (deleted,) = derive_events(started, None, T0)
        assert type(deleted) is TaskDeleted
        assert delta_for(deleted) == StatsDelta(status_counts={"in_progress": -1})

    def test_a_status_change_moves_one_task_between_statuses(self) -> None:
        task = build_task()
        started = task.transition_to(Status.IN_PROGRESS, T0 + timedelta(minutes=1))
        assert deltas(task, started) == [
            StatsDelta(status_counts={"pending": -1, "in_progress": 1})
        ]

    def test_an_edit_without_a_status_change_does_not_move_stats(self) -> None:
        task = build_task()
        edited = task.edit(T0, title="Rewrite", tags=["a"])
        events = derive_events(task, edited, T0)
        assert [type(e) for e in events] == [TaskUpdated]
        assert delta_for(events[0]) is None

    def test_a_completion_records_its_week_and_duration(self) -> None:
        started = build_task().transition_to(Status.IN_PROGRESS, T0)
        done_at = T0 + timedelta(hours=2)
        done = started.transition_to(Status.COMPLETED, done_at)
        events = derive_events(started, done, done_at)
        assert [type(e) for e in events] == [TaskUpdated, TaskCompleted]
        # One stats write a completion: its TaskUpdated carries all of it.
        assert delta_for(events[0]) == StatsDelta(
            status_counts={"in_progress": -1, "completed": 1},
            completed_week="2030-W01",
            completion_bucket=completion_bucket(7200),
        )
        assert delta_for(events[1]) is None
        assert completion_bucket(7200) == 51  # floor(4 * log2(7200))

    def test_the_duration_runs_from_creation_not_from_start(self) -> None:
        started = build_task().transition_to(Status.IN_PROGRESS, T0 + timedelta(days=1))
        done_at = T0 + timedelta(days=1, seconds=1)
        done = started.transition_to(Status.COMPLETED, done_at)
        delta = delta_for(only(derive_events(started, done, done_at), TaskUpdated))
        assert delta is not None
        assert delta.completion_bucket == completion_bucket(86401)

    def test_a_completed_event_moves_nothing_itself(self) -> None:
        done = build_task().transition_to(Status.IN_PROGRESS, T0)
        done = done.transition_to(Status.COMPLETED, T0 + timedelta(hours=1))
        assert delta_for(TaskCompleted.make(done, T0)) is None

    @pytest.mark.parametrize("decision", list(Decision))
    def test_an_approval_decision_itself_does_not_move_stats(self, decision: Decision) -> None:
        task = build_task(priority=Priority.HIGH)
        decided = task.decide(decision, BOB, T0)
        assert delta_for(only(derive_events(task, decided, T0), ApprovalDecided)) is None

    def test_a_rejection_cancels_the_task_in_the_counts(self) -> None:
        task = build_task(priority=Priority.CRITICAL)
        rejected = task.decide(Decision.REJECT, BOB, T0)
        update = only(derive_events(task, rejected, T0), TaskUpdated)
        assert delta_for(update) == StatsDelta(status_counts={"pending": -1, "cancelled": 1})

    def test_an_expired_approval_cancels_the_task_in_the_counts(self) -> None:
        task = build_task(priority=Priority.HIGH)
        expired = task.expire_approval(T0)
        assert deltas(task, expired) == [
            StatsDelta(status_counts={"pending": -1, "cancelled": 1}),
            None,
        ]

    def test_an_archived_task_does_not_move_stats(self) -> None:
        """It left the table, but it is still its owner's and still completed: the counts
        and the completion histogram keep it (a deletion would take it out of them)."""
        done = build_task().transition_to(Status.IN_PROGRESS, T0)
        done = done.transition_to(Status.COMPLETED, T0 + timedelta(hours=1))
        (archived,) = derive_events(done, None, T0 + timedelta(days=8), expired=True)
        assert isinstance(archived, TaskArchived)
        assert delta_for(archived) is None
        assert deltas(done, None) == [StatsDelta(status_counts={"completed": -1})]


class TestUserStatsApply:
    def test_empty_stats_count_nothing(self) -> None:
        stats = UserStats(owner_id=ALICE)
        assert [stats.count(s) for s in Status] == [0, 0, 0, 0]
        assert stats.completed_in_week_of(T0) == 0
        assert stats.median_completion_seconds() is None

    def test_status_counts_are_added(self) -> None:
        stats = UserStats(owner_id=ALICE, by_status={"pending": 2, "completed": 1})
        moved = stats.apply(StatsDelta(status_counts={"pending": -1, "in_progress": 1}))
        assert moved.by_status == {"pending": 1, "in_progress": 1, "completed": 1}
        assert moved.count(Status.IN_PROGRESS) == 1
        assert moved.count(Status.CANCELLED) == 0

    def test_applying_returns_new_stats_and_leaves_the_old_alone(self) -> None:
        stats = UserStats(owner_id=ALICE, by_status={"pending": 1})
        moved = stats.apply(
            StatsDelta(status_counts={"pending": 1}, completed_week="2030-W01", completion_bucket=3)
        )
        assert stats.by_status == {"pending": 1}
        assert stats.completed_by_week == {}
        assert stats.completion_histogram == {}
        assert moved.owner_id == ALICE
        assert moved.by_status == {"pending": 2}

    def test_a_completion_counts_its_week_and_bucket(self) -> None:
        delta = StatsDelta(completed_week="2030-W01", completion_bucket=40)
        stats = UserStats(owner_id=ALICE).apply(delta).apply(delta)
        stats = stats.apply(StatsDelta(completed_week="2030-W02", completion_bucket=41))
        assert stats.completed_by_week == {"2030-W01": 2, "2030-W02": 1}
        assert stats.completion_histogram == {40: 2, 41: 1}
        assert stats.by_status == {}

    def test_an_empty_delta_changes_nothing(self) -> None:
        stats = UserStats(
            owner_id=ALICE,
            by_status={"pending": 1},
            completed_by_week={"2030-W01": 1},
            completion_histogram={4: 1},
        )
        assert stats.apply(StatsDelta()) == stats

    def test_a_bucket_zero_completion_is_counted(self) -> None:
        stats = UserStats(owner_id=ALICE).apply(StatsDelta(completion_bucket=0))
        assert stats.completion_histogram == {0: 1}

    def test_a_whole_lifecycle_adds_up(self) -> None:
        low = build_task(n=1)
        high = build_task(priority=Priority.HIGH, n=2)
        started = low.transition_to(Status.IN_PROGRESS, T0 + timedelta(minutes=1))
        done_at = T0 + timedelta(hours=1)
        done = started.transition_to(Status.COMPLETED, done_at)
        rejected = high.decide(Decision.REJECT, BOB, done_at)
        changes: list[tuple[Task | None, Task | None]] = [
            (None, low),
            (None, high),
            (low, started),
            (started, done),
            (high, rejected),
            (rejected, None),
        ]
        stats = UserStats(owner_id=ALICE)
        for old, new in changes:
            for event in derive_events(old, new, done_at):
                delta = delta_for(event)
                if delta is not None:
                    stats = stats.apply(delta)
        assert stats.by_status == {"pending": 0, "in_progress": 0, "completed": 1, "cancelled": 0}
        assert stats.completed_in_week_of(done_at) == 1
        median = stats.median_completion_seconds()
        assert median is not None
        assert 3600 / HALF_BUCKET < median <= 3600 * HALF_BUCKET


class TestCompletionBuckets:
    @pytest.mark.parametrize(
        ("seconds", "bucket"),
        [(1, 0), (2, 4), (4, 8), (1024, 40), (3, 6), (3600, 47), (1.18, 0), (1.19, 1)],
    )
    def test_a_duration_falls_in_its_quarter_doubling(self, seconds: float, bucket: int) -> None:
        assert completion_bucket(seconds) == bucket

    @pytest.mark.parametrize("seconds", [0, 0.5, -30])
    def test_durations_under_a_second_fall_in_the_first_bucket(self, seconds: float) -> None:
        assert completion_bucket(seconds) == 0

    def test_a_bucket_middle_is_its_geometric_centre(self) -> None:
        assert bucket_middle(0) == pytest.approx(2 ** (1 / 8))
        assert bucket_middle(4) == pytest.approx(2 ** (9 / 8))
        low, high = 2 ** (47 / 4), 2 ** (48 / 4)
        assert bucket_middle(47) == pytest.approx(math.sqrt(low * high))


def stats_with(histogram: dict[int, int]) -> UserStats:
    return UserStats(owner_id=ALICE, completion_histogram=histogram)


class TestMedian:
    @pytest.mark.parametrize("histogram", [{}, {3: 0}, {1: 0, 2: 0}])
    def test_no_completions_have_no_median(self, histogram: dict[int, int]) -> None:
        assert stats_with(histogram).median_completion_seconds() is None

    @pytest.mark.parametrize(
        ("histogram", "bucket"),
        [
            ({7: 1}, 7),
            ({7: 5}, 7),
            ({0: 1, 4: 1, 8: 1}, 4),
            ({8: 1, 0: 1, 4: 1}, 4),
            ({0: 1, 4: 1}, 0),
            ({0: 2, 4: 2}, 0),
            ({0: 1, 4: 2}, 4),
            ({0: 2, 4: 1}, 0),
            ({0: 1, 4: 1, 8: 1, 12: 1}, 4),
            ({0: 0, 4: 1}, 4),
            ({0: 1, 2: 0, 4: 1}, 0),
            ({0: 1, 2: 0, 4: 2}, 4),
        ],
    )
    def test_the_median_is_the_lower_median_bucket(
        self, histogram: dict[int, int], bucket: int
    ) -> None:
        assert stats_with(histogram).median_completion_seconds() == bucket_middle(bucket)

    @given(st.lists(st.integers(min_value=-10, max_value=200), min_size=1, max_size=60))
    def test_it_matches_median_low_of_the_bucket_indices(self, buckets: list[int]) -> None:
        median = stats_with(dict(Counter(buckets))).median_completion_seconds()
        assert median == bucket_middle(statistics.median_low(buckets))

    @given(
        st.lists(
            st.floats(min_value=1.0, max_value=1e9, allow_nan=False, allow_infinity=False),
            min_size=1,
            max_size=60,
        )
    )
    def test_it_is_within_an_eighth_doubling_of_the_true_lower_median(
        self, durations: list[float]
    ) -> None:
        # For s >= 1 in bucket b: b/4 <= log2(s) < (b+1)/4, and the middle is 2**((b+.5)/4),
        # so middle/s lies in (2**-1/8, 2**1/8]. Bucketing is monotone, so the median bucket
        # is the bucket of the lower median duration. Allow for float rounding in log2.
        histogram = Counter(completion_bucket(d) for d in durations)
        median = stats_with(dict(histogram)).median_completion_seconds()
        assert median is not None
        exact = statistics.median_low(durations)
        slack = 1 + 1e-12
        assert exact / (HALF_BUCKET * slack) <= median <= exact * HALF_BUCKET * slack


class TestWeeks:
    @pytest.mark.parametrize(
        ("moment", "week"),
        [
            (datetime(2030, 1, 31, tzinfo=UTC), "2030-W05"),
            (datetime(2029, 12, 31, tzinfo=UTC), "2030-W01"),
            (datetime(2029, 12, 30, 23, 59, tzinfo=UTC), "2029-W52"),
            (datetime(2021, 1, 3, tzinfo=UTC), "2020-W53"),
            (datetime(2021, 1, 4, tzinfo=UTC), "2021-W01"),
            (datetime(2027, 1, 1, tzinfo=UTC), "2026-W53"),
        ],
    )
    def test_iso_week_labels_across_year_boundaries(self, moment: datetime, week: str) -> None:
        assert iso_week(moment) == week

    def test_completed_in_week_of_reads_the_week_of_the_moment(self) -> None:
        stats = UserStats(owner_id=ALICE, completed_by_week={"2030-W01": 3, "2029-W52": 1})
        assert stats.completed_in_week_of(datetime(2029, 12, 31, tzinfo=UTC)) == 3
        assert stats.completed_in_week_of(datetime(2030, 1, 6, 23, 59, tzinfo=UTC)) == 3
        assert stats.completed_in_week_of(datetime(2030, 1, 7, tzinfo=UTC)) == 0
        assert stats.completed_in_week_of(datetime(2029, 12, 30, tzinfo=UTC)) == 1

    def test_a_completion_at_new_year_counts_in_the_iso_week(self) -> None:
        created = datetime(2029, 12, 30, 12, tzinfo=UTC)
        task = Task.new(
            id=TaskId("01JD0000000000000000000009"), owner_id=ALICE, title="t", now=created
        )
        started = task.transition_to(Status.IN_PROGRESS, created)
        done_at = datetime(2029, 12, 31, 0, 30, tzinfo=UTC)
        done = started.transition_to(Status.COMPLETED, done_at)
        delta = delta_for(only(derive_events(started, done, done_at), TaskUpdated))
        assert delta is not None
        stats = UserStats(owner_id=ALICE).apply(delta)
        assert stats.completed_in_week_of(datetime(2030, 1, 2, tzinfo=UTC)) == 1
        assert stats.completed_in_week_of(created) == 0
