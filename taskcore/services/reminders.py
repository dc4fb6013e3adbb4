"""The reminder sweep: every `SWEEP_EVERY`, a scheduled run publishes `TaskDueSoon` for the
open tasks due tomorrow (UTC) whose reminder became due since the run before last.

A run is a pure function of the time it was scheduled for (the scheduled event's `time`): a
retried or redriven run looks at the same window and finds the same reminders, with the same
event ids (`<taskId>:<dueDate>:TaskDueSoon`), which the consumers are idempotent by. Each
window reaches back `LOOKBACK`, two runs' worth, so a reminder is found by two runs: one run
lost, or an index lagging by less than a run, loses nothing; the second finding is a duplicate
the consumers drop. A reminder that becomes due after a day's last run (in its last
`SWEEP_EVERY`, from 23:45 UTC) is not sent: by the next run the task is due today.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import attrs

from taskcore.errors import Unavailable
from taskcore.events import TaskDueSoon
from taskcore.ports import DueTasks, EventPublisher
from taskcore.reminders import REMIND_BEFORE
from taskcore.serialization import envelope

SWEEP_EVERY_MINUTES = 15
SWEEP_EVERY = timedelta(minutes=SWEEP_EVERY_MINUTES)
"""How often the sweep runs: the manifest's schedule is built from it."""
LOOKBACK = 2 * SWEEP_EVERY
"""How far back each run looks for reminders that became due."""
PUBLISH_BATCH = 10  # EventBridge's PutEvents takes at most 10 entries
PUBLISH_ATTEMPTS = 3  # per batch; then the run fails, and Lambda retries it whole


@attrs.frozen(kw_only=True)
class SweepResult:
    """What one run did: the due date it reminded of, how many events it published, and
    whether it came too late to send any."""

    due_date: date
    published: int
    late: bool = False


def due_soon(
    tasks: DueTasks, now: datetime, *, lookback: timedelta = LOOKBACK
) -> Iterator[TaskDueSoon]:
    """The reminders a run scheduled for `now` sends: the open tasks due tomorrow whose
    reminder became due in the `lookback` before `now`."""
    if now.utcoffset() is None:
        raise ValueError("the sweep's time must be timezone-aware")
    tomorrow = now.astimezone(UTC).date() + REMIND_BEFORE
    for task in tasks.due_on(tomorrow, reminded_from=now - lookback, until=now):
        # The port re-reads each task; checked again here, as the rule is the domain's.
        if task.status.is_open and task.due_date == tomorrow:
            yield TaskDueSoon.for_task(task, tomorrow, occurred_at=now)


def send_reminders(
    tasks: DueTasks,
    publisher: EventPublisher,
    now: datetime,
    *,
    received: datetime | None = None,
    lookback: timedelta = LOOKBACK,
) -> SweepResult:
    """Publish the reminders of the run scheduled for `now`, `PUBLISH_BATCH` at a time as they
    are found. Entries the bus refuses are sent again, up to `PUBLISH_ATTEMPTS` times per
    batch; then the run fails (`Unavailable`), to be retried whole (what it published already
    goes again, harmlessly). A run `received` (actually made) on or after the due date it
    would remind of, a redriven one, sends nothing: "due tomorrow" would no longer be true."""
    tomorrow = now.astimezone(UTC).date() + REMIND_BEFORE
    if received is not None and received.astimezone(UTC).date() >= tomorrow:
        return SweepResult(due_date=tomorrow, published=0, late=True)
    published = 0
    batch: list[TaskDueSoon] = []

    def flush() -> None:
        nonlocal published
        pending = [envelope(event) for event in batch]
        for _ in range(PUBLISH_ATTEMPTS):
            pending = publisher.publish(pending)
            if not pending:
                break
        if pending:
            refused = ", ".join(e.event_id for e in pending)
            raise Unavailable(f"the bus refused reminders {refused}")
        published += len(batch)
        batch.clear()

    for event in due_soon(tasks, now, lookback=lookback):
        batch.append(event)
        if len(batch) == PUBLISH_BATCH:
            flush()
    if batch:
        flush()
    return SweepResult(due_date=tomorrow, published=published)
