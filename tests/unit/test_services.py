from __future__ import annotations

from datetime import date, timedelta
from typing import cast

import attrs
import pytest

from taskcore import services
from taskcore.commands import AddAttachment, CreateTask, TaskQuery, UpdateTask
from taskcore.errors import (
    ConcurrentModification,
    Conflict,
    Forbidden,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidHeader,
    InvalidQuery,
    InvalidTask,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
)
from taskcore.events import ApprovalDecided, TaskCompleted, TaskDeleted
from taskcore.model import Approval, Decision, Priority, Status, Task
from taskcore.ports import TaskRepository
from taskcore.serialization import converter, envelope
from taskcore.testing import (
    Fakes,
    FixedClock,
    InMemoryEventPublisher,
    in_memory_service,
    principal,
)

ALICE = principal("alice")
ANY_TIME = converter.unstructure(FixedClock().now())  # as the API writes a time
BOB = principal("bob", "approvers")
CAROL = principal("carol", "approvers")
MALLORY = principal("mallory")


@pytest.fixture
def fakes() -> Fakes:
    return in_memory_service()


def create(fakes: Fakes, title: str = "Task", who=ALICE, **kwargs: object) -> Task:
    return fakes.service.create_task(who, CreateTask(title=title, **kwargs)).task  # type: ignore[arg-type]


class TestCreateTask:
    def test_creates_pending_task_owned_by_principal(self, fakes: Fakes) -> None:
        result = fakes.service.create_task(ALICE, CreateTask(title="Report", tags=("w",)))
        assert result.created
        assert result.task.owner_id == "alice"
        assert fakes.tasks.get(ALICE.user_id, result.task.id) == result.task

    def test_ids_are_ulids(self, fakes: Fakes) -> None:
        assert services.is_ulid(create(fakes).id)

    def test_due_date_in_the_past_is_refused(self, fakes: Fakes) -> None:
        yesterday = fakes.clock.now().date() - timedelta(days=1)
        with pytest.raises(InvalidTask) as info:
            fakes.service.create_task(ALICE, CreateTask(title="x", due_date=yesterday))
        assert info.value.fields == ("dueDate",)
        assert fakes.tasks.tasks == {}

    def test_idempotent_replay_returns_the_same_task(self, fakes: Fakes) -> None:
        command = CreateTask(title="Once")
        first = fakes.service.create_task(ALICE, command, idempotency_key="key-1")
        fakes.clock.advance(timedelta(minutes=5))
        again = fakes.service.create_task(ALICE, command, idempotency_key="key-1")
        assert (first.created, again.created) == (True, False)
        assert again.task == first.task
        assert len(fakes.tasks.tasks) == 1

    def test_key_reused_with_another_body_is_a_conflict(self, fakes: Fakes) -> None:
        fakes.service.create_task(ALICE, CreateTask(title="One"), idempotency_key="k")
        with pytest.raises(IdempotencyKeyReused):
            fakes.service.create_task(ALICE, CreateTask(title="Two"), idempotency_key="k")

    def test_keys_are_per_user(self, fakes: Fakes) -> None:
        fakes.service.create_task(ALICE, CreateTask(title="One"), idempotency_key="k")
        other = fakes.service.create_task(MALLORY, CreateTask(title="One"), idempotency_key="k")
        assert other.created
        assert other.task.owner_id == "mallory"

    def test_expired_key_creates_anew(self, fakes: Fakes) -> None:
        command = CreateTask(title="Daily")
        first = fakes.service.create_task(ALICE, command, idempotency_key="daily")
        fakes.clock.advance(timedelta(hours=25))
        second = fakes.service.create_task(ALICE, command, idempotency_key="daily")
        assert second.created
        assert second.task.id != first.task.id

    @pytest.mark.parametrize("key", ["", "x" * 129, "spaces are bad", "ünïcode"])
    def test_bad_idempotency_keys(self, fakes: Fakes, key: str) -> None:
        with pytest.raises(InvalidHeader) as info:
            fakes.service.create_task(ALICE, CreateTask(title="x"), idempotency_key=key)
        assert info.value.fields == ("Idempotency-Key",)

    def test_duplicate_id_is_a_conflict(self, fakes: Fakes) -> None:
        task = create(fakes)
        with pytest.raises(Conflict):
            fakes.tasks.add(task)


class TestGetTask:
    def test_owner_gets_it(self, fakes: Fakes) -> None:
        task = create(fakes)
        assert fakes.service.get_task(ALICE, task.id) == task

    def test_other_users_get_not_found(self, fakes: Fakes) -> None:
        task = create(fakes)
        with pytest.raises(NotFound):
            fakes.service.get_task(MALLORY, task.id)
        with pytest.raises(NotFound):  # approvers see tasks only through the queue
            fakes.service.get_task(BOB, task.id)

    @pytest.mark.parametrize("task_id", ["", "nope", "../../etc", "Z" * 26, "0" * 27])
    def test_malformed_ids_are_not_found(self, fakes: Fakes, task_id: str) -> None:
        with pytest.raises(NotFound):
            fakes.service.get_task(ALICE, task_id)


class TestListTasks:
    def test_newest_first_and_only_own(self, fakes: Fakes) -> None:
        ids = [create(fakes, f"t{n}").id for n in range(3)]
        create(fakes, "not mine", who=MALLORY)
        page = fakes.service.list_tasks(ALICE, TaskQuery())
        assert [t.id for t in page.items] == list(reversed(ids))
        assert page.next_cursor is None

    def test_pages_through_without_gaps_or_duplicates(self, fakes: Fakes) -> None:
        ids = {create(fakes, f"t{n}").id for n in range(7)}
        seen: list[str] = []
        cursor = None
        while True:
            page = fakes.service.list_tasks(ALICE, TaskQuery(limit=3, cursor=cursor))
            seen.extend(t.id for t in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids)
        assert len(seen) == len(ids)

    def test_filters(self, fakes: Fakes) -> None:
        low = create(fakes, "low", priority=Priority.LOW)
        high = create(fakes, "high", priority=Priority.HIGH)
        fakes.service.transition(ALICE, low.id, Status.IN_PROGRESS)
        by_status = fakes.service.list_tasks(ALICE, TaskQuery(status=Status.IN_PROGRESS))
        assert [t.id for t in by_status.items] == [low.id]
        by_priority = fakes.service.list_tasks(ALICE, TaskQuery(priority=Priority.HIGH))
        assert [t.id for t in by_priority.items] == [high.id]
        both = TaskQuery(status=Status.PENDING, priority=Priority.LOW)
        assert fakes.service.list_tasks(ALICE, both).items == ()

    def test_cursor_of_another_user_is_refused(self, fakes: Fakes) -> None:
        for n in range(3):
            create(fakes, f"t{n}")
        cursor = fakes.service.list_tasks(ALICE, TaskQuery(limit=1)).next_cursor
        with pytest.raises(InvalidCursor):
            fakes.service.list_tasks(MALLORY, TaskQuery(limit=1, cursor=cursor))

    def test_cursor_of_another_filter_is_refused(self, fakes: Fakes) -> None:
        for n in range(3):
            create(fakes, f"t{n}")
        cursor = fakes.service.list_tasks(ALICE, TaskQuery(limit=1)).next_cursor
        query = TaskQuery(limit=1, cursor=cursor, status=Status.PENDING)
        with pytest.raises(InvalidCursor):
            fakes.service.list_tasks(ALICE, query)


class TestUpdateTask:
    def test_partial_update(self, fakes: Fakes) -> None:
        task = create(fakes, "Old", description="keep me")
        updated = fakes.service.update_task(ALICE, task.id, UpdateTask(title="New"))
        assert (updated.title, updated.description, updated.version) == ("New", "keep me", 2)
        assert fakes.service.get_task(ALICE, task.id) == updated

    def test_fields_and_status_in_one_request_make_one_version(self, fakes: Fakes) -> None:
        task = create(fakes)
        updated = fakes.service.update_task(
            ALICE, task.id, UpdateTask(title="Go", status=Status.IN_PROGRESS)
        )
        assert (updated.status, updated.version) == (Status.IN_PROGRESS, 2)

    def test_no_change_keeps_the_version(self, fakes: Fakes) -> None:
        task = create(fakes, "Same")
        assert fakes.service.update_task(ALICE, task.id, UpdateTask(title="Same")) == task
        assert fakes.tasks.changes[-1] == (None, task)

    def test_stale_expected_version_is_precondition_failed(self, fakes: Fakes) -> None:
        task = create(fakes)
        fakes.service.update_task(ALICE, task.id, UpdateTask(title="v2"))
        with pytest.raises(PreconditionFailed) as info:
            fakes.service.update_task(ALICE, task.id, UpdateTask(title="v3"), expected_version=1)
        assert (info.value.expected, info.value.actual) == (1, 2)
        assert fakes.service.get_task(ALICE, task.id).title == "v2"

    def test_matching_expected_version_applies(self, fakes: Fakes) -> None:
        task = create(fakes)
        updated = fakes.service.update_task(ALICE, task.id, UpdateTask(title="v2"), 1)
        assert updated.version == 2

    def test_illegal_transition_changes_nothing(self, fakes: Fakes) -> None:
        task = create(fakes, "Old")
        with pytest.raises(InvalidTransition):
            fakes.service.update_task(
                ALICE, task.id, UpdateTask(title="New", status=Status.COMPLETED)
            )
        assert fakes.service.get_task(ALICE, task.id) == task

    def test_due_date_checked_only_when_changed(self, fakes: Fakes) -> None:
        soon = fakes.clock.now().date() + timedelta(days=1)
        task = create(fakes, due_date=soon)
        fakes.clock.advance(timedelta(days=3))  # now overdue, still editable
        updated = fakes.service.update_task(ALICE, task.id, UpdateTask(title="still due"))
        assert updated.due_date == soon
        with pytest.raises(InvalidTask):
            fakes.service.update_task(ALICE, task.id, UpdateTask(due_date=date(2000, 1, 1)))
        cleared = fakes.service.update_task(ALICE, task.id, UpdateTask(due_date=None))
        assert cleared.due_date is None

    def test_other_users_cannot_update(self, fakes: Fakes) -> None:
        task = create(fakes)
        with pytest.raises(NotFound):
            fakes.service.update_task(MALLORY, task.id, UpdateTask(title="mine now"))


class TestTransitions:
    def test_start_complete_reopen(self, fakes: Fakes) -> None:
        task = create(fakes)
        for target in (Status.IN_PROGRESS, Status.COMPLETED, Status.IN_PROGRESS):
            task = fakes.service.transition(ALICE, task.id, target)
            assert task.status is target
        assert task.version == 4

    def test_complete_from_pending_is_refused(self, fakes: Fakes) -> None:
        task = create(fakes)
        with pytest.raises(InvalidTransition):
            fakes.service.transition(ALICE, task.id, Status.COMPLETED)

    def test_lost_race_without_if_match_is_a_conflict(self, fakes: Fakes) -> None:
        task = create(fakes)
        racing = fakes.tasks

        class Racer:
            """Commits another change between the service's read and its write."""

            def __getattr__(self, name: str) -> object:
                return getattr(racing, name)

            def save(self, task: Task, expected_version: int) -> None:
                racing.save(task.edit(task.updated_at, title="racer"), expected_version)
                racing.save(task, expected_version)

        service = attrs.evolve(fakes.service, tasks=cast(TaskRepository, Racer()))
        with pytest.raises(ConcurrentModification):
            service.transition(ALICE, task.id, Status.IN_PROGRESS)
        with pytest.raises(PreconditionFailed):
            service.transition(ALICE, task.id, Status.CANCELLED, expected_version=3)


class TestDeleteTask:
    def test_deletes(self, fakes: Fakes) -> None:
        task = create(fakes)
        fakes.service.delete_task(ALICE, task.id)
        with pytest.raises(NotFound):
            fakes.service.get_task(ALICE, task.id)
        assert isinstance(fakes.tasks.events()[-1], TaskDeleted)

    def test_stale_version(self, fakes: Fakes) -> None:
        task = create(fakes)
        fakes.service.update_task(ALICE, task.id, UpdateTask(title="v2"))
        with pytest.raises(PreconditionFailed):
            fakes.service.delete_task(ALICE, task.id, expected_version=1)
        assert fakes.service.delete_task(ALICE, task.id, expected_version=2).version == 2

    def test_lost_race(self, fakes: Fakes) -> None:
        task = create(fakes)
        racing = fakes.tasks

        class Racer:
            def __getattr__(self, name: str) -> object:
                return getattr(racing, name)

            def delete(self, task: Task) -> None:
                racing.save(task.edit(task.updated_at, title=f"racer {task.version}"), task.version)
                racing.delete(task)

        service = attrs.evolve(fakes.service, tasks=cast(TaskRepository, Racer()))
        with pytest.raises(ConcurrentModification):
            service.delete_task(ALICE, task.id)
        with pytest.raises(PreconditionFailed):
            service.delete_task(ALICE, task.id, expected_version=2)

    def test_not_found_for_others(self, fakes: Fakes) -> None:
        task = create(fakes)
        with pytest.raises(NotFound):
            fakes.service.delete_task(MALLORY, task.id)
        assert fakes.service.get_task(ALICE, task.id) == task


class TestApprovals:
    def test_queue_lists_tasks_awaiting_approval_but_not_own(self, fakes: Fakes) -> None:
        wanted = create(fakes, "needs ok", priority=Priority.HIGH)
        create(fakes, "low", priority=Priority.LOW)
        create(fakes, "bob's own", who=BOB, priority=Priority.CRITICAL)
        page = fakes.service.list_awaiting_approval(BOB, limit=10)
        assert [t.id for t in page.items] == [wanted.id]

    def test_queue_pages(self, fakes: Fakes) -> None:
        ids = [create(fakes, f"t{n}", priority=Priority.HIGH).id for n in range(3)]
        first = fakes.service.list_awaiting_approval(BOB, limit=2)
        second = fakes.service.list_awaiting_approval(BOB, limit=2, cursor=first.next_cursor)
        assert [t.id for t in first.items + second.items] == ids
        assert second.next_cursor is None
        with pytest.raises(InvalidCursor):  # bound to the approver it was issued to
            fakes.service.list_awaiting_approval(CAROL, limit=2, cursor=first.next_cursor)

    def test_queue_needs_approver_and_sane_limit(self, fakes: Fakes) -> None:
        with pytest.raises(Forbidden):
            fakes.service.list_awaiting_approval(ALICE, limit=10)
        with pytest.raises(InvalidQuery):
            fakes.service.list_awaiting_approval(BOB, limit=0)

    def test_approve_then_start(self, fakes: Fakes) -> None:
        task = create(fakes, priority=Priority.HIGH)
        with pytest.raises(InvalidTransition):
            fakes.service.transition(ALICE, task.id, Status.IN_PROGRESS)
        approved = fakes.service.decide_approval(BOB, task.id, Decision.APPROVE)
        assert (approved.approval, approved.approval_decided_by) == (Approval.APPROVED, "bob")
        assert fakes.service.transition(ALICE, task.id, Status.IN_PROGRESS).status is (
            Status.IN_PROGRESS
        )

    def test_reject_cancels(self, fakes: Fakes) -> None:
        task = create(fakes, priority=Priority.HIGH)
        rejected = fakes.service.decide_approval(BOB, task.id, Decision.REJECT)
        assert rejected.status is Status.CANCELLED

    def test_rules(self, fakes: Fakes) -> None:
        own = create(fakes, who=BOB, priority=Priority.HIGH)
        with pytest.raises(Forbidden):
            fakes.service.decide_approval(BOB, own.id, Decision.APPROVE)
        task = create(fakes, priority=Priority.HIGH)
        with pytest.raises(Forbidden):
            fakes.service.decide_approval(MALLORY, task.id, Decision.APPROVE)
        fakes.service.decide_approval(BOB, task.id, Decision.APPROVE)
        with pytest.raises(NotFound):  # decided: no longer in the queue
            fakes.service.decide_approval(CAROL, task.id, Decision.REJECT)
        low = create(fakes, priority=Priority.LOW)
        with pytest.raises(NotFound):
            fakes.service.decide_approval(BOB, low.id, Decision.APPROVE)
        with pytest.raises(NotFound):
            fakes.service.decide_approval(BOB, "not-an-id", Decision.APPROVE)

    def test_expiry(self, fakes: Fakes) -> None:
        task = create(fakes, priority=Priority.HIGH)
        expired = services.expire_approval(fakes.tasks, fakes.clock, task.owner_id, task.id)
        assert expired is not None
        assert (expired.approval, expired.status) == (Approval.EXPIRED, Status.CANCELLED)
        assert services.expire_approval(fakes.tasks, fakes.clock, task.owner_id, task.id) is None
        gone = create(fakes, priority=Priority.HIGH)
        fakes.service.delete_task(ALICE, gone.id)
        assert services.expire_approval(fakes.tasks, fakes.clock, gone.owner_id, gone.id) is None

    def test_decided_event_releases_a_waiting_workflow(self, fakes: Fakes) -> None:
        task = create(fakes, priority=Priority.HIGH)
        assert not fakes.workflow.token_issued(task.owner_id, task.id, "token-1")
        fakes.service.decide_approval(BOB, task.id, Decision.APPROVE)
        events = fakes.tasks.events()
        resumed = [services.resume_workflow(fakes.workflow, e) for e in events]
        assert resumed == [False, False, False, True]
        decided = next(e for e in events if isinstance(e, ApprovalDecided))
        assert fakes.workflow.resumed == [decided.task]
        ((token, output),) = fakes.workflow.released
        assert (token, output["approval"], output["decidedBy"]) == ("token-1", "approved", "bob")
        # redelivered: released once only
        assert not services.resume_workflow(fakes.workflow, decided)
        assert len(fakes.workflow.released) == 1

    def test_token_arriving_after_the_decision_releases_the_workflow(self, fakes: Fakes) -> None:
        task = create(fakes, priority=Priority.HIGH)
        fakes.service.decide_approval(BOB, task.id, Decision.REJECT)
        decided = next(e for e in fakes.tasks.events() if isinstance(e, ApprovalDecided))
        # no token yet: nothing to release
        assert not services.resume_workflow(fakes.workflow, decided)
        assert fakes.workflow.token_issued(task.owner_id, task.id, "late-token")
        assert fakes.workflow.released == [
            ("late-token", {"approval": "rejected", "decidedBy": "bob", "decidedAt": ANY_TIME})
        ]

    def test_expiry_does_not_resume_the_workflow(self, fakes: Fakes) -> None:
        task = create(fakes, priority=Priority.HIGH)
        fakes.workflow.token_issued(task.owner_id, task.id, "token")
        services.expire_approval(fakes.tasks, fakes.clock, task.owner_id, task.id)
        decided = next(e for e in fakes.tasks.events() if isinstance(e, ApprovalDecided))
        assert decided.outcome == "expired"
        assert not services.resume_workflow(fakes.workflow, decided)
        assert fakes.workflow.released == []


class TestAttachments:
    def test_presigned_upload_then_download(self, fakes: Fakes) -> None:
        task = create(fakes)
        new = fakes.service.add_attachment(
            ALICE, task.id, AddAttachment(filename="a.pdf", content_type="application/pdf", size=3)
        )
        assert new.task.version == 2
        key = new.upload.fields["key"]
        assert key == f"alice/{task.id}/{new.attachment.id}"
        fakes.attachments.upload(key, "application/pdf", b"pdf")
        url = fakes.service.attachment_download(ALICE, task.id, new.attachment.id)
        assert key in url
        assert "filename=a.pdf" in url

    def test_upload_must_match_the_policy(self, fakes: Fakes) -> None:
        task = create(fakes)
        new = fakes.service.add_attachment(
            ALICE, task.id, AddAttachment(filename="a.txt", content_type="text/plain", size=3)
        )
        with pytest.raises(PermissionError):
            fakes.attachments.upload(new.upload.fields["key"], "text/plain", b"too long")

    def test_unknown_attachment_and_other_users(self, fakes: Fakes) -> None:
        task = create(fakes)
        with pytest.raises(NotFound):
            fakes.service.attachment_download(ALICE, task.id, "nope")
        with pytest.raises(NotFound):
            fakes.service.add_attachment(
                MALLORY, task.id, AddAttachment(filename="x", content_type="a/b", size=1)
            )

    def test_removed_after_delete(self, fakes: Fakes) -> None:
        task = create(fakes)
        new = fakes.service.add_attachment(
            ALICE, task.id, AddAttachment(filename="a.txt", content_type="text/plain", size=1)
        )
        fakes.attachments.upload(new.upload.fields["key"], "text/plain", b"x")
        fakes.attachments.objects["alice/other/keep"] = b"keep"
        fakes.service.delete_task(ALICE, task.id)
        deleted = fakes.tasks.events()[-1]
        assert services.remove_attachments(fakes.attachments, deleted) == 1
        assert list(fakes.attachments.objects) == ["alice/other/keep"]

    def test_a_task_without_attachments_costs_the_bucket_nothing(self, fakes: Fakes) -> None:
        task = create(fakes)
        fakes.service.delete_task(ALICE, task.id)
        deleted = fakes.tasks.events()[-1]

        class NoBucket:
            def delete_prefix(self, prefix: str) -> int:
                raise AssertionError(f"the bucket was asked for {prefix}")

        assert services.remove_attachments(NoBucket(), deleted) == 0  # type: ignore[arg-type]


class TestStats:
    def test_counts_follow_events_once(self, fakes: Fakes) -> None:
        task = create(fakes)
        create(fakes)
        fakes.service.transition(ALICE, task.id, Status.IN_PROGRESS)
        fakes.clock.advance(timedelta(hours=2))
        fakes.service.transition(ALICE, task.id, Status.COMPLETED)
        events = fakes.tasks.events()
        for event in events + events:  # redelivered: applied once
            services.record_stats(fakes.stats, event)
        stats = fakes.service.get_stats(ALICE)
        assert stats.count(Status.PENDING) == 1
        assert stats.count(Status.COMPLETED) == 1
        assert stats.count(Status.IN_PROGRESS) == 0
        assert stats.completed_in_week_of(fakes.clock.now()) == 1
        median = stats.median_completion_seconds()
        assert median is not None
        assert 7200 / 1.1 < median < 7200 * 1.1
        assert any(isinstance(e, TaskCompleted) for e in events)

    def test_irrelevant_events_change_nothing(self, fakes: Fakes) -> None:
        task = create(fakes)
        fakes.service.update_task(ALICE, task.id, UpdateTask(title="renamed"))
        assert services.record_stats(fakes.stats, fakes.tasks.events()[-1]) is False
        assert fakes.service.get_stats(MALLORY).by_status == {}


class TestInMemoryAdapters:
    def test_publisher_reports_refused_events_and_keeps_the_rest(self, fakes: Fakes) -> None:
        create(fakes)
        create(fakes, priority=Priority.HIGH)
        events = [envelope(e) for e in fakes.tasks.events()]
        publisher = InMemoryEventPublisher(fail_ids={events[1].event_id})
        assert publisher.publish(events) == [events[1]]
        assert publisher.published == [events[0], events[2]]
        with pytest.raises(ValueError, match="at most 10"):
            publisher.publish(events * 4)

    def test_save_or_delete_of_a_missing_task_is_not_found(self, fakes: Fakes) -> None:
        task = create(fakes)
        fakes.service.delete_task(ALICE, task.id)
        with pytest.raises(NotFound):
            fakes.tasks.save(task, expected_version=1)
        with pytest.raises(NotFound):
            fakes.tasks.delete(task)


@pytest.mark.parametrize(
    ("subject", "valid"),
    [
        ("alice", True),
        ("9f1c2d3e-0000-4000-8000-000000000000", True),  # a Cognito sub
        ("a" * services.USER_ID_MAX, True),
        ("a" * (services.USER_ID_MAX + 1), False),
        ("", False),
        ("al ice", False),
        ("ålice", False),
        ("tab\there", False),
    ],
)
def test_a_user_id_is_what_openid_connect_allows_a_sub_to_be(subject: str, valid: bool) -> None:
    assert services.is_user_id(subject) is valid
