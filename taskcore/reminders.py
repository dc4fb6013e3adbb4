"""Due-date reminders: when a task's reminder becomes due.

A task is reminded on the day before its due date (UTC calendar days, as due dates are): a
`TaskDueSoon` event means "due tomorrow". Only an open task (pending or in progress) with a due
date has a reminder; completing, cancelling or deleting the task, or clearing its due date,
takes it away, and a new due date makes a new one.

`reminder_due_at` is the moment the reminder becomes due: the start of the day before the due
date, or the task's last change if that is later (a task created, or given tomorrow's date,
during the day before). The reminder sweep (`taskcore.services.reminders`) looks for the
reminders that became due since its previous runs, so it reads each task about once a day
instead of every task due tomorrow on every run; the storage adapter keeps the moment in an
index keyed by due date.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from taskcore.model import Task

REMIND_BEFORE = timedelta(days=1)
"""How long before its due date (a UTC day) a task is reminded: the whole day before."""


def reminder_due_at(task: Task) -> datetime | None:
    """When the task's reminder becomes due (UTC); None if it has none."""
    if task.due_date is None or not task.status.is_open:
        return None
    day_before = datetime.combine(task.due_date, time.min, tzinfo=UTC) - REMIND_BEFORE
    return max(day_before, task.updated_at)
