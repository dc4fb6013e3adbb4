"""Due-date reminders on the local platform, over HTTP: the platform's clock is set to just
after midnight tomorrow (`--clock-offset`), its schedules fire only when asked
(`--manual-schedules`), and the sweep's `TaskDueSoon` events are watched on the bus.

The notifications consumer turns these events into the owner's notifications: after
`fire_schedules()`, the owner's `GET /notifications` holds the reminded tasks, and only they,
once each however often the sweep sends them.
"""

from __future__ import annotations

import time as time_module
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from local_platform.process import Platform, start_platform
from tests.e2e.bus_tap import BusTap
from tests.e2e.polling import eventually

AFTER_MIDNIGHT = timedelta(minutes=5)


@pytest.fixture(scope="module")
def tomorrow_night() -> Iterator[Platform]:
    """A platform whose clock reads 00:05 UTC tomorrow (the machine's day after today): its
    sweep reminds of the tasks due the day after tomorrow, whose reminders became due at
    midnight."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), UTC)
    running = start_platform(
        "--no-throttle", "--manual-schedules", clock_offset=midnight + AFTER_MIDNIGHT - now
    )
    yield running
    assert running.stop() == 0, "\n".join(running.output)


def platform_today(platform: Platform) -> date:
    return (datetime.now(UTC) + platform.clock_offset).date()


def create(client: httpx.Client, title: str, due: date | None) -> dict[str, Any]:
    body: dict[str, Any] = {"title": title}
    if due is not None:
        body["dueDate"] = due.isoformat()
    response = client.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 204), response.text
    return dict(response.json()) if response.content else {}


def reminded(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["detail"]["taskId"]: event for event in events}


def reminders_in_inbox(client: httpx.Client) -> list[dict[str, Any]]:
    items = client.get("/notifications", params={"limit": "100"}).json()["items"]
    return [n for n in items if n["kind"] == "due_soon"]


class TestDueDateReminders:
    def test_open_tasks_due_tomorrow_are_reminded_and_no_others(
        self, tomorrow_night: Platform
    ) -> None:
        platform = tomorrow_night
        due = platform_today(platform) + timedelta(days=1)
        owner = f"rita-{uuid.uuid4().hex[:6]}"
        tap = BusTap(platform, ("TaskDueSoon",))
        with platform.client(owner) as client:
            pending = create(client, "pending, due tomorrow", due)
            started = create(client, "started, due tomorrow", due)
            ok(client.patch(f"/tasks/{started['id']}", json={"status": "in_progress"}))
            completed = create(client, "completed", due)
            ok(client.patch(f"/tasks/{completed['id']}", json={"status": "in_progress"}))
            ok(client.post(f"/tasks/{completed['id']}/complete"))
            moved = create(client, "moved to later", due)
            later = (due + timedelta(days=3)).isoformat()
            ok(client.patch(f"/tasks/{moved['id']}", json={"dueDate": later}))
            cleared = create(client, "due date cleared", due)
            ok(client.patch(f"/tasks/{cleared['id']}", json={"dueDate": None}))
            deleted = create(client, "deleted", due)
            ok(client.delete(f"/tasks/{deleted['id']}"))
            create(client, "due the day after", due + timedelta(days=1))
            create(client, "no due date", None)

        (line,) = platform.fire_schedules()
        assert "reminders ← Scheduled Event" in line

        events = reminded(tap.received(at_least=2))
        assert set(events) == {pending["id"], started["id"]}
        for task_id, event in events.items():
            assert (event["source"], event["detail-type"]) == ("tasks", "TaskDueSoon")
            detail = event["detail"]
            assert detail["eventId"] == f"{task_id}:{due.isoformat()}:TaskDueSoon"
            assert (detail["dueDate"], detail["ownerId"]) == (due.isoformat(), owner)
            assert detail["task"]["status"] in ("pending", "in_progress")
            assert detail["task"]["dueDate"] == due.isoformat()

        with platform.client(owner) as client:
            inbox = eventually(
                lambda: len(reminders_in_inbox(client)) >= 2 and reminders_in_inbox(client), 20
            )
            assert inbox, "no reminder reached the owner's inbox"
            assert sorted(n["taskId"] for n in inbox) == sorted([pending["id"], started["id"]])
            assert {(n["dueDate"], n["recipient"]) for n in inbox} == {
                (due.isoformat(), f"user:{owner}")
            }

    def test_a_second_run_sends_the_same_reminders_again_with_the_same_ids(
        self, tomorrow_night: Platform
    ) -> None:
        """Repeats are harmless: the consumers are idempotent by the event id."""
        platform = tomorrow_night
        due = platform_today(platform) + timedelta(days=1)
        sam = f"sam-{uuid.uuid4().hex[:6]}"
        with platform.client(sam) as client:
            task = create(client, "twice", due)
        tap = BusTap(platform, ("TaskDueSoon",))
        platform.fire_schedules()
        first = [e["detail"]["eventId"] for e in tap.received(at_least=1)]
        platform.fire_schedules()
        second = [e["detail"]["eventId"] for e in tap.received(at_least=1)]
        mine = f"{task['id']}:{due.isoformat()}:TaskDueSoon"
        assert mine in first
        assert mine in second
        with platform.client(sam) as client:
            assert eventually(lambda: reminders_in_inbox(client), 20)
            time_module.sleep(2)  # both deliveries have been handled by now, or are late
            [reminder] = reminders_in_inbox(client)  # two events, one notification
            assert reminder["taskId"] == task["id"]
