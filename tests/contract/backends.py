"""What a contract test gets: a `Backend` (one fresh store, its clock and ids) and the
constants the stores are made with. The fixture that makes them is in `conftest.py`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from taskcore.model import Priority, Task, TaskId, UserId
from taskcore.ports import StatsStore, TaskRepository
from taskcore.testing import FixedClock, SequentialIds

REGION = "us-east-1"
# Microseconds on purpose: a store that truncates timestamps breaks round trips.
START = datetime(2030, 1, 1, 9, 0, 0, 123456, tzinfo=UTC)


@attrs.frozen(kw_only=True)
class Backend:
    """One fresh store, the clock its repository reads and the ids tests hand out."""

    name: str
    repo: TaskRepository
    stats: StatsStore
    clock: FixedClock
    ids: SequentialIds

    def new_task(
        self,
        owner: str,
        *,
        title: str | None = None,
        priority: Priority = Priority.MEDIUM,
        tick: timedelta = timedelta(seconds=1),
        **fields: Any,
    ) -> Task:
        """A new task with the next (increasing) id, created at the clock's next tick."""
        now = self.clock.advance(tick)
        task_id = TaskId(self.ids.new_id())
        return Task.new(
            id=task_id,
            owner_id=UserId(owner),
            title=title if title is not None else f"task {task_id[-4:]}",
            priority=priority,
            now=now,
            **fields,
        )
