"""Properties of the use cases: no sequence of calls breaks an invariant, versions strictly
increase, events match state changes, and users never see each other's tasks."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from taskcore import services
from taskcore.commands import CreateTask, TaskQuery, UpdateTask
from taskcore.errors import DomainError, InvalidTask, NotFound
from taskcore.events import (
    ApprovalDecided,
    ApprovalRequested,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskUpdated,
    derive_events,
)
from taskcore.model import Decision, Priority, Status, Task
from taskcore.testing import in_memory_service, principal

USERS = [principal("alice"), principal("bob", "approvers"), principal("carol", "approvers")]
titles = st.text(min_size=0, max_size=210)
priorities = st.sampled_from(Priority)
statuses = st.sampled_from(Status)
users = st.sampled_from(USERS)


class TaskUseCases(RuleBasedStateMachine):
    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.fakes = in_memory_service()
        self.service = self.fakes.service
        self.created = 0
        self.deleted = 0
        self.completions = 0

    @rule(target=tasks, who=users, title=titles, priority=priorities, key=st.none() | st.just("k"))
    def create(self, who, title, priority, key):
        try:
            result = self.service.create_task(
                who, CreateTask(title=title, priority=priority), idempotency_key=key
            )
        except InvalidTask as error:
            assert error.fields == ("title",)  # noqa: PT017 - inside a state machine rule
            return (who, "00000000000000000000000000")
        except DomainError:  # key reused with another body
            assert key is not None
            return (who, "00000000000000000000000000")
        self.created += result.created
        return (who, result.task.id)

    @rule(ref=tasks, actor=users, title=titles, priority=st.none() | priorities)
    def update(self, ref, actor, title, priority):
        owner, task_id = ref
        command = UpdateTask(title=title) if priority is None else UpdateTask(priority=priority)
        before = self._stored(owner, task_id)
        try:
            after = self.service.update_task(actor, task_id, command)
        except DomainError:
            assert self._stored(owner, task_id) == before  # nothing half-applied
            return
        assert actor == owner

        assert after == self._stored(owner, task_id)

    @rule(ref=tasks, actor=users, goal=statuses)
    def move(self, ref, actor, goal):
        owner, task_id = ref
        before = self._stored(owner, task_id)
        try:
            after = self.service.transition(actor, task_id, goal)
        except DomainError:
            assert self._stored(owner, task_id) == before
            return
        assert actor == owner
        if before is not None and goal is Status.COMPLETED and before.status != goal:
            self.completions += 1
        assert after.status is goal

    @rule(ref=tasks, approver=users, decision=st.sampled_from(Decision))
    def decide(self, ref, approver, decision):
        owner, task_id = ref
        before = self._stored(owner, task_id)
        try:
            after = self.service.decide_approval(approver, task_id, decision)
        except DomainError:
            assert self._stored(owner, task_id) == before
            return
        assert approver.is_approver
        assert approver != owner
        assert after.approval_decided_by == approver.user_id

    @rule(ref=consumes(tasks), actor=users)
    def delete(self, ref, actor):
        owner, task_id = ref
        try:
            self.service.delete_task(actor, task_id)
        except NotFound:
            assert actor != owner or self._stored(owner, task_id) is None
            return
        assert actor == owner
        self.deleted += 1

    @rule(ref=tasks)
    def expire(self, ref):
        owner, task_id = ref
        before = self._stored(owner, task_id)
        expired = services.expire_approval(
            self.fakes.tasks, self.fakes.clock, owner.user_id, task_id
        )
        assert (expired is not None) == (before is not None and before.awaiting_approval)

    @rule(minutes=st.integers(0, 60 * 24 * 30))
    def time_passes(self, minutes):
        self.fakes.clock.advance(timedelta(minutes=minutes))

    def _stored(self, owner, task_id) -> Task | None:
        return self.fakes.tasks.get(owner.user_id, task_id)

    @invariant()
    def versions_strictly_increase(self):
        for old, new in self.fakes.tasks.changes:
            if old is not None and new is not None:
                assert new.version == old.version + 1
                assert new.updated_at >= old.updated_at

    @invariant()
    def users_only_list_their_own(self):
        for user in USERS:
            page = self.service.list_tasks(user, TaskQuery(limit=100))
            assert all(t.owner_id == user.user_id for t in page.items)
            mine = {t.id for (o, _), t in self.fakes.tasks.tasks.items() if o == user.user_id}
            assert {t.id for t in page.items} == mine

    @invariant()
    def events_match_state_changes(self):
        events = self.fakes.tasks.events()
        kinds = Counter(type(e) for e in events)
        assert kinds[TaskCreated] == self.created
        assert kinds[TaskDeleted] == self.deleted
        assert kinds[TaskCompleted] == self.completions
        assert len({e.event_id for e in events}) == len(events)
        for old, new in self.fakes.tasks.changes:
            derived = derive_events(old, new, self.fakes.clock.now())
            if old is not None and new is not None:
                assert [type(e) for e in derived][:1] == [TaskUpdated]
                assert (ApprovalDecided in map(type, derived)) == (
                    old.approval != new.approval and old.approval == "pending"
                )
                assert (ApprovalRequested in map(type, derived)) == (
                    new.approval == "pending" and old.approval != "pending"
                )

    @invariant()
    def stats_agree_with_the_tasks(self):
        # A fresh store fed every event twice (redelivery) must equal the live counts.
        fakes = in_memory_service()
        for event in self.fakes.tasks.events() * 2:
            services.record_stats(fakes.stats, event)
        for user in USERS:
            live = Counter(
                t.status.value for (o, _), t in self.fakes.tasks.tasks.items() if o == user.user_id
            )
            counted = fakes.service.get_stats(user).by_status
            assert {k: v for k, v in counted.items() if v} == dict(live)


TaskUseCases.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestTaskUseCases = TaskUseCases.TestCase


@given(st.lists(st.sampled_from(Status), max_size=12))
def test_any_status_walk_keeps_invariants(walk: list[Status]) -> None:
    fakes = in_memory_service()
    alice = USERS[0]
    task = fakes.service.create_task(alice, CreateTask(title="walk")).task
    for target in walk:
        try:
            task = fakes.service.transition(alice, task.id, target)
        except DomainError:
            continue
        assert (task.completed_at is not None) == (task.status is Status.COMPLETED)
    versions = [new.version for _, new in fakes.tasks.changes if new is not None]
    assert versions == sorted(set(versions))
