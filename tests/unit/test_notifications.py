"""Notifications (`taskcore.notifications`, `taskcore.services.notifications`): who an event
notifies, once per recipient however often it is delivered, and reading an inbox."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskcore.cursors import CursorCodec
from taskcore.errors import Forbidden, InvalidCursor, InvalidQuery, NotFound
from taskcore.events import ApprovalDecided, ApprovalRequested, Event, TaskDueSoon, derive_events
from taskcore.model import Approval, Decision, Priority, Status, Task, UserId
from taskcore.notifications import (
    APPROVERS_INBOX,
    RETENTION,
    Kind,
    NotificationId,
    notification_id,
    notifications_for,
)
from taskcore.services import NotificationService, deliver_notifications
from taskcore.testing import (
    EXAMPLE_TIME,
    FixedClock,
    InMemoryChannel,
    InMemoryInbox,
    build_task,
    principal,
)

LATER = EXAMPLE_TIME + timedelta(minutes=5)


def requested(task: Task) -> ApprovalRequested:
    event = next(
        e for e in derive_events(None, task, EXAMPLE_TIME) if e.kind == "ApprovalRequested"
    )
    assert isinstance(event, ApprovalRequested)
    return event


def decided(task: Task, decision: Decision | None) -> ApprovalDecided:
    after = (
        task.expire_approval(LATER)
        if decision is None
        else task.decide(decision, UserId("bob"), LATER)
    )
    event = next(e for e in derive_events(task, after, LATER) if e.kind == "ApprovalDecided")
    assert isinstance(event, ApprovalDecided)
    return event


def due_soon(task: Task) -> TaskDueSoon:
    assert task.due_date is not None
    return TaskDueSoon.for_task(task, task.due_date, LATER)


HIGH = build_task(priority=Priority.HIGH)
DUE = build_task(n=2, due_date=date(2030, 1, 2))


class TestRecipients:
    def test_an_approval_request_goes_to_the_approvers_inbox(self) -> None:
        [note] = notifications_for(requested(HIGH))
        assert (note.recipient, note.kind) == (APPROVERS_INBOX, Kind.APPROVAL_REQUESTED)
        assert (note.task_id, note.owner_id, note.title) == (HIGH.id, "alice", HIGH.title)

    def test_an_auto_approved_task_asks_nobody(self) -> None:
        auto = build_task(priority=Priority.HIGH, approved_by=UserId("auto:leads"))
        event = ApprovalRequested.make(auto, EXAMPLE_TIME)
        assert notifications_for(event) == []

    @pytest.mark.parametrize(
        ("decision", "kind", "outcome"),
        [
            (Decision.APPROVE, Kind.APPROVAL_DECIDED, Approval.APPROVED),
            (Decision.REJECT, Kind.APPROVAL_DECIDED, Approval.REJECTED),
            (None, Kind.APPROVAL_EXPIRED, Approval.EXPIRED),
        ],
    )
    def test_a_decision_or_an_expiry_goes_to_the_owner(
        self, decision: Decision | None, kind: Kind, outcome: Approval
    ) -> None:
        [note] = notifications_for(decided(HIGH, decision))
        assert (note.recipient, note.kind, note.outcome) == ("user:alice", kind, outcome)
        assert note.decided_by == ("bob" if decision else None)
        assert HIGH.title in note.message

    def test_a_task_due_tomorrow_reminds_its_owner(self) -> None:
        [note] = notifications_for(due_soon(DUE))
        assert (note.recipient, note.kind, note.due_date) == (
            "user:alice",
            Kind.DUE_SOON,
            date(2030, 1, 2),
        )

    def test_a_reminder_for_a_task_completed_or_moved_since_says_nothing(self) -> None:
        started = DUE.transition_to(Status.IN_PROGRESS, LATER)
        completed = started.transition_to(Status.COMPLETED, LATER)
        assert notifications_for(TaskDueSoon.for_task(completed, date(2030, 1, 2), LATER)) == []
        moved = DUE.edit(LATER, due_date=date(2030, 1, 5))
        assert notifications_for(TaskDueSoon.for_task(moved, date(2030, 1, 2), LATER)) == []

    def test_other_events_notify_nobody(self) -> None:
        events = derive_events(None, build_task(), EXAMPLE_TIME)
        assert events
        assert all(notifications_for(e) == [] for e in events)


EVENTS = st.sampled_from(
    [
        requested(HIGH),
        decided(HIGH, Decision.APPROVE),
        decided(HIGH, Decision.REJECT),
        decided(HIGH, None),
        due_soon(DUE),
    ]
)


@given(event=EVENTS, deliveries=st.integers(min_value=1, max_value=5))
def test_one_event_makes_one_notification_per_recipient_however_often_delivered(
    event: Event, deliveries: int
) -> None:
    inbox, channel, clock = InMemoryInbox(), InMemoryChannel(), FixedClock(LATER)
    for _ in range(deliveries):
        deliver_notifications(inbox, channel, clock, event)
    expected = notifications_for(event)
    assert len(inbox.stored) == len(expected) == len(channel.published) == 1
    assert [n.id for n in channel.published] == [n.id for n in expected]


@given(event=EVENTS, failures=st.integers(min_value=1, max_value=3))
def test_a_topic_that_failed_is_published_to_on_the_redelivery_once(
    event: Event, failures: int
) -> None:
    inbox, channel, clock = InMemoryInbox(), InMemoryChannel(fail=True), FixedClock(LATER)
    for _ in range(failures):
        with pytest.raises(ConnectionError):
            deliver_notifications(inbox, channel, clock, event)
    channel.fail = False
    [first] = deliver_notifications(inbox, channel, clock, event)
    [again] = deliver_notifications(inbox, channel, clock, event)
    assert (first.published, again.published) == (True, False)
    assert len(channel.published) == 1
    assert next(iter(inbox.stored.values())).sent_at == LATER


@given(
    event_ids=st.lists(st.text(min_size=1, max_size=40), min_size=2, max_size=5, unique=True),
    recipients=st.lists(st.sampled_from(["user:a", "user:b", APPROVERS_INBOX]), min_size=1),
)
def test_ids_are_ulids_of_the_event_time_distinct_per_event_and_recipient(
    event_ids: list[str], recipients: list[str]
) -> None:
    ids = {(e, r): notification_id(e, r, EXAMPLE_TIME) for e in event_ids for r in set(recipients)}
    assert len(set(ids.values())) == len(ids)
    assert all(len(i) == 26 and i[:10] == next(iter(ids.values()))[:10] for i in ids.values())
    assert ids == {(e, r): notification_id(e, r, EXAMPLE_TIME) for (e, r) in ids}


def reader(clock: FixedClock, inbox: InMemoryInbox) -> NotificationService:
    return NotificationService(inbox=inbox, clock=clock, cursors=CursorCodec(b"k" * 32))


def many_requests(inbox: InMemoryInbox, count: int, owner: str = "alice") -> None:
    channel, clock = InMemoryChannel(), FixedClock(LATER)
    for n in range(1, count + 1):
        task = build_task(n=n, owner=owner, priority=Priority.CRITICAL)
        event = attrs.evolve(requested(task), occurred_at=EXAMPLE_TIME + timedelta(seconds=n))
        deliver_notifications(inbox, channel, clock, event)


class TestReading:
    def test_an_inbox_pages_newest_first_with_a_signed_cursor(self) -> None:
        inbox = InMemoryInbox()
        many_requests(inbox, 7)
        service, carol = reader(FixedClock(LATER), inbox), principal("carol", "approvers")
        seen: list[datetime] = []
        cursor = None
        first = service.list_notifications(carol, "approvers", 3).next_cursor
        assert first is not None
        with pytest.raises(InvalidCursor):  # a cursor is bound to its reader and its inbox
            service.list_notifications(principal("dave", "approvers"), "approvers", 3, first)
        with pytest.raises(InvalidCursor):
            service.list_notifications(carol, "me", 3, first)
        while True:
            page = service.list_notifications(carol, "approvers", 3, cursor)
            seen.extend(n.created_at for n in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == sorted(seen, reverse=True)
        assert len(seen) == 7

    def test_the_approvers_inbox_is_for_approvers_only(self) -> None:
        service = reader(FixedClock(LATER), InMemoryInbox())
        with pytest.raises(Forbidden):
            service.list_notifications(principal("mallory"), "approvers", 10)
        with pytest.raises(InvalidQuery):
            service.list_notifications(principal("mallory"), "everyone", 10)
        with pytest.raises(InvalidQuery):
            service.list_notifications(principal("mallory"), "me", 0)

    def test_an_approver_never_sees_the_request_for_their_own_task(self) -> None:
        inbox = InMemoryInbox()
        many_requests(inbox, 2, owner="carol")
        service = reader(FixedClock(LATER), inbox)
        carol = principal("carol", "approvers")
        assert service.list_notifications(carol, "approvers", 10).items == ()
        [note] = list(inbox.stored.values())[:1]
        with pytest.raises(NotFound):
            service.mark_read(carol, note.id)

    def test_own_inbox_holds_only_own_notifications(self) -> None:
        inbox, channel, clock = InMemoryInbox(), InMemoryChannel(), FixedClock(LATER)
        deliver_notifications(inbox, channel, clock, decided(HIGH, Decision.APPROVE))
        service = reader(clock, inbox)
        assert len(service.list_notifications(principal("alice"), "me", 10).items) == 1
        assert service.list_notifications(principal("bob", "approvers"), "me", 10).items == ()
        note = next(iter(inbox.stored.values()))
        with pytest.raises(NotFound):
            service.mark_read(principal("bob", "approvers"), note.id)

    def test_mark_read_keeps_the_first_time(self) -> None:
        inbox, channel, clock = InMemoryInbox(), InMemoryChannel(), FixedClock(LATER)
        deliver_notifications(inbox, channel, clock, decided(HIGH, Decision.REJECT))
        service = reader(clock, inbox)
        note = next(iter(inbox.stored.values()))
        first = service.mark_read(principal("alice"), note.id)
        clock.advance(timedelta(hours=1))
        again = service.mark_read(principal("alice"), note.id)
        assert first.read_at == again.read_at == LATER
        with pytest.raises(NotFound):
            service.mark_read(principal("alice"), "not-an-id")

    def test_expired_notifications_are_hidden_before_ttl_removes_them(self) -> None:
        inbox, channel, clock = InMemoryInbox(), InMemoryChannel(), FixedClock(LATER)
        deliver_notifications(inbox, channel, clock, decided(HIGH, Decision.APPROVE))
        clock.advance(RETENTION)
        service = reader(clock, inbox)
        assert service.list_notifications(principal("alice"), "me", 10).items == ()
        note = next(iter(inbox.stored.values()))
        with pytest.raises(NotFound):
            service.mark_read(principal("alice"), note.id)


@given(runs=st.lists(st.integers(min_value=0, max_value=24 * 60), min_size=2, max_size=6))
def test_a_reminder_sent_by_several_sweep_runs_is_one_notification(runs: list[int]) -> None:
    """The sweep sends a reminder again on its next runs, each with its own time: the same
    event id must make the same notification whatever the run's time."""
    inbox, channel, clock = InMemoryInbox(), InMemoryChannel(), FixedClock(LATER)
    assert DUE.due_date is not None
    day_before = EXAMPLE_TIME.replace(hour=0, minute=0)
    for minute in runs:
        run = TaskDueSoon.for_task(DUE, DUE.due_date, day_before + timedelta(minutes=minute))
        deliver_notifications(inbox, channel, clock, run)
    [stored] = inbox.stored.values()
    assert len(channel.published) == 1
    assert stored.created_at == day_before


def test_a_notification_removed_while_being_marked_read_is_not_found() -> None:
    """TTL may delete it between the read and the update: the caller is told 404, not 5xx."""

    class Vanishing(InMemoryInbox):
        def mark_read(self, recipient: str, notification_id: NotificationId, at: datetime) -> None:
            return None

    inbox, channel, clock = Vanishing(), InMemoryChannel(), FixedClock(LATER)
    deliver_notifications(inbox, channel, clock, decided(HIGH, Decision.APPROVE))
    note = next(iter(inbox.stored.values()))
    with pytest.raises(NotFound):
        reader(clock, inbox).mark_read(principal("alice"), note.id)


@pytest.mark.parametrize(
    ("event", "subject", "words"),
    [
        (requested(HIGH), "Approval requested", "(high) by alice"),
        (decided(HIGH, Decision.REJECT), "Approval decided", "was rejected by bob"),
        (decided(HIGH, None), "Approval expired", "expired: the task was cancelled"),
        (due_soon(DUE), "Task due tomorrow", "is due tomorrow (2030-01-02)"),
    ],
)
def test_each_kind_has_a_subject_and_a_line_for_people(
    event: Event, subject: str, words: str
) -> None:
    [note] = notifications_for(event)
    assert note.subject == subject
    assert words in note.message
    assert note.title in note.message
