"""The local platform's scheduled rules (`local_platform.schedules`): they fire at the times
their expressions name in the platform's clock (the machine's, shifted), or when asked, and are
delivered as the bus delivers (retries, then a dead letter)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local_platform.bus import LocalBus
from local_platform.schedules import LocalScheduler, parse_offset
from stack import schedules
from stack.manifest import REMINDERS, Function, Schedule
from tests.e2e.fake_aws import FakeSqs, FakeStepFunctions

SOON = Function(
    name="soon",
    handler="x:y",
    description="",
    schedules=(Schedule(name="every-minute", expression="cron(* * * * ? *)"),),
)


class Deliveries:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.arrived = threading.Event()

    def __call__(self, function: Function, schedule: Schedule, event: dict[str, Any]) -> None:
        self.events.append((function.name, event))
        self.arrived.set()


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("0", timedelta(0)),
        ("36h", timedelta(hours=36)),
        ("2d", timedelta(days=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("-90m", -timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_clock_offsets(text: str, offset: timedelta) -> None:
    assert parse_offset(text) == offset


@pytest.mark.parametrize("text", ["", "36", "1.5h", "2w", "h", "+1h", "1h-2m"])
def test_malformed_clock_offsets_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an offset"):
        parse_offset(text)


def test_asked_every_schedule_fires_once_now_in_the_platforms_clock() -> None:
    delivered = Deliveries()
    machine = datetime(2030, 1, 3, 22, 30, 12, 345678, tzinfo=UTC)
    scheduler = LocalScheduler(
        functions=[REMINDERS, SOON],
        deliver=delivered,
        region="us-east-1",
        clock_offset=timedelta(hours=36),
        manual=True,
        machine_now=lambda: machine,
    ).start()
    try:
        scheduler.fire_all()
        deadline = time.monotonic() + 10
        while len(delivered.events) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        scheduler.stop()
    assert [(name, event["time"]) for name, event in delivered.events] == [
        ("reminders", "2030-01-05T10:30:12Z"),
        ("soon", "2030-01-05T10:30:12Z"),
    ]
    assert delivered.events[0][1]["detail-type"] == "Scheduled Event"
    assert scheduler.fired == [
        ("due-date-reminders", "2030-01-05T10:30:12Z"),
        ("every-minute", "2030-01-05T10:30:12Z"),
    ]


def test_manual_schedules_never_fire_on_their_own() -> None:
    delivered = Deliveries()
    just_before = datetime(2030, 1, 4, 0, 14, 59, 900000, tzinfo=UTC)
    started = time.monotonic()
    scheduler = LocalScheduler(
        functions=[SOON],
        deliver=delivered,
        region="us-east-1",
        manual=True,
        machine_now=lambda: just_before + timedelta(seconds=time.monotonic() - started),
    ).start()
    try:
        assert not delivered.arrived.wait(1.5)
    finally:
        scheduler.stop()


def test_a_schedule_fires_at_the_minute_it_names_in_the_platforms_clock() -> None:
    """The platform's clock 0.3 s before 00:15: the sweep's rule fires at 00:15:00 then."""
    delivered = Deliveries()
    just_before = datetime(2030, 1, 4, 0, 14, 59, 700000, tzinfo=UTC)
    started = time.monotonic()
    scheduler = LocalScheduler(
        functions=[REMINDERS],
        deliver=delivered,
        region="us-east-1",
        clock_offset=timedelta(days=-1),
        machine_now=lambda: just_before + timedelta(days=1, seconds=time.monotonic() - started),
    ).start()
    try:
        assert delivered.arrived.wait(10), "the schedule did not fire"
    finally:
        scheduler.stop()
    ((name, event),) = delivered.events
    assert (name, event["time"]) == ("reminders", "2030-01-04T00:15:00Z")


def test_a_failing_delivery_does_not_stop_the_scheduler() -> None:
    calls: list[str] = []

    def deliver(function: Function, schedule: Schedule, event: dict[str, Any]) -> None:
        calls.append(event["time"])
        raise RuntimeError("the function's sandbox is gone")

    scheduler = LocalScheduler(
        functions=[SOON], deliver=deliver, region="us-east-1", manual=True
    ).start()
    try:
        for _ in range(2):
            scheduler.fire_all()
            deadline = time.monotonic() + 10
            wanted = len(calls) + 1
            while len(calls) < wanted and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        scheduler.stop()
    assert len(calls) == 2


def test_a_schedule_the_platform_cannot_compute_is_refused_at_start() -> None:
    last_day = Function(
        name="monthly",
        handler="x:y",
        description="",
        schedules=(Schedule(name="last-day", expression="cron(0 0 L * ? *)"),),
    )
    with pytest.raises(schedules.Unsupported):
        LocalScheduler(functions=[last_day], deliver=Deliveries(), region="us-east-1")


def test_the_bus_retries_a_scheduled_delivery_then_dead_letters_it() -> None:
    attempts: list[str] = []

    def failing(function: Function, event: dict[str, Any]) -> None:
        attempts.append(function.name)
        raise RuntimeError("sweep failed")

    bus = LocalBus(
        sqs=FakeSqs([]),
        stepfunctions=FakeStepFunctions(),
        queue_url="q",
        functions=[],
        workflows={},
        invoke=failing,
        retry_delays_s=(0, 0),
    )
    (schedule,) = REMINDERS.schedules
    event = {"detail-type": "Scheduled Event", "time": "2030-01-04T00:00:00Z"}
    bus.deliver_scheduled(REMINDERS, schedule, event)
    while bus.retry_due():
        pass
    assert attempts == ["reminders"] * 3
    assert bus.dead_letters == [("due-date-reminders", event)]
