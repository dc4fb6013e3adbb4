from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import cattrs
import pytest

from taskcore.errors import InvalidTask
from taskcore.events import (
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
from taskcore.serialization import (
    camel,
    event_from_json,
    event_to_json,
    stats_to_json,
    task_from_json,
    task_to_json,
)
from taskcore.stats import UserStats, bucket_middle
from taskcore.testing import build_task

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1, microseconds=123456)
ALICE = UserId("alice")
BOB = UserId("bob")

TASK_KEYS = {
    "id",
    "ownerId",
    "title",
    "description",
    "status",
    "priority",
    "approval",
    "tags",
    "dueDate",
    "createdAt",
    "updatedAt",
    "completedAt",
    "approvalDecidedBy",
    "approvalDecidedAt",
    "attachments",
    "version",
}
EVENT_KEYS = {"type", "eventId", "occurredAt", "version", "ownerId", "taskId", "task"}


def new_task(priority: Priority = Priority.MEDIUM) -> Task:
    return build_task(
        now=T0,
        description="quarterly\nnumbers",
        priority=priority,
        tags=["work", "q1"],
        due_date=date(2030, 2, 1),
    )


def rich_task() -> Task:
    """Approved, started, with an attachment, completed: every field set."""
    task = new_task(Priority.HIGH).decide(Decision.APPROVE, BOB, T0 + timedelta(minutes=5))
    task = task.transition_to(Status.IN_PROGRESS, T0 + timedelta(minutes=10))
    attachment = Attachment(
        id=AttachmentId("01JD00000000000000000000A1"),
        filename="numbers.xlsx",
        content_type="application/vnd.ms-excel",
        size=2048,
        created_at=T0 + timedelta(minutes=20),
    )
    task = task.add_attachment(attachment, T0 + timedelta(minutes=20))
    return task.transition_to(Status.COMPLETED, T1)


def via_json(document: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(document))
    return result


def structuring_errors(data: dict[str, Any]) -> list[BaseException]:
    with pytest.raises(cattrs.ClassValidationError) as info:
        task_from_json(data)
    return list(info.value.exceptions)


def all_events() -> list[Event]:
    """One of each kind, from real state changes."""
    low = new_task()
    high = new_task(Priority.HIGH)
    started = low.transition_to(Status.IN_PROGRESS, T0)
    done = started.transition_to(Status.COMPLETED, T1)
    changes: list[tuple[Task | None, Task | None]] = [
        (None, low),
        (None, high),
        (low, low.edit(T0, title="Rewrite", tags=[])),
        (started, done),
        (high, high.decide(Decision.APPROVE, BOB, T1)),
        (high, high.decide(Decision.REJECT, BOB, T1)),
        (high, high.expire_approval(T1)),
        (done, None),
    ]
    derived = [e for old, new in changes for e in derive_events(old, new, T1)]
    due = attrs.evolve(low, due_date=date(2030, 1, 2))
    return [
        *derived,
        TaskDueSoon.for_task(due, date(2030, 1, 2), occurred_at=T1),
        *derive_events(done, None, T1, expired=True),
    ]


class TestCamel:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("id", "id"),
            ("due_date", "dueDate"),
            ("approval_decided_at", "approvalDecidedAt"),
            ("event_id", "eventId"),
        ],
    )
    def test_snake_case_becomes_camel_case(self, name: str, expected: str) -> None:
        assert camel(name) == expected


class TestTaskToJson:
    def test_keys_are_camel_case(self) -> None:
        document = task_to_json(rich_task())
        assert set(document) == TASK_KEYS
        assert set(document["attachments"][0]) == {
            "id",
            "filename",
            "contentType",
            "size",
            "createdAt",
        }

    def test_a_new_task_is_written_with_nulls_for_unset_fields(self) -> None:
        assert task_to_json(new_task()) == {
            "id": "01JD0000000000000000000001",
            "ownerId": "alice",
            "title": "Write the report",
            "description": "quarterly\nnumbers",
            "status": "pending",
            "priority": "medium",
            "approval": "not_required",
            "tags": ["work", "q1"],
            "dueDate": "2030-02-01",
            "createdAt": "2030-01-01T09:00:00.000000Z",
            "updatedAt": "2030-01-01T09:00:00.000000Z",
            "completedAt": None,
            "approvalDecidedBy": None,
            "approvalDecidedAt": None,
            "attachments": [],
            "version": 1,
        }

    def test_enum_values_are_plain_strings(self) -> None:
        document = task_to_json(rich_task())
        for key, value in [("status", "completed"), ("priority", "high"), ("approval", "approved")]:
            assert document[key] == value
            assert type(document[key]) is str

    def test_timestamps_are_utc_with_a_z_and_microseconds(self) -> None:
        document = task_to_json(rich_task())
        stamps = [
            document["createdAt"],
            document["updatedAt"],
            document["completedAt"],
            document["approvalDecidedAt"],
            document["attachments"][0]["createdAt"],
        ]
        for stamp in stamps:
            assert type(stamp) is str
            assert stamp.endswith("Z")
            assert "+" not in stamp
        assert document["completedAt"] == "2030-01-01T10:00:00.123456Z"

    def test_the_document_is_json_serialisable(self) -> None:
        document = task_to_json(rich_task())
        assert via_json(document) == document


class TestTaskFromJson:
    @pytest.mark.parametrize("make", [new_task, rich_task])
    def test_a_task_round_trips_through_json(self, make: Any) -> None:
        task = make()
        back = task_from_json(via_json(task_to_json(task)))
        assert back == task
        assert back.created_at.utcoffset() == timedelta(0)
        assert type(back.status) is Status
        assert isinstance(back.tags, tuple)
        assert all(type(a) is Attachment for a in back.attachments)

    def test_an_offset_z_or_plus_zero_is_read_as_utc(self) -> None:
        document = task_to_json(new_task())
        document["createdAt"] = "2030-01-01T09:00:00+00:00"
        document["updatedAt"] = "2030-01-01T09:00:00Z"
        assert task_from_json(document) == new_task()

    def test_unknown_keys_are_ignored(self) -> None:
        document = {**task_to_json(new_task()), "extra": 1}
        assert task_from_json(document) == new_task()

    def test_a_document_that_breaks_an_invariant_is_refused(self) -> None:
        document = task_to_json(new_task())
        document["status"] = "completed"  # without completedAt
        errors = structuring_errors(document)
        assert len(errors) == 1
        assert isinstance(errors[0], InvalidTask)
        assert errors[0].fields == ("completed_at",)

    def test_a_high_priority_task_without_an_approval_is_refused(self) -> None:
        document = {**task_to_json(new_task()), "priority": "high"}
        (error,) = structuring_errors(document)
        assert isinstance(error, InvalidTask)
        assert error.fields == ("approval",)

    def test_an_empty_title_is_refused(self) -> None:
        (error,) = structuring_errors({**task_to_json(new_task()), "title": " "})
        assert isinstance(error, InvalidTask)
        assert error.errors[0].message == "must not be empty"

    @pytest.mark.parametrize("stamp", ["2030-01-01T09:00:00", "2030-01-01T11:00:00+02:00"])
    def test_a_timestamp_that_is_not_utc_is_refused(self, stamp: str) -> None:
        (error,) = structuring_errors({**task_to_json(new_task()), "createdAt": stamp})
        assert isinstance(error, InvalidTask)
        assert error.fields == ("created_at",)

    @pytest.mark.parametrize("stamp", [1893488400, 1893488400.0, None, ["2030-01-01"]])
    def test_a_timestamp_that_is_not_a_string_is_refused(self, stamp: object) -> None:
        (error,) = structuring_errors({**task_to_json(new_task()), "createdAt": stamp})
        assert isinstance(error, TypeError)
        assert str(error) == "a timestamp must be an ISO-8601 string"

    def test_an_optional_timestamp_that_is_not_a_string_is_refused(self) -> None:
        document = task_to_json(rich_task())
        document["completedAt"] = 1893488400
        (error,) = structuring_errors(document)
        assert isinstance(error, TypeError)

    def test_an_unparseable_timestamp_is_refused(self) -> None:
        (error,) = structuring_errors({**task_to_json(new_task()), "updatedAt": "yesterday"})
        assert isinstance(error, ValueError)

    @pytest.mark.parametrize("due", [20300201, 1.5, ["2030-02-01"]])
    def test_a_due_date_that_is_not_a_string_is_refused(self, due: object) -> None:
        (error,) = structuring_errors({**task_to_json(new_task()), "dueDate": due})
        assert isinstance(error, TypeError)
        assert str(error) == "a date must be an ISO-8601 calendar date (YYYY-MM-DD)"

    def test_a_null_due_date_is_read_as_none(self) -> None:
        document = {**task_to_json(new_task()), "dueDate": None}
        assert task_from_json(document).due_date is None

    def test_an_unknown_enum_value_is_refused(self) -> None:
        (error,) = structuring_errors({**task_to_json(new_task()), "status": "done"})
        assert isinstance(error, ValueError)

    def test_a_missing_required_key_is_refused(self) -> None:
        document = task_to_json(new_task())
        del document["createdAt"]
        (error,) = structuring_errors(document)
        assert isinstance(error, KeyError)

    def test_a_bad_nested_attachment_is_refused(self) -> None:
        document = task_to_json(rich_task())
        document["attachments"][0]["createdAt"] = 0
        with pytest.raises(cattrs.ClassValidationError):
            task_from_json(document)


class TestEventJson:
    def test_every_kind_is_exercised(self) -> None:
        assert {type(e) for e in all_events()} == set(EVENT_TYPES.values())

    @pytest.mark.parametrize("index", range(len(all_events())))
    def test_an_event_round_trips_through_json(self, index: int) -> None:
        event = all_events()[index]
        document = via_json(event_to_json(event))
        back = event_from_json(document)
        assert back == event
        assert type(back) is type(event)

    def test_the_type_and_keys_are_camel_case(self) -> None:
        for event in all_events():
            document = event_to_json(event)
            assert document["type"] == event.kind
            extra = {
                TaskUpdated: {"changed", "previous"},
                ApprovalDecided: {"outcome"},
                TaskDueSoon: {"dueDate"},
            }.get(type(event), set())
            assert set(document) == EVENT_KEYS | extra
            assert set(document["task"]) == TASK_KEYS

    def test_common_fields_are_written(self) -> None:
        event = derive_events(None, new_task(), T1)[0]
        document = event_to_json(event)
        assert document["eventId"] == "01JD0000000000000000000001:1:TaskCreated"
        assert document["occurredAt"] == "2030-01-01T10:00:00.123456Z"
        assert document["ownerId"] == "alice"
        assert document["taskId"] == "01JD0000000000000000000001"
        assert document["version"] == 1
        assert document["task"] == task_to_json(new_task())

    def test_an_update_carries_what_changed_and_the_previous_image(self) -> None:
        low = new_task()
        edited = low.edit(T1, title="Rewrite", priority=Priority.HIGH)
        update = derive_events(low, edited, T1)[0]
        assert isinstance(update, TaskUpdated)
        document = via_json(event_to_json(update))
        assert document["changed"] == ["title", "priority", "approval"]
        assert document["previous"] == task_to_json(low)
        assert document["task"]["approval"] == "pending"
        back = event_from_json(document)
        assert isinstance(back, TaskUpdated)
        assert back.previous == low
        assert back.changed == ("title", "priority", "approval")

    @pytest.mark.parametrize(
        ("decide", "outcome"),
        [
            (lambda t: t.decide(Decision.APPROVE, BOB, T1), "approved"),
            (lambda t: t.decide(Decision.REJECT, BOB, T1), "rejected"),
            (lambda t: t.expire_approval(T1), "expired"),
        ],
    )
    def test_an_approval_decision_carries_its_outcome_as_text(
        self, decide: Any, outcome: str
    ) -> None:
        task = new_task(Priority.CRITICAL)
        events = derive_events(task, decide(task), T1)
        decided = next(e for e in events if isinstance(e, ApprovalDecided))
        document = via_json(event_to_json(decided))
        assert document["outcome"] == outcome
        assert type(event_to_json(decided)["outcome"]) is str
        back = event_from_json(document)
        assert isinstance(back, ApprovalDecided)
        assert back.outcome is Approval(outcome)

    def test_enum_values_in_events_are_plain_strings(self) -> None:
        for event in all_events():
            document = event_to_json(event)
            for image in (document["task"], document.get("previous") or document["task"]):
                for key in ("status", "priority", "approval"):
                    assert type(image[key]) is str

    @pytest.mark.parametrize(
        "kind", [TaskCreated, TaskCompleted, TaskDeleted, ApprovalRequested, TaskArchived]
    )
    def test_each_plain_kind_is_read_back_as_its_class(self, kind: type[Event]) -> None:
        event = kind.make(new_task(), T1)
        back = event_from_json(via_json(event_to_json(event)))
        assert type(back) is kind
        assert back == event

    def test_an_unknown_event_type_is_refused(self) -> None:
        document = event_to_json(derive_events(None, new_task(), T1)[0])
        document["type"] = "TaskExploded"
        with pytest.raises(KeyError, match="TaskExploded"):
            event_from_json(document)

    def test_reading_does_not_modify_the_document(self) -> None:
        document = via_json(event_to_json(derive_events(None, new_task(), T1)[0]))
        before = json.dumps(document, sort_keys=True)
        event_from_json(document)
        assert json.dumps(document, sort_keys=True) == before

    def test_an_event_whose_task_breaks_an_invariant_is_refused(self) -> None:
        document = via_json(event_to_json(derive_events(None, new_task(), T1)[0]))
        document["task"]["version"] = 0
        with pytest.raises(cattrs.ClassValidationError):
            event_from_json(document)


class TestStatsToJson:
    def test_empty_stats(self) -> None:
        assert stats_to_json(UserStats(owner_id=ALICE), T0) == {
            "byStatus": {},
            "completedThisWeek": 0,
            "medianCompletionSeconds": None,
        }

    def test_stats_are_summarised_for_the_week_of_now(self) -> None:
        stats = UserStats(
            owner_id=ALICE,
            by_status={"pending": 2, "completed": 3},
            completed_by_week={"2030-W01": 2, "2029-W52": 1},
            completion_histogram={40: 2, 44: 1},
        )
        document = stats_to_json(stats, T0)
        assert document == {
            "byStatus": {"pending": 2, "completed": 3},
            "completedThisWeek": 2,
            "medianCompletionSeconds": bucket_middle(40),
        }
        assert type(document["byStatus"]) is dict
        assert via_json(document) == document

    def test_another_week_counts_its_own_completions(self) -> None:
        stats = UserStats(owner_id=ALICE, completed_by_week={"2030-W01": 2})
        assert stats_to_json(stats, T0 + timedelta(days=7))["completedThisWeek"] == 0


class TestStrictReading:
    @pytest.mark.parametrize(
        ("field", "value"),
        [("title", 123), ("version", "3"), ("version", 1.9), ("version", True), ("tags", [1, 2])],
    )
    def test_no_silent_coercion(self, field: str, value: object) -> None:
        with pytest.raises(cattrs.ClassValidationError):
            task_from_json({**task_to_json(new_task()), field: value})

    @pytest.mark.parametrize("due", ["2030-W01-1", "20300131", "2030-1-31"])
    def test_dates_must_be_extended_calendar_dates(self, due: str) -> None:
        with pytest.raises(cattrs.ClassValidationError):
            task_from_json({**task_to_json(new_task()), "dueDate": due})

    def test_unknown_enum_values_are_refused(self) -> None:
        with pytest.raises(cattrs.ClassValidationError):
            task_from_json({**task_to_json(new_task()), "status": "done"})
