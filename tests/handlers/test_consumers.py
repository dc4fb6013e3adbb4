"""Event consumers and workflow steps, with EventBridge-shaped events and in-memory adapters."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers import approvals, bootstrap, consumers
from local_platform.bus import matches
from local_platform.lambda_runtime import handler_context
from stack.manifest import (
    APPROVAL_DECIDED,
    APPROVAL_TIMEOUT,
    APPROVAL_TOKEN,
    ARCHIVER,
    ATTACHMENT_CLEANUP,
    COMPLETION_METRICS,
    STATS,
)
from taskcore.commands import AddAttachment, CreateTask
from taskcore.events import TaskArchived
from taskcore.model import Decision, Priority, Status
from taskcore.serialization import envelope, task_to_ndjson
from taskcore.testing import Fakes, InMemoryEventMarkers, in_memory_service, principal
from tests.handlers.bus import bus_event

ALICE, BOB = principal("alice"), principal("bob", "approvers")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    fakes = in_memory_service()
    markers = InMemoryEventMarkers()
    monkeypatch.setattr(bootstrap, "stats_store", lambda: fakes.stats)
    monkeypatch.setattr(bootstrap, "attachment_store", lambda: fakes.attachments)
    monkeypatch.setattr(bootstrap, "approval_workflow", lambda: fakes.workflow)
    monkeypatch.setattr(bootstrap, "task_repository", lambda: fakes.tasks)
    monkeypatch.setattr(bootstrap, "clock", lambda: fakes.clock)
    monkeypatch.setattr(bootstrap, "event_markers", lambda: markers)
    monkeypatch.setattr(bootstrap, "archive_service", lambda: fakes.archive_service)
    return fakes


def delivered(fakes: Fakes) -> list[dict[str, Any]]:
    return [bus_event(envelope(e)) for e in fakes.tasks.events()]


def completed_task(fakes: Fakes) -> None:
    task = fakes.service.create_task(ALICE, CreateTask(title="t")).task
    fakes.service.transition(ALICE, task.id, Status.IN_PROGRESS)
    fakes.clock.advance(timedelta(hours=2))
    fakes.service.transition(ALICE, task.id, Status.COMPLETED)


class TestStats:
    def test_each_event_counts_once(self, fakes: Fakes) -> None:
        completed_task(fakes)
        # What the stats rule delivers: created, started, completed (the completion's
        # TaskCompleted is not delivered: its TaskUpdated carries the whole change).
        events = [e for e in delivered(fakes) if matches(STATS.rules[0].pattern, e)]
        assert [e["detail-type"] for e in events] == ["TaskCreated", "TaskUpdated", "TaskUpdated"]
        first = [consumers.record_stats(e, handler_context(STATS))["applied"] for e in events]
        again = [consumers.record_stats(e, handler_context(STATS))["applied"] for e in events]
        assert first == [True, True, True]
        assert again == [False] * 3
        stats = fakes.stats.get(ALICE.user_id)
        assert stats.by_status == {"pending": 0, "in_progress": 0, "completed": 1}
        assert stats.completed_in_week_of(fakes.clock.now()) == 1


class TestAttachmentCleanup:
    def test_removes_the_deleted_tasks_files(self, fakes: Fakes) -> None:
        task = fakes.service.create_task(ALICE, CreateTask(title="t")).task
        new = fakes.service.add_attachment(
            ALICE, task.id, AddAttachment(filename="a.txt", content_type="text/plain", size=1)
        )
        fakes.attachments.upload(new.upload.fields["key"], "text/plain", b"x")
        fakes.attachments.objects["alice/other/a2"] = b"y"
        fakes.service.delete_task(ALICE, task.id)
        deleted = delivered(fakes)[-1]
        assert (
            consumers.remove_attachments(deleted, handler_context(ATTACHMENT_CLEANUP))["removed"]
            == 1
        )
        assert (
            consumers.remove_attachments(deleted, handler_context(ATTACHMENT_CLEANUP))["removed"]
            == 0
        )
        assert list(fakes.attachments.objects) == ["alice/other/a2"]

    def test_logs_with_the_event_id_as_correlation_id(
        self, fakes: Fakes, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        task = fakes.service.create_task(ALICE, CreateTask(title="t")).task
        fakes.service.delete_task(ALICE, task.id)
        deleted = delivered(fakes)[-1]
        stream = io.StringIO()
        monkeypatch.setattr(consumers.logger.registered_handler, "stream", stream)
        consumers.remove_attachments(deleted, handler_context(ATTACHMENT_CLEANUP))
        records = [json.loads(line) for line in stream.getvalue().splitlines()]
        removed = next(r for r in records if r["message"] == "attachments removed")
        assert removed["correlation_id"] == deleted["id"]  # what the console shows for it


class TestCompletionMetrics:
    def test_emitted_once_per_event(self, fakes: Fakes, capsys: pytest.CaptureFixture[str]) -> None:
        completed_task(fakes)
        events = delivered(fakes)
        results = [
            consumers.completion_metrics(e, handler_context(COMPLETION_METRICS))["emitted"]
            for e in events
        ]
        assert results == [False, False, False, True]
        assert (
            consumers.completion_metrics(events[-1], handler_context(COMPLETION_METRICS))["emitted"]
            is False
        )
        emf = [
            json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
        ]
        (metric,) = [m for m in emf if "TasksCompleted" in m]
        assert metric["TasksCompleted"] == [1.0]
        assert metric["TimeToComplete"] == [7200.0]
        assert metric["priority"] == "medium"


class TestArchiver:
    def test_an_archived_task_is_written_to_its_month_once(
        self, fakes: Fakes, capsys: pytest.CaptureFixture[str]
    ) -> None:
        completed_task(fakes)
        (task,) = fakes.tasks.tasks.values()
        archived = bus_event(envelope(TaskArchived.make(task, fakes.clock.now())))
        context = handler_context(ARCHIVER)
        assert consumers.archive_task(archived, context) == {
            "eventId": f"{task.id}:3:TaskArchived",
            "archived": True,
        }
        assert consumers.archive_task(archived, context)["archived"] is False  # redelivered
        assert fakes.archive.objects == {"archive/alice/2030-01.ndjson": task_to_ndjson(task)}
        emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
        assert [m["TasksArchived"] for m in emf if "TasksArchived" in m] == [[1.0]]

    def test_any_other_event_archives_nothing(self, fakes: Fakes) -> None:
        completed_task(fakes)
        for event in delivered(fakes):
            assert consumers.archive_task(event, handler_context(ARCHIVER))["archived"] is False
        assert fakes.archive.objects == {}


class TestWorkflowSteps:
    def test_token_then_decision_releases_once(self, fakes: Fakes) -> None:
        task = fakes.service.create_task(ALICE, CreateTask(title="t", priority=Priority.HIGH)).task
        token_event = {
            "detail-type": "ApprovalTokenIssued",
            "source": "tasks.workflow",
            "detail": {"taskId": task.id, "ownerId": "alice", "taskToken": "tok"},
        }
        assert (
            approvals.token_issued(token_event, handler_context(APPROVAL_TOKEN))["released"]
            is False
        )
        fakes.service.decide_approval(BOB, task.id, Decision.APPROVE)
        results = [
            approvals.decided(e, handler_context(APPROVAL_DECIDED))["released"]
            for e in delivered(fakes)
        ]
        assert results == [False, False, False, True]
        assert [token for token, _ in fakes.workflow.released] == ["tok"]

    def test_timeout_expires_and_cancels(self, fakes: Fakes) -> None:
        task = fakes.service.create_task(ALICE, CreateTask(title="t", priority=Priority.HIGH)).task
        timeout = {
            "detail-type": "ApprovalTimedOut",
            "source": "tasks.workflow",
            "detail": {"taskId": task.id, "ownerId": "alice"},
        }
        assert approvals.timed_out(timeout, handler_context(APPROVAL_TIMEOUT))["expired"] is True
        stored = fakes.tasks.get(ALICE.user_id, task.id)
        assert stored is not None
        assert (stored.approval, stored.status) == ("expired", "cancelled")
        assert approvals.timed_out(timeout, handler_context(APPROVAL_TIMEOUT))["expired"] is False


@pytest.mark.parametrize("module", ["handlers.notifications", "handlers.approvals"])
def test_other_bus_consumers_do_not_import_the_consumers_module(module: str) -> None:
    """Their cold start is their own: not the four consumers' module and the archiver's imports."""
    code = f"import sys, {module}\nprint('handlers.consumers' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**os.environ, "TABLE_NAME": "t"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"
