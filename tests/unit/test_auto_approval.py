"""Auto-approval rules (`taskcore.auto_approval`) and a new task they approve: unit tests and
properties."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskcore.auto_approval import AutoApprovalRule, matching_rule
from taskcore.commands import CreateTask
from taskcore.model import Approval, Principal, Priority, Status
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
