"""The notifications consumer (`handlers.notifications.notify`), with EventBridge-shaped events
through the manifest's own rule, and in-memory adapters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from handlers import bootstrap, notifications
from local_platform.bus import matches
from local_platform.lambda_runtime import handler_context
from stack.manifest import NOTIFICATIONS
from taskcore.commands import CreateTask
from taskcore.events import TaskDueSoon
from taskcore.model import Decision, Priority, Status
from taskcore.serialization import envelope
from taskcore.testing import Fakes, in_memory_service, principal
from tests.handlers.bus import bus_event

ALICE, BOB = principal("alice"), principal("bob", "approvers")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    fakes = in_memory_service()
    monkeypatch.setattr(bootstrap, "inbox", lambda: fakes.inbox)
    monkeypatch.setattr(bootstrap, "notification_channel", lambda: fakes.channel)
    monkeypatch.setattr(bootstrap, "clock", lambda: fakes.clock)
    return fakes


def routed(fakes: Fakes) -> list[dict[str, Any]]:
    """The events so far that the manifest's rule delivers to the consumer."""
    [rule] = NOTIFICATIONS.rules
    events = [bus_event(envelope(e)) for e in fakes.tasks.events()]
    return [e for e in events if matches(rule.pattern, e)]


def notify(event: dict[str, Any]) -> dict[str, Any]:
    return notifications.notify(event, handler_context(NOTIFICATIONS))


def test_a_request_and_its_decision_notify_the_approvers_then_the_owner(fakes: Fakes) -> None:
    task = fakes.service.create_task(ALICE, CreateTask(title="Buy", priority=Priority.HIGH)).task
    fakes.service.create_task(ALICE, CreateTask(title="Small"))  # its events are not routed
    fakes.service.decide_approval(BOB, task.id, Decision.REJECT)
    events = routed(fakes)
    assert [e["detail-type"] for e in events] == ["ApprovalRequested", "ApprovalDecided"]
    results = [notify(e) for e in events]
    assert [r["published"] for r in results] == [1, 1]
    recipients = [(n.recipient, n.kind.value) for n in fakes.channel.published]
    assert recipients == [
        ("group:approvers", "approval_requested"),
        ("user:alice", "approval_decided"),
    ]
    assert fakes.channel.published[1].outcome is not None
    assert fakes.channel.published[1].outcome.value == "rejected"


def test_a_redelivered_event_notifies_nobody_again(fakes: Fakes) -> None:
    fakes.service.create_task(ALICE, CreateTask(title="Buy", priority=Priority.CRITICAL))
    [requested] = routed(fakes)
    first, again = notify(requested), notify(requested)
    assert (first["published"], again["published"]) == (1, 0)
    assert first["notifications"] == again["notifications"]
    assert len(fakes.inbox.stored) == len(fakes.channel.published) == 1


def test_a_topic_that_is_down_fails_the_invocation_and_its_retry_publishes(fakes: Fakes) -> None:
    fakes.service.create_task(ALICE, CreateTask(title="Buy", priority=Priority.HIGH))
    [requested] = routed(fakes)
    fakes.channel.fail = True
    with pytest.raises(ConnectionError):
        notify(requested)  # Lambda and EventBridge retry it, then the rule's DLQ keeps it
    fakes.channel.fail = False
    assert notify(requested)["published"] == 1
    assert len(fakes.channel.published) == 1


def test_a_reminder_reaches_the_owner_unless_the_task_moved_on(fakes: Fakes) -> None:
    tomorrow = fakes.clock.now().date() + timedelta(days=1)
    due = fakes.service.create_task(ALICE, CreateTask(title="Due", due_date=tomorrow)).task
    done = fakes.service.create_task(ALICE, CreateTask(title="Done", due_date=tomorrow)).task
    fakes.service.transition(ALICE, done.id, Status.IN_PROGRESS)
    done = fakes.service.transition(ALICE, done.id, Status.COMPLETED)
    [rule] = NOTIFICATIONS.rules
    for task in (due, done):
        event = bus_event(envelope(TaskDueSoon.for_task(task, tomorrow, fakes.clock.now())))
        assert matches(rule.pattern, event)
        notify(event)
    [reminder] = fakes.channel.published
    assert (reminder.task_id, reminder.kind.value, reminder.due_date) == (
        due.id,
        "due_soon",
        tomorrow,
    )
