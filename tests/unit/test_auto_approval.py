"""Auto-approval rules (`taskcore.auto_approval`): their grammar, the new tasks and the edits
they approve, the events that follow: unit tests and properties."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from datetime import timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from taskcore import services
from taskcore.auto_approval import (
    AutoApprovalRule,
    format_rule,
    is_auto_decided,
    matching_rule,
    parse_rule,
    parse_rules,
    rules_from_text,
    rules_to_text,
)
from taskcore.commands import CreateTask, UpdateTask
from taskcore.errors import DomainError, Forbidden
from taskcore.events import (
    ApprovalDecided,
    ApprovalRequested,
    Event,
    TaskCreated,
    TaskUpdated,
    derive_events,
)
from taskcore.model import Approval, Decision, Principal, Priority, Status, TaskId
from taskcore.services import TaskService
from taskcore.testing import Fakes, in_memory_service, principal

LEADS_HIGH = AutoApprovalRule(name="leads-high", priorities=["high"], groups=["leads"])
GROUPS = st.frozensets(st.sampled_from(["leads", "approvers", "staff", "ops"]), max_size=3)
NEEDING = [Priority.HIGH, Priority.CRITICAL]


@given(
    priorities=st.frozensets(st.sampled_from(NEEDING), min_size=1),
    rule_groups=GROUPS.filter(bool),
    priority=st.sampled_from(list(Priority)),
    groups=GROUPS,
)
def test_a_rule_applies_exactly_to_its_priorities_and_its_groups_members(
    priorities: frozenset[Priority],
    rule_groups: frozenset[str],
    priority: Priority,
    groups: frozenset[str],
) -> None:
    rule = AutoApprovalRule(name="r", priorities=priorities, groups=rule_groups)
    assert rule.applies(priority, groups) == (priority in priorities and bool(groups & rule_groups))


@given(groups=GROUPS)
def test_critical_is_never_approved_by_a_rule_that_does_not_list_it(groups: frozenset[str]) -> None:
    rule = AutoApprovalRule(
        name="all-groups", priorities=["high"], groups=["leads", "staff", "ops"]
    )
    assert not rule.applies(Priority.CRITICAL, groups | {"leads"})


def test_the_first_matching_rule_wins() -> None:
    critical = AutoApprovalRule(
        name="ops-critical", priorities=["critical", "high"], groups=["ops"]
    )
    rules = (LEADS_HIGH, critical)
    assert matching_rule(rules, Priority.HIGH, frozenset({"leads", "ops"})) is LEADS_HIGH
    assert matching_rule(rules, Priority.CRITICAL, frozenset({"leads", "ops"})) is critical
    assert matching_rule(rules, Priority.CRITICAL, frozenset({"leads"})) is None
    assert matching_rule((), Priority.HIGH, frozenset({"leads"})) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Leads", "priorities": ["high"], "groups": ["leads"]}, "lower-case"),
        ({"name": "x" * 64, "priorities": ["high"], "groups": ["leads"]}, "1 to 63"),
        ({"name": "r", "priorities": [], "groups": ["leads"]}, "at least one priority"),
        ({"name": "r", "priorities": ["low", "high"], "groups": ["leads"]}, "need no approval"),
        ({"name": "r", "priorities": ["high"], "groups": []}, "at least one group"),
        ({"name": "r", "priorities": ["high"], "groups": [""]}, "non-empty"),
    ],
)
def test_a_rule_that_cannot_mean_anything_is_refused(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        AutoApprovalRule(**fields)  # type: ignore[arg-type]


def test_an_unknown_priority_is_refused() -> None:
    with pytest.raises(ValueError, match="urgent"):
        AutoApprovalRule(name="r", priorities=["urgent"], groups=["leads"])


def service_with_rules() -> tuple[TaskService, Fakes]:
    fakes = in_memory_service()
    return attrs.evolve(fakes.service, auto_approval=(LEADS_HIGH,)), fakes


def test_a_leads_high_task_starts_approved_by_the_rule() -> None:
    service, fakes = service_with_rules()
    lee = principal("lee", "leads")
    created = service.create_task(lee, CreateTask(title="Ship it", priority=Priority.HIGH)).task
    assert created.approval is Approval.APPROVED
    assert created.approval_decided_by == "auto:leads-high"
    assert created.approval_decided_at == created.created_at == fakes.clock.now()
    assert created.version == 1
    assert not created.awaiting_approval  # never in the approvers' queue
    assert service.transition(lee, created.id, Status.IN_PROGRESS).status is Status.IN_PROGRESS


@pytest.mark.parametrize(
    ("who", "priority", "approval"),
    [
        (principal("sam", "staff"), Priority.HIGH, Approval.PENDING),
        (principal("lee", "leads"), Priority.CRITICAL, Approval.PENDING),
        (principal("lee", "leads"), Priority.MEDIUM, Approval.NOT_REQUIRED),
    ],
)
def test_others_wait_for_a_person_or_need_nobody(
    who: Principal, priority: Priority, approval: Approval
) -> None:
    service, _ = service_with_rules()
    created = service.create_task(who, CreateTask(title="t", priority=priority)).task
    assert created.approval is approval
    assert created.approval_decided_by is None


# -- the grammar of a stack's rules (`tasks:autoApprove`) ---------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "priorities", "groups"),
    [
        ("leads: high by leads, oncall", "leads", {"high"}, {"leads", "oncall"}),
        ("ops:critical,high by ops", "ops", {"high", "critical"}, {"ops"}),
        ("  on-call-2 :  high  by  pager-duty  ", "on-call-2", {"high"}, {"pager-duty"}),
        ("x: high by by", "x", {"high"}, {"by"}),  # only the first `by` separates
    ],
)
def test_a_rule_reads_as_name_priorities_by_groups(
    text: str, name: str, priorities: set[str], groups: set[str]
) -> None:
    rule = parse_rule(text)
    assert (rule.name, {p.value for p in rule.priorities}, set(rule.groups)) == (
        name,
        priorities,
        groups,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("leads high by leads", "expected '<name>: <priority>"),
        ("leads: high, leads", "expected '<name>: <priority>"),
        ("leads: by leads", "it names no priority"),
        ("leads: high by", "it names no group"),
        ("leads: high, by leads", "an empty priority"),
        ("leads: high by leads,", "an empty group"),
        ("leads: high critical by leads", "separate priorities with commas"),
        ("leads: high by team leads", "group 'team leads': separate groups with commas"),
        ("leads: high, high by leads", "priority 'high' twice"),
        ("leads: urgent by leads", "unknown priority 'urgent' \\(priorities: low, medium"),
        ("leads: medium, high by leads", "medium tasks need no approval"),
        ("Leads: high by leads", "rule name 'Leads': lower-case"),
        (": high by leads", "rule name '': lower-case"),
        (42, "a rule is a string like 'leads: high by leads, oncall', not 42"),
    ],
)
def test_a_rule_that_does_not_read_says_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rule(text)


rule_names = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
group_names = st.from_regex(r"[^\s,]{1,12}", fullmatch=True)
rules = st.builds(
    AutoApprovalRule,
    name=rule_names,
    priorities=st.frozensets(st.sampled_from(NEEDING), min_size=1),
    groups=st.frozensets(group_names, min_size=1, max_size=4),
)


@given(rule=rules)
def test_a_rules_text_reads_back_as_the_rule(rule: AutoApprovalRule) -> None:
    assert parse_rule(format_rule(rule)) == rule


@given(texts=st.lists(rules, max_size=5, unique_by=lambda r: r.name))
def test_the_rules_travel_as_one_value_in_order(texts: list[AutoApprovalRule]) -> None:
    value = rules_to_text(texts)
    assert rules_from_text(value) == tuple(texts)
    assert "\n" not in value
    assert isinstance(json.loads(value), list)


def test_two_rules_with_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match=r"rules 1 and 3 are both named 'leads'.*auto:leads"):
        parse_rules(["leads: high by leads", "ops: critical by ops", "leads: critical by x"])


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["leads: high by leads", "ops high"], "rule 2 \\('ops high'\\): expected"),
        ("leads: high by leads", "a list of rules like"),
        ({"leads": "high"}, "a list of rules like"),
    ],
)
def test_a_list_names_the_rule_that_is_wrong(texts: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rules(texts)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["", "leads: high by leads", '{"a": 1}', "[1]"])
def test_a_value_that_is_not_a_list_of_rules_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"not a JSON list of rules|rule 1"):
        rules_from_text(value)


# -- edits that raise the priority -------------------------------------------------------------


def test_a_leads_edit_to_high_is_approved_by_the_rule_at_the_edits_time() -> None:
    service, fakes = service_with_rules()
    lee = principal("lee", "leads")
    task = service.create_task(lee, CreateTask(title="later", priority=Priority.LOW)).task
    fakes.clock.advance(timedelta(minutes=5))
    raised = service.update_task(lee, task.id, UpdateTask(priority=Priority.HIGH))
    assert (raised.approval, raised.approval_decided_by) == (Approval.APPROVED, "auto:leads-high")
    assert raised.approval_decided_at == raised.updated_at == fakes.clock.now()
    assert raised.version == task.version + 1
    assert not raised.awaiting_approval
    started = service.update_task(lee, task.id, UpdateTask(status=Status.IN_PROGRESS))
    assert started.status is Status.IN_PROGRESS


def test_raising_and_starting_in_one_request_starts_at_once() -> None:
    service, _ = service_with_rules()
    lee = principal("lee", "leads")
    task = service.create_task(lee, CreateTask(title="now", priority=Priority.MEDIUM)).task
    both = service.update_task(
        lee, task.id, UpdateTask(priority=Priority.HIGH, status=Status.IN_PROGRESS)
    )
    assert (both.status, both.approval, both.version) == (
        Status.IN_PROGRESS,
        Approval.APPROVED,
        task.version + 1,
    )


@pytest.mark.parametrize(
    ("who", "priority", "approval"),
    [
        (principal("sam", "staff"), Priority.HIGH, Approval.PENDING),
        (principal("lee", "leads"), Priority.CRITICAL, Approval.PENDING),
    ],
)
def test_other_raises_still_wait_for_a_person(
    who: Principal, priority: Priority, approval: Approval
) -> None:
    service, _ = service_with_rules()
    task = service.create_task(who, CreateTask(title="t", priority=Priority.LOW)).task
    raised = service.update_task(who, task.id, UpdateTask(priority=priority))
    assert (raised.approval, raised.approval_decided_by) == (approval, None)


def test_a_task_already_awaiting_a_person_is_not_approved_by_a_later_edit() -> None:
    """The rule approves only what would start to need an approval: a request already in the
    queue stays the approvers' (its workflow waits for them)."""
    fakes = in_memory_service()
    lee = principal("lee", "leads")
    task = fakes.service.create_task(lee, CreateTask(title="t", priority=Priority.HIGH)).task
    service = attrs.evolve(fakes.service, auto_approval=(LEADS_HIGH,))
    edited = service.update_task(lee, task.id, UpdateTask(title="t2"))
    assert (edited.approval, edited.awaiting_approval) == (Approval.PENDING, True)


# Rules over the groups principals have here, so that they match often.
group_rules = st.builds(
    AutoApprovalRule,
    name=rule_names,
    priorities=st.frozensets(st.sampled_from(NEEDING), min_size=1),
    groups=GROUPS.filter(bool),
)
edits = st.fixed_dictionaries(
    {"priority": st.sampled_from(Priority)}, optional={"title": st.sampled_from(["a", "b"])}
) | st.fixed_dictionaries({"title": st.sampled_from(["a", "b"])})
# Mostly a task still pending (the case where an edit can ask for an approval).
moves: st.SearchStrategy[list[Status]] = st.just([]) | st.lists(
    st.sampled_from([Status.IN_PROGRESS, Status.COMPLETED]), min_size=1, max_size=2
)


@settings(max_examples=300)
@given(
    start=st.sampled_from(Priority),
    moves=moves,
    change=edits,
    groups=GROUPS,
    rule_set=st.lists(group_rules, max_size=3, unique_by=lambda r: r.name),
)
def test_an_edit_is_approved_by_a_rule_exactly_where_it_would_ask_a_person(
    start: Priority,
    moves: list[Status],
    change: dict[str, Any],
    groups: frozenset[str],
    rule_set: list[AutoApprovalRule],
) -> None:
    """The same edit, with and without rules: identical, except that where the edit makes the
    task await a person and a rule matches (the new priority, the editor's groups), the task is
    approved by that rule instead, decided at the edit's time; never awaiting anyone."""
    owner = Principal(user_id=principal("o").user_id, groups=groups)
    plain = in_memory_service()
    task = plain.service.create_task(owner, CreateTask(title="t", priority=start)).task
    for move in moves:
        try:
            task = plain.service.transition(owner, task.id, move)
        except DomainError:
            break
    ruled = attrs.evolve(plain.service, auto_approval=tuple(rule_set))
    try:
        without = plain.service.tasks.get(owner.user_id, task.id)
        asked = task.edit(plain.clock.now(), **change)
    except DomainError:
        return
    assert without == task
    edited = ruled.update_task(owner, task.id, UpdateTask(**change))
    match = matching_rule(rule_set, asked.priority, groups)
    if asked.approval is Approval.PENDING and task.approval is not Approval.PENDING and match:
        assert edited == attrs.evolve(
            asked,
            approval=Approval.APPROVED,
            approval_decided_by=match.decided_by,
            approval_decided_at=plain.clock.now(),
        )
        assert is_auto_decided(edited)
        assert not edited.awaiting_approval
    else:
        assert edited == asked
    if Priority.CRITICAL not in {p for r in rule_set for p in r.priorities}:
        assert not (edited.priority is Priority.CRITICAL and is_auto_decided(edited))


# -- events ------------------------------------------------------------------------------------


def kinds(events: list[Event]) -> list[type[Event]]:
    return [type(e) for e in events]


def test_an_auto_approved_task_is_requested_and_decided_at_creation() -> None:
    service, fakes = service_with_rules()
    task = service.create_task(
        principal("lee", "leads"), CreateTask(title="t", priority=Priority.HIGH)
    )
    events = derive_events(None, task.task, fakes.clock.now())
    assert kinds(events) == [TaskCreated, ApprovalRequested, ApprovalDecided]
    decided = events[2]
    assert isinstance(decided, ApprovalDecided)
    assert decided.outcome is Approval.APPROVED
    assert len({e.event_id for e in events}) == 3


def test_an_auto_approving_edit_is_requested_and_decided() -> None:
    service, fakes = service_with_rules()
    lee = principal("lee", "leads")
    task = service.create_task(lee, CreateTask(title="t", priority=Priority.LOW)).task
    raised = service.update_task(lee, task.id, UpdateTask(priority=Priority.HIGH))
    events = derive_events(task, raised, fakes.clock.now())
    assert kinds(events) == [TaskUpdated, ApprovalRequested, ApprovalDecided]
    assert isinstance(events[0], TaskUpdated)
    assert events[0].changed == ("priority", "approval")
    # Later changes of the approved task request nothing again.
    renamed = service.update_task(lee, task.id, UpdateTask(title="t2"))
    started = service.transition(lee, task.id, Status.IN_PROGRESS)
    assert kinds(derive_events(raised, renamed, fakes.clock.now())) == [TaskUpdated]
    assert kinds(derive_events(renamed, started, fakes.clock.now())) == [TaskUpdated]


def test_a_person_approved_task_is_unchanged() -> None:
    """Requested when it becomes pending, decided when a person decides: one each."""
    service, fakes = service_with_rules()
    sam, bob = principal("sam", "staff"), principal("bob", "approvers")
    task = service.create_task(sam, CreateTask(title="t", priority=Priority.HIGH)).task
    assert kinds(derive_events(None, task, fakes.clock.now())) == [TaskCreated, ApprovalRequested]
    decided = service.decide_approval(bob, task.id, Decision.APPROVE)
    assert kinds(derive_events(task, decided, fakes.clock.now())) == [TaskUpdated, ApprovalDecided]


def test_the_workflow_consumer_has_nothing_to_release_for_an_auto_approval() -> None:
    service, fakes = service_with_rules()
    task = service.create_task(
        principal("lee", "leads"), CreateTask(title="t", priority=Priority.HIGH)
    )
    (decided,) = [e for e in fakes.tasks.events() if isinstance(e, ApprovalDecided)]
    assert services.resume_workflow(fakes.workflow, decided) is False
    assert services.resume_workflow(fakes.workflow, decided) is False  # redelivered
    assert (task.task.owner_id, task.task.id) not in fakes.workflow.decisions


USERS = [principal("lee", "leads"), principal("sam", "staff"), principal("bob", "approvers")]


class AutoApprovalUseCases(RuleBasedStateMachine):
    """Any sequence of creates, edits, moves, decisions and expiries under a rule set: no
    auto-approved task is ever in the approvers' queue, only the rule's group gets one, and
    each change yields exactly its approval events."""

    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.fakes = in_memory_service()
        self.service = attrs.evolve(self.fakes.service, auto_approval=(LEADS_HIGH,))

    @rule(target=tasks, who=st.sampled_from(USERS), priority=st.sampled_from(Priority))
    def create(self, who: Principal, priority: Priority) -> tuple[Principal, str]:
        return (
            who,
            self.service.create_task(who, CreateTask(title="t", priority=priority)).task.id,
        )

    @rule(ref=tasks, priority=st.sampled_from(Priority))
    def edit(self, ref: tuple[Principal, str], priority: Priority) -> None:
        owner, task_id = ref
        with contextlib.suppress(DomainError):
            self.service.update_task(owner, task_id, UpdateTask(priority=priority))

    @rule(ref=tasks, goal=st.sampled_from(Status))
    def move(self, ref: tuple[Principal, str], goal: Status) -> None:
        owner, task_id = ref
        with contextlib.suppress(DomainError):
            self.service.transition(owner, task_id, goal)

    @rule(ref=tasks, decision=st.sampled_from(Decision))
    def decide(self, ref: tuple[Principal, str], decision: Decision) -> None:
        with contextlib.suppress(DomainError):
            self.service.decide_approval(USERS[2], ref[1], decision)

    @rule(ref=tasks)
    def expire(self, ref: tuple[Principal, str]) -> None:
        owner, task_id = ref
        clock, tasks = self.fakes.clock, self.fakes.tasks
        services.expire_approval(tasks, clock, owner.user_id, TaskId(task_id))

    @invariant()
    def auto_approved_tasks_never_wait_and_belong_to_the_group(self) -> None:
        queue = self.service.list_awaiting_approval(USERS[2], limit=100).items
        assert not any(is_auto_decided(t) for t in queue)
        for task in self.fakes.tasks.tasks.values():
            if is_auto_decided(task):
                assert task.owner_id == "lee"
                assert task.approval_decided_by == "auto:leads-high"

    @invariant()
    def each_change_yields_its_approval_events(self) -> None:
        for old, new in self.fakes.tasks.changes:
            if new is None:
                continue
            found = Counter(type(e) for e in derive_events(old, new, self.fakes.clock.now()))
            was_pending = old is not None and old.approval is Approval.PENDING
            auto = is_auto_decided(new) and not (old is not None and is_auto_decided(old))
            asked = new.approval is Approval.PENDING and not was_pending
            decided = was_pending and new.approval is not Approval.PENDING
            assert found[ApprovalRequested] == int(asked or auto)
            assert found[ApprovalDecided] == int(decided or auto)
            assert not (auto and (asked or decided))


AutoApprovalUseCases.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
TestAutoApprovalUseCases = AutoApprovalUseCases.TestCase


def test_no_person_can_decide_as_a_rule() -> None:
    """`approvalDecidedBy: auto:<rule>` always means a rule: an approver whose id (a token's
    `sub`, which another issuer could choose) looks like one may not decide."""
    service, _ = service_with_rules()
    task = service.create_task(principal("sam"), CreateTask(title="t", priority=Priority.HIGH))
    with pytest.raises(Forbidden, match="'auto:' are the rules'"):
        service.decide_approval(
            principal("auto:leads", "approvers"), task.task.id, Decision.APPROVE
        )
    assert service.tasks.get(task.task.owner_id, task.task.id) == task.task
