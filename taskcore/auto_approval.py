"""Auto-approval rules: which approvals need no person (issue #17; a stack's config will name
its rules). A rule approves a new task of one of its priorities created by a member of one of
its groups; the task then starts approved, `approvalDecidedBy` is `auto:<rule>`, and it never
enters the approvers' queue. `critical` is approved by a rule only when the rule lists it:
nothing is implied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from taskcore.model import Priority, UserId

RULE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
AUTO_PREFIX = "auto:"


def _name(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    if not RULE_NAME.match(value):
        raise ValueError(f"rule name {value!r}: lower-case letters, digits and '-', 1 to 63")


def _priorities(
    _instance: object, _attribute: attrs.Attribute[frozenset[Priority]], value: frozenset[Priority]
) -> None:
    if not value:
        raise ValueError("a rule names at least one priority")
    needless = sorted(p.value for p in value if not p.needs_approval)
    if needless:
        raise ValueError(f"{', '.join(needless)} tasks need no approval: no rule for them")


def _groups(
    _instance: object, _attribute: attrs.Attribute[frozenset[str]], value: frozenset[str]
) -> None:
    if not value or not all(isinstance(g, str) and g for g in value):
        raise ValueError("a rule names at least one group, each a non-empty string")


def _priority_set(values: Iterable[Priority | str]) -> frozenset[Priority]:
    return frozenset(Priority(v) for v in values)


def _group_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen(kw_only=True)
class AutoApprovalRule:
    name: str = attrs.field(validator=_name)
    priorities: frozenset[Priority] = attrs.field(converter=_priority_set, validator=_priorities)
    groups: frozenset[str] = attrs.field(converter=_group_set, validator=_groups)

    def applies(self, priority: Priority, groups: frozenset[str]) -> bool:
        """Whether a task of `priority`, by a member of `groups`, is approved by this rule."""
        return priority in self.priorities and not self.groups.isdisjoint(groups)

    @property
    def decided_by(self) -> UserId:
        """What the task shows as `approvalDecidedBy`."""
        return UserId(AUTO_PREFIX + self.name)


def matching_rule(
    rules: Iterable[AutoApprovalRule], priority: Priority, groups: frozenset[str]
) -> AutoApprovalRule | None:
    """The first rule that approves a task of `priority` by a member of `groups`, if any."""
    return next((rule for rule in rules if rule.applies(priority, groups)), None)
