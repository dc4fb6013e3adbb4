"""The reminder sweep's handler, called with the scheduled event EventBridge (and the local
platform) sends, on the in-memory adapters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from handlers import bootstrap, reminders
from local_platform.bus import matches
from local_platform.lambda_runtime import handler_context
from local_platform.schedules import scheduled_event
from stack.manifest import (
    APPROVAL,
    APPROVAL_DECIDED,
    APPROVAL_TIMEOUT,
    APPROVAL_TOKEN,
    ATTACHMENT_CLEANUP,
    COMPLETION_METRICS,
    EXPORTS,
    REMINDERS,
    STATS,
)
from taskcore.commands import CreateTask
from taskcore.events import TaskDueSoon
from taskcore.model import Status
from taskcore.serialization import envelope, event_from_json
from taskcore.testing import (
    Fakes,
    InMemoryEventPublisher,
    build_task,
    in_memory_service,
    principal,
)
from tests.handlers.bus import bus_event

ALICE = principal("alice")
CREATED = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
DUE = date(2030, 1, 5)
DAY_BEFORE = datetime(2030, 1, 4, tzinfo=UTC)
(SCHEDULE,) = REMINDERS.schedules


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    fakes = in_memory_service()
    monkeypatch.setattr(bootstrap, "due_tasks", lambda: fakes.tasks)
    monkeypatch.setattr(bootstrap, "clock", lambda: fakes.clock)
    return fakes


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> InMemoryEventPublisher:
    publisher = InMemoryEventPublisher()
    monkeypatch.setattr(bootstrap, "event_publisher", lambda: publisher)
    return publisher


def run_at(moment: datetime) -> dict[str, object]:
    event = scheduled_event(SCHEDULE, moment, region="eu-west-1")
    return reminders.sweep(event, handler_context(REMINDERS))


def test_a_scheduled_run_reminds_of_the_tasks_due_the_next_day(
    fakes: Fakes, bus: InMemoryEventPublisher
) -> None:
    due = fakes.service.create_task(ALICE, CreateTask(title="due", due_date=DUE)).task
    fakes.service.create_task(ALICE, CreateTask(title="later", due_date=DUE + timedelta(1)))
    done = fakes.service.create_task(ALICE, CreateTask(title="done", due_date=DUE)).task
    fakes.service.transition(ALICE, done.id, Status.IN_PROGRESS)
    fakes.service.transition(ALICE, done.id, Status.COMPLETED)
    fakes.clock.current = DAY_BEFORE + timedelta(minutes=1)  # the run arrives a minute late
    assert run_at(DAY_BEFORE) == {
        "scheduledFor": "2030-01-04T00:00:00Z",
        "dueDate": "2030-01-05",
        "published": 1,
        "late": False,
    }
    (sent,) = bus.published
    event = event_from_json({**sent.detail, "type": sent.detail_type})
    assert isinstance(event, TaskDueSoon)
    assert (event.task_id, event.due_date, event.occurred_at) == (due.id, DUE, DAY_BEFORE)
    assert sent.event_id == f"{due.id}:2030-01-05:TaskDueSoon"


def test_the_run_is_as_of_the_events_time_not_the_clocks(
    fakes: Fakes, bus: InMemoryEventPublisher
) -> None:
    """A retried run, an hour late, finds what the original would have."""
    fakes.service.create_task(ALICE, CreateTask(title="due", due_date=DUE))
    fakes.clock.current = DAY_BEFORE + timedelta(hours=1)
    assert run_at(DAY_BEFORE)["published"] == 1
    assert run_at(DAY_BEFORE + timedelta(hours=1))["published"] == 0


def test_a_run_redriven_on_the_due_day_sends_nothing(
    fakes: Fakes, bus: InMemoryEventPublisher
) -> None:
    fakes.service.create_task(ALICE, CreateTask(title="due", due_date=DUE))
    fakes.clock.current = datetime(2030, 1, 5, 8, 0, tzinfo=UTC)
    assert run_at(DAY_BEFORE) == {
        "scheduledFor": "2030-01-04T00:00:00Z",
        "dueDate": "2030-01-05",
        "published": 0,
        "late": True,
    }
    assert bus.published == []


def test_an_event_whose_time_has_no_zone_fails_the_run(
    fakes: Fakes, bus: InMemoryEventPublisher
) -> None:
    event = scheduled_event(SCHEDULE, DAY_BEFORE, region="eu-west-1")
    event["time"] = "2030-01-04T00:00:00"
    with pytest.raises(ValueError, match="no time zone"):
        reminders.sweep(event, handler_context(REMINDERS))


def test_the_local_platform_sends_what_eventbridge_sends() -> None:
    """The shape of EventBridge's scheduled event (as aws-lambda-rust-runtime's fixture of it
    shows: version, id, detail-type, source, account, time, region, resources, detail)."""
    event = scheduled_event(SCHEDULE, DAY_BEFORE + timedelta(microseconds=5), region="eu-west-1")
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert (event["detail-type"], event["source"], event["detail"]) == (
        "Scheduled Event",
        "aws.events",
        {},
    )
    assert event["time"] == "2030-01-04T00:00:00Z"
    assert event["resources"] == [
        "arn:aws:events:eu-west-1:123456789012:rule/tasks-local-due-date-reminders"
    ]


def test_the_existing_consumers_and_the_workflow_take_no_reminder() -> None:
    """Stats, attachment clean-up, completion metrics, exports, the approval functions and the
    approval workflow match none of it; the notifications consumer (issue #17's other part) is
    the one meant to."""
    task = build_task(due_date=DUE)
    delivered = bus_event(envelope(TaskDueSoon.for_task(task, DUE, occurred_at=DAY_BEFORE)))
    others = [
        STATS,
        ATTACHMENT_CLEANUP,
        COMPLETION_METRICS,
        EXPORTS,
        APPROVAL_TOKEN,
        APPROVAL_DECIDED,
        APPROVAL_TIMEOUT,
    ]
    matched = [rule.name for f in others for rule in f.rules if matches(rule.pattern, delivered)]
    assert matched == []
    assert not matches(APPROVAL.started_by.pattern, delivered)
