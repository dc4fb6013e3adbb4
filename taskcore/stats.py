"""Per-user statistics, kept up to date from events by a consumer.

Completion times are kept as a histogram with buckets a quarter power of two wide, so the stats
item stays small and is updated with atomic counters; the median it reports is the geometric
middle of its bucket (within about 9% of the exact value).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping
from datetime import datetime

import attrs

from taskcore.events import (
    Event,
    TaskArchived,
    TaskCreated,
    TaskDeleted,
    TaskUpdated,
)
from taskcore.model import Status, UserId

BUCKETS_PER_DOUBLING = 4


def iso_week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def completion_bucket(seconds: float) -> int:
    return math.floor(BUCKETS_PER_DOUBLING * math.log2(max(seconds, 1.0)))


def bucket_middle(bucket: int) -> float:
    return float(2 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING))


@attrs.frozen(kw_only=True)
class StatsDelta:
    """What one event adds to a user's stats; applied atomically, once per event id."""

    status_counts: Mapping[str, int] = attrs.field(factory=dict)
    completed_week: str | None = None
    completion_bucket: int | None = None


@attrs.frozen(kw_only=True)
class UserStats:
    owner_id: UserId
    by_status: Mapping[str, int] = attrs.field(factory=dict)
    completed_by_week: Mapping[str, int] = attrs.field(factory=dict)
    completion_histogram: Mapping[int, int] = attrs.field(factory=dict)

    def count(self, status: Status) -> int:
        return self.by_status.get(status.value, 0)

    def completed_in_week_of(self, moment: datetime) -> int:
        return self.completed_by_week.get(iso_week(moment), 0)

    def median_completion_seconds(self) -> float | None:
        total = sum(self.completion_histogram.values())
        if total <= 0:
            return None
        buckets = sorted(self.completion_histogram.items())
        cumulative = list(itertools.accumulate(count for _, count in buckets))
        lower_median = (total - 1) // 2  # as statistics.median_low
        return bucket_middle(buckets[bisect.bisect_right(cumulative, lower_median)][0])

    def apply(self, delta: StatsDelta) -> UserStats:
        by_status = dict(self.by_status)
        for status, change in delta.status_counts.items():
            by_status[status] = by_status.get(status, 0) + change
        weeks = dict(self.completed_by_week)
        if delta.completed_week is not None:
            weeks[delta.completed_week] = weeks.get(delta.completed_week, 0) + 1
        histogram = dict(self.completion_histogram)
        if delta.completion_bucket is not None:
            histogram[delta.completion_bucket] = histogram.get(delta.completion_bucket, 0) + 1
        return attrs.evolve(
            self, by_status=by_status, completed_by_week=weeks, completion_histogram=histogram
        )


def delta_for(event: Event) -> StatsDelta | None:
    """How an event moves the owner's stats, or None if it does not."""
    task = event.task
    if isinstance(event, TaskArchived):
        return None  # an archived task is still the owner's, and still completed
    if isinstance(event, TaskCreated):
        return StatsDelta(status_counts={task.status.value: 1})
    if isinstance(event, TaskDeleted):
        return StatsDelta(status_counts={task.status.value: -1})
    if isinstance(event, TaskUpdated) and event.previous.status is not task.status:
        moved = {event.previous.status.value: -1, task.status.value: 1}
        if task.status is Status.COMPLETED:
            # The completion's own TaskCompleted moves nothing: one stats write a completion,
            # not two (each is a transaction of 4 write units, docs/cost.md).
            completed_at = task.completed_at
            assert completed_at is not None  # the model's invariant: set exactly when completed
            seconds = (completed_at - task.created_at).total_seconds()
            return StatsDelta(
                status_counts=moved,
                completed_week=iso_week(completed_at),
                completion_bucket=completion_bucket(seconds),
            )
        return StatsDelta(status_counts=moved)
    return None
