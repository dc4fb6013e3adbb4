from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import attrs
import pytest

from taskcore.events import (
    CHANGE_FIELDS,
    EVENT_TYPES,
    ApprovalDecided,
    ApprovalRequested,
    Event,
    TaskArchived,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskDueSoon,
    TaskUpdated,
    changed_fields,
    derive_events,
)
from taskcore.model import (
    Approval,
    Attachment,
    AttachmentId,
    Decision,
    Priority,
    Status,
    Task,
    UserId,
)
from taskcore.testing import build_task

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
AT = T0 + timedelta(hours=2)
ALICE = UserId("alice")
BOB = UserId("bob")
TASK_ID = "01JD0000000000000000000001"


def kinds(events: list[Event]) -> list[type[Event]]:
    return [type(e) for e in events]


def started(task: Task) -> Task:
    return task.transition_to(Status.IN_PROGRESS, T1)


class TestCreate:
    @pytest.mark.parametrize("priority", [Priority.LOW, Priority.MEDIUM])
    def test_a_task_that_needs_no_approval_is_just_created(self, priority: Priority) -> None:
        task = build_task(priority=priority)
        events = derive_events(None, task, AT)
        assert kinds(events) == [TaskCreated]
        (created,) = events
        assert created.task is task
        assert created.occurred_at == AT
        assert (created.owner_id, created.task_id, created.version) == (ALICE, TASK_ID, 1)

    @pytest.mark.parametrize("priority", [Priority.HIGH, Priority.CRITICAL])
    def test_a_task_that_needs_approval_also_requests_it(self, priority: Priority) -> None:
        task = build_task(priority=priority)
        events = derive_events(None, task, AT)
        assert kinds(events) == [TaskCreated, ApprovalRequested]
        assert all(e.task is task for e in events)


class TestDelete:
    def test_a_deletion_carries_the_old_image(self) -> None:
        task = started(build_task())
        events = derive_events(task, None, AT)
        assert kinds(events) == [TaskDeleted]
        assert events[0].task is task
        assert events[0].version == 2

    def test_nothing_to_nothing_means_no_event(self) -> None:
        assert derive_events(None, None, AT) == []
        assert derive_events(None, None, AT, expired=True) == []


class TestArchive:
    def test_an_expiry_archives_the_task_as_it_was_last_stored(self) -> None:
        done = started(build_task()).transition_to(Status.COMPLETED, AT)
        events = derive_events(done, None, AT + timedelta(days=8), expired=True)
        assert kinds(events) == [TaskArchived]
        (archived,) = events
        assert archived.task is done
        assert archived.event_id == f"{TASK_ID}:3:TaskArchived"
        assert archived.occurred_at == AT + timedelta(days=8)

    def test_only_a_removal_can_be_an_expiry(self) -> None:
        task = build_task()
        assert kinds(derive_events(None, task, AT, expired=True)) == [TaskCreated]
        assert kinds(derive_events(task, started(task), AT, expired=True)) == [TaskUpdated]

    def test_a_user_s_deletion_is_still_a_deletion(self) -> None:
        done = started(build_task()).transition_to(Status.COMPLETED, AT)
        assert kinds(derive_events(done, None, AT)) == [TaskDeleted]


class TestNoChange:
    def test_the_same_image_means_no_event(self) -> None:
        task = build_task()
        assert derive_events(task, task, AT) == []

    def test_a_no_op_edit_means_no_event(self) -> None:
        task = build_task()
        assert derive_events(task, task.edit(T1, title=task.title), AT) == []

    def test_a_new_version_with_no_tracked_change_means_no_event(self) -> None:
        task = build_task()
        bumped = attrs.evolve(task, version=2, updated_at=T1)
        assert derive_events(task, bumped, AT) == []


class TestEdit:
    def test_an_edit_lists_the_changed_fields_in_a_fixed_order(self) -> None:
        task = build_task()
        edited = task.edit(
            T1, due_date=date(2030, 3, 1), tags=["a"], title="Rewrite", description="d"
        )
        events = derive_events(task, edited, AT)
        assert kinds(events) == [TaskUpdated]
        (update,) = events
        assert isinstance(update, TaskUpdated)
        assert update.changed == ("title", "description", "tags", "due_date")
        assert update.previous is task
        assert update.task is edited
        assert update.version == 2

    def test_an_attachment_is_a_change(self) -> None:
        task = build_task()
        attachment = Attachment(
            id=AttachmentId("A1"),
            filename="a.pdf",
            content_type="application/pdf",
            size=1,
            created_at=T1,
        )
        events = derive_events(task, task.add_attachment(attachment, T1), AT)
        assert kinds(events) == [TaskUpdated]
        assert isinstance(events[0], TaskUpdated)
        assert events[0].changed == ("attachments",)

    def test_changed_fields_cover_every_tracked_field(self) -> None:
        assert CHANGE_FIELDS == (
            "title",
            "description",
            "priority",
            "tags",
            "due_date",
            "status",
            "approval",
            "attachments",
        )

    def test_changed_fields_ignores_bookkeeping(self) -> None:
        task = build_task()
        assert changed_fields(task, attrs.evolve(task, version=5, updated_at=T1)) == ()

    def test_editing_a_completed_task_does_not_complete_it_again(self) -> None:
        done = started(build_task()).transition_to(Status.COMPLETED, T1)
        edited = done.edit(AT, title="Renamed")
        events = derive_events(done, edited, AT)
        assert kinds(events) == [TaskUpdated]

    def test_editing_a_task_awaiting_approval_does_not_request_it_again(self) -> None:
        task = build_task(priority=Priority.HIGH)
        events = derive_events(task, task.edit(T1, title="Renamed"), AT)
        assert kinds(events) == [TaskUpdated]


class TestStatusChanges:
    def test_starting_is_an_update_of_the_status(self) -> None:
        task = build_task()
        events = derive_events(task, started(task), AT)
        assert kinds(events) == [TaskUpdated]
        assert isinstance(events[0], TaskUpdated)
        assert events[0].changed == ("status",)

    def test_completing_is_an_update_and_a_completion(self) -> None:
        task = started(build_task())
        done = task.transition_to(Status.COMPLETED, AT)
        events = derive_events(task, done, AT)
        assert kinds(events) == [TaskUpdated, TaskCompleted]
        assert all(e.task is done and e.version == 3 for e in events)

    def test_reopening_is_only_an_update(self) -> None:
        done = started(build_task()).transition_to(Status.COMPLETED, T1)
        reopened = done.transition_to(Status.IN_PROGRESS, AT)
        events = derive_events(done, reopened, AT)
        assert kinds(events) == [TaskUpdated]
        assert isinstance(events[0], TaskUpdated)
        assert events[0].changed == ("status",)

    def test_completing_again_after_reopening_is_a_new_completion(self) -> None:
        done = started(build_task()).transition_to(Status.COMPLETED, T1)
        reopened = done.transition_to(Status.IN_PROGRESS, T1)
        again = reopened.transition_to(Status.COMPLETED, AT)
        events = derive_events(reopened, again, AT)
        assert kinds(events) == [TaskUpdated, TaskCompleted]
        assert events[1].event_id == f"{TASK_ID}:5:TaskCompleted"


class TestApproval:
    def test_raising_the_priority_of_a_pending_task_requests_approval(self) -> None:
        task = build_task(priority=Priority.LOW)
        raised = task.edit(T1, priority=Priority.HIGH)
        events = derive_events(task, raised, AT)
        assert kinds(events) == [TaskUpdated, ApprovalRequested]
        assert isinstance(events[0], TaskUpdated)
        assert events[0].changed == ("priority", "approval")

    def test_raising_the_priority_of_a_started_task_requests_nothing(self) -> None:
        task = started(build_task(priority=Priority.LOW))
        events = derive_events(task, task.edit(AT, priority=Priority.CRITICAL), AT)
        assert kinds(events) == [TaskUpdated]

    @pytest.mark.parametrize(
        ("decide", "outcome", "changed"),
        [
            (lambda t: t.decide(Decision.APPROVE, BOB, T1), Approval.APPROVED, ("approval",)),
            (
                lambda t: t.decide(Decision.REJECT, BOB, T1),
                Approval.REJECTED,
                ("status", "approval"),
            ),
            (lambda t: t.expire_approval(T1), Approval.EXPIRED, ("status", "approval")),
        ],
    )
    def test_a_decision_is_an_update_and_carries_its_outcome(
        self, decide: object, outcome: Approval, changed: tuple[str, ...]
    ) -> None:
        task = build_task(priority=Priority.HIGH)
        assert callable(decide)
        decided: Task = decide(task)
        events = derive_events(task, decided, AT)
        assert kinds(events) == [TaskUpdated, ApprovalDecided]
        update, decision = events
        assert isinstance(update, TaskUpdated)
        assert update.changed == changed
        assert isinstance(decision, ApprovalDecided)
        assert decision.outcome is outcome
        assert decision.task is decided


class TestEventIds:
    def test_an_id_is_task_version_and_kind(self) -> None:
        task = build_task(priority=Priority.HIGH)
        assert [e.event_id for e in derive_events(None, task, AT)] == [
            f"{TASK_ID}:1:TaskCreated",
            f"{TASK_ID}:1:ApprovalRequested",
        ]
        rejected = task.decide(Decision.REJECT, BOB, T1)
        assert [e.event_id for e in derive_events(task, rejected, AT)] == [
            f"{TASK_ID}:2:TaskUpdated",
            f"{TASK_ID}:2:ApprovalDecided",
        ]
        assert [e.event_id for e in derive_events(rejected, None, AT)] == [
            f"{TASK_ID}:2:TaskDeleted"
        ]

    def test_deriving_again_gives_the_same_events(self) -> None:
        task = started(build_task())
        done = task.transition_to(Status.COMPLETED, AT)
        assert derive_events(task, done, AT) == derive_events(task, done, AT)

    def test_ids_do_not_depend_on_when_the_change_is_seen(self) -> None:
        task = build_task()
        first = derive_events(None, task, AT)
        redelivered = derive_events(None, task, AT + timedelta(days=1))
        assert [e.event_id for e in first] == [e.event_id for e in redelivered]
        assert first != redelivered  # occurred_at differs

    def test_every_kind_is_registered_by_name(self) -> None:
        expected = {
            "TaskCreated": TaskCreated,
            "TaskUpdated": TaskUpdated,
            "TaskCompleted": TaskCompleted,
            "TaskDeleted": TaskDeleted,
            "ApprovalRequested": ApprovalRequested,
            "ApprovalDecided": ApprovalDecided,
            "TaskDueSoon": TaskDueSoon,
            "TaskArchived": TaskArchived,
        }
        assert expected == EVENT_TYPES
        assert all(kind.kind == name for name, kind in EVENT_TYPES.items())


class TestTaskDueSoon:
    def test_its_id_names_the_due_date_not_the_version(self) -> None:
        task = build_task(due_date=date(2030, 1, 2))
        edited = task.edit(T1, title="Renamed")
        first = TaskDueSoon.for_task(task, date(2030, 1, 2), occurred_at=T0)
        again = TaskDueSoon.for_task(edited, date(2030, 1, 2), occurred_at=T1)
        assert first.event_id == again.event_id == f"{TASK_ID}:2030-01-02:TaskDueSoon"
        assert (again.version, again.task, again.due_date) == (2, edited, date(2030, 1, 2))
        assert (again.owner_id, again.task_id, again.occurred_at) == (ALICE, TASK_ID, T1)

    def test_a_new_due_date_is_a_new_reminder(self) -> None:
        task = build_task(due_date=date(2030, 1, 2))
        moved = task.edit(T1, due_date=date(2030, 1, 9))
        first = TaskDueSoon.for_task(task, date(2030, 1, 2), occurred_at=T0)
        second = TaskDueSoon.for_task(moved, date(2030, 1, 9), occurred_at=T1)
        assert first.event_id != second.event_id

    def test_no_change_derives_one(self) -> None:
        task = build_task(due_date=date(2030, 1, 2))
        changes = [(None, task), (task, task.edit(T1, title="x")), (task, None)]
        derived = [e for old, new in changes for e in derive_events(old, new, AT)]
        assert not any(isinstance(e, TaskDueSoon) for e in derived)
