from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import attrs
import pytest

from taskcore.errors import InvalidTask, InvalidTransition
from taskcore.model import (
    ATTACHMENTS_MAX,
    TITLE_MAX,
    TRANSITIONS,
    Approval,
    Attachment,
    AttachmentId,
    Decision,
    Principal,
    Priority,
    Status,
    Task,
    UserId,
    description_problem,
    due_date_problem,
    filename_problem,
    title_problem,
)
from taskcore.testing import build_task

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
ALICE = UserId("alice")
BOB = UserId("bob")


def attachment(n: int = 1) -> Attachment:
    return Attachment(
        id=AttachmentId(f"A{n}"),
        filename=f"file{n}.pdf",
        content_type="application/pdf",
        size=10,
        created_at=NOW,
    )


def started(task: Task) -> Task:
    return task.transition_to(Status.IN_PROGRESS, LATER)


class TestTitleRules:
    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("", "must not be empty"),
            ("   ", "must not be empty"),
            ("x" * (TITLE_MAX + 1), "at most 200"),
            ("bell\x07", "control characters"),
            ("new\nline", "control characters"),
            ("lone \ud800 surrogate", "control characters"),
            (42, "must be a string"),
        ],
    )
    def test_rejects(self, value: object, message: str) -> None:
        problem = title_problem(value)
        assert problem is not None
        assert message in problem

    @pytest.mark.parametrize("value", ["x", "x" * TITLE_MAX, "Ünïcødé ✓ 日本語", "emoji 🎉"])
    def test_accepts(self, value: str) -> None:
        assert title_problem(value) is None

    def test_task_refuses_bad_title_with_the_field(self) -> None:
        with pytest.raises(InvalidTask) as info:
            attrs.evolve(build_task(), title="")
        assert info.value.fields == ("title",)


class TestOtherFieldRules:
    def test_description_allows_newlines_and_tabs(self) -> None:
        assert description_problem("a\nb\tc\r\n") is None

    @pytest.mark.parametrize(
        ("value", "message"),
        [(None, "string"), ("x" * 4001, "4000"), ("nul\x00", "control")],
    )
    def test_description_rejects(self, value: object, message: str) -> None:
        assert message in (description_problem(value) or "")

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (None, "string"),
            ("", "file name"),
            ("..", "file name"),
            ("../etc/passwd", "separators"),
            ("a\\b", "separators"),
            ("x" * 256, "255"),
            ("a\x00.txt", "control"),
        ],
    )
    def test_filename_rejects(self, value: object, message: str) -> None:
        assert message in (filename_problem(value) or "")

    def test_filename_accepts_plain_names(self) -> None:
        assert filename_problem("report (final).pdf") is None

    def test_due_date_window(self) -> None:
        today = date(2030, 1, 1)
        assert due_date_problem(today, today) is None
        assert "past" in (due_date_problem(date(2029, 12, 31), today) or "")
        assert "ten years" in (due_date_problem(date(2041, 1, 1), today) or "")

    def test_tags_on_the_entity_are_validated(self) -> None:
        with pytest.raises(InvalidTask) as info:
            build_task(tags=["ok", "ok"])
        assert info.value.fields == ("tags/1",)

    def test_times_must_be_utc(self) -> None:
        paris = timezone(timedelta(hours=1))
        with pytest.raises(InvalidTask) as info:
            attrs.evolve(build_task(), updated_at=datetime(2030, 1, 1, 12, tzinfo=paris))
        assert info.value.fields == ("updated_at",)

    def test_version_starts_at_one(self) -> None:
        with pytest.raises(InvalidTask) as info:
            attrs.evolve(build_task(), version=0)
        assert info.value.fields == ("version",)


class TestInvariants:
    def test_updated_before_created_is_refused(self) -> None:
        with pytest.raises(InvalidTask, match="updated_at"):
            attrs.evolve(build_task(), updated_at=NOW - timedelta(seconds=1))

    def test_completed_at_only_when_completed(self) -> None:
        with pytest.raises(InvalidTask, match="completed_at"):
            attrs.evolve(build_task(), completed_at=NOW)
        with pytest.raises(InvalidTask, match="completed_at"):
            attrs.evolve(started(build_task()), status=Status.COMPLETED)

    def test_cannot_be_started_with_pending_approval(self) -> None:
        with pytest.raises(InvalidTask, match="approval"):
            attrs.evolve(build_task(priority=Priority.HIGH), status=Status.IN_PROGRESS)

    def test_rejected_approval_means_cancelled(self) -> None:
        with pytest.raises(InvalidTask, match="status"):
            attrs.evolve(
                build_task(priority=Priority.HIGH),
                approval=Approval.REJECTED,
                approval_decided_at=NOW,
                approval_decided_by=BOB,
            )

    def test_pending_high_task_needs_an_approval(self) -> None:
        with pytest.raises(InvalidTask, match="needs an approval"):
            attrs.evolve(build_task(), priority=Priority.CRITICAL)

    def test_decision_fields_follow_the_approval(self) -> None:
        with pytest.raises(InvalidTask, match="approval_decided_at"):
            attrs.evolve(build_task(), approval_decided_at=NOW)
        with pytest.raises(InvalidTask, match="approval_decided_by"):
            attrs.evolve(build_task(), approval_decided_by=BOB)

    def test_attachment_limits(self) -> None:
        with pytest.raises(InvalidTask, match="unique"):
            attrs.evolve(build_task(), attachments=(attachment(1), attachment(1)))
        too_many = tuple(attachment(n) for n in range(ATTACHMENTS_MAX + 1))
        with pytest.raises(InvalidTask, match="at most"):
            attrs.evolve(build_task(), attachments=too_many)

    def test_all_problems_are_reported_together(self) -> None:
        with pytest.raises(InvalidTask) as info:
            attrs.evolve(
                build_task(),
                updated_at=NOW - timedelta(seconds=1),
                completed_at=NOW,
            )
        assert set(info.value.fields) == {"updated_at", "completed_at"}


class TestNew:
    def test_low_and_medium_need_no_approval(self) -> None:
        assert build_task(priority=Priority.LOW).approval is Approval.NOT_REQUIRED
        assert build_task(priority=Priority.MEDIUM).approval is Approval.NOT_REQUIRED

    @pytest.mark.parametrize("priority", [Priority.HIGH, Priority.CRITICAL])
    def test_high_and_critical_await_approval(self, priority: Priority) -> None:
        task = build_task(priority=priority)
        assert task.approval is Approval.PENDING
        assert task.awaiting_approval

    def test_starts_pending_at_version_one(self) -> None:
        task = build_task()
        assert (task.status, task.version, task.created_at, task.updated_at) == (
            Status.PENDING,
            1,
            NOW,
            NOW,
        )


ALL_PAIRS = [(a, b) for a in Status for b in Status if a is not b]


def task_in(status: Status) -> Task:
    task = build_task()
    if status is Status.PENDING:
        return task
    if status is Status.CANCELLED:
        return task.transition_to(Status.CANCELLED, LATER)
    task = started(task)
    if status is Status.COMPLETED:
        task = task.transition_to(Status.COMPLETED, LATER)
    return task


class TestLifecycle:
    @pytest.mark.parametrize(("source", "target"), ALL_PAIRS)
    def test_transition_table(self, source: Status, target: Status) -> None:
        task = task_in(source)
        if target in TRANSITIONS[source]:
            moved = task.transition_to(target, LATER)
            assert moved.status is target
            assert moved.version == task.version + 1
        else:
            with pytest.raises(InvalidTransition) as info:
                task.transition_to(target, LATER)
            assert (info.value.current, info.value.requested) == (source, target)

    def test_same_status_is_a_no_op(self) -> None:
        task = build_task()
        assert task.transition_to(Status.PENDING, LATER) is task

    def test_complete_stamps_and_reopen_clears(self) -> None:
        done = started(build_task()).transition_to(Status.COMPLETED, LATER)
        assert done.completed_at == LATER
        reopened = done.transition_to(Status.IN_PROGRESS, LATER)
        assert reopened.completed_at is None
        assert reopened.version == done.version + 1

    def test_cannot_start_before_approval(self) -> None:
        with pytest.raises(InvalidTransition, match="approval is pending"):
            started(build_task(priority=Priority.HIGH))

    def test_updated_at_never_goes_back(self) -> None:
        task = started(build_task())
        assert task.transition_to(Status.COMPLETED, NOW).updated_at == LATER


class TestEdit:
    def test_changes_fields_and_bumps_version(self) -> None:
        task = build_task()
        edited = task.edit(LATER, title="New title", tags=("a",))
        assert (edited.title, edited.tags, edited.version, edited.updated_at) == (
            "New title",
            ("a",),
            2,
            LATER,
        )

    def test_unchanged_values_are_no_change(self) -> None:
        task = build_task(tags=["a"])
        assert task.edit(LATER, title=task.title, tags=["a"]) is task

    def test_only_mutable_fields(self) -> None:
        with pytest.raises(InvalidTask) as info:
            build_task().edit(LATER, owner_id=BOB, version=9)
        assert info.value.fields == ("owner_id", "version")

    def test_cancelled_tasks_are_frozen(self) -> None:
        with pytest.raises(InvalidTransition):
            task_in(Status.CANCELLED).edit(LATER, title="x")

    def test_raising_priority_of_pending_task_requests_approval(self) -> None:
        edited = build_task().edit(LATER, priority=Priority.HIGH)
        assert edited.approval is Approval.PENDING

    def test_raising_priority_of_started_task_needs_no_approval(self) -> None:
        edited = started(build_task()).edit(LATER, priority=Priority.CRITICAL)
        assert edited.approval is Approval.NOT_REQUIRED

    def test_lowering_priority_keeps_a_requested_approval(self) -> None:
        edited = build_task(priority=Priority.HIGH).edit(LATER, priority=Priority.LOW)
        assert edited.approval is Approval.PENDING


class TestApproval:
    def test_approve_allows_start(self) -> None:
        approved = build_task(priority=Priority.HIGH).decide(Decision.APPROVE, BOB, LATER)
        assert (approved.approval, approved.approval_decided_by) == (Approval.APPROVED, BOB)
        assert started(approved).status is Status.IN_PROGRESS

    def test_reject_cancels(self) -> None:
        rejected = build_task(priority=Priority.HIGH).decide(Decision.REJECT, BOB, LATER)
        assert (rejected.approval, rejected.status) == (Approval.REJECTED, Status.CANCELLED)

    def test_expire_cancels(self) -> None:
        expired = build_task(priority=Priority.HIGH).expire_approval(LATER)
        assert (expired.approval, expired.status) == (Approval.EXPIRED, Status.CANCELLED)
        assert expired.approval_decided_by is None

    def test_decide_twice_is_refused(self) -> None:
        approved = build_task(priority=Priority.HIGH).decide(Decision.APPROVE, BOB, LATER)
        with pytest.raises(InvalidTransition):
            approved.decide(Decision.REJECT, BOB, LATER)
        with pytest.raises(InvalidTransition):
            approved.expire_approval(LATER)

    def test_cancelled_task_no_longer_awaits(self) -> None:
        task = build_task(priority=Priority.HIGH).transition_to(Status.CANCELLED, LATER)
        assert not task.awaiting_approval
        with pytest.raises(InvalidTransition):
            task.decide(Decision.APPROVE, BOB, LATER)


class TestAttachments:
    def test_add_and_find(self) -> None:
        task = build_task().add_attachment(attachment(1), LATER)
        assert task.attachment("A1") == attachment(1)
        assert task.attachment("nope") is None
        assert task.version == 2

    def test_limit(self) -> None:
        task = build_task()
        for n in range(ATTACHMENTS_MAX):
            task = task.add_attachment(attachment(n), LATER)
        with pytest.raises(InvalidTask, match="at most"):
            task.add_attachment(attachment(99), LATER)

    def test_not_on_cancelled(self) -> None:
        with pytest.raises(InvalidTransition):
            task_in(Status.CANCELLED).add_attachment(attachment(), LATER)


class TestPrincipal:
    def test_approver_group(self) -> None:
        assert Principal(user_id=BOB, groups=frozenset({"approvers"})).is_approver
        assert not Principal(user_id=ALICE).is_approver
