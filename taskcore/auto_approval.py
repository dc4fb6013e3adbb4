"""Auto-approval rules: which approvals need no person. A rule approves a task of one of its
priorities created by a member of one of its groups, or edited by one so that it would need an
approval (its priority raised to one of the rule's); the task is then approved, decided at that
moment, `approvalDecidedBy` is `auto:<rule>`, and it never enters the approvers' queue.
`critical` is approved by a rule only when the rule lists it: nothing is implied.

A stack names its rules in config (`tasks:autoApprove`), one string per rule, in this grammar::

    <name>: <priority>[, <priority>...] by <group>[, <group>...]
    leads: high by leads, oncall      # rule `leads` approves high tasks of leads and oncall

`parse_rule` reads it and `format_rule` writes it back (canonical: priorities in their order,
groups sorted); `rules_to_text` / `rules_from_text` carry a stack's rules, in order (the first
match wins), to the API function as one compact JSON list of such strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

import attrs

from taskcore.model import Approval, Priority, Task, UserId

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


def is_auto_decided(task: Task) -> bool:
    """Whether a rule, not a person, approved `task` (it never waited in the queue)."""
    decided_by = task.approval_decided_by
    return (
        task.approval is Approval.APPROVED
        and decided_by is not None
        and decided_by.startswith(AUTO_PREFIX)
    )


GRAMMAR = "'<name>: <priority>[, <priority>...] by <group>[, <group>...]'"
EXAMPLE = "'leads: high by leads, oncall'"
_RULE = re.compile(r"(?P<name>[^:]*):(?P<priorities>.*?)\bby\b(?P<groups>.*)", re.DOTALL)


def _items(text: str, what: str, plural: str) -> list[str]:
    """A comma-separated list. Whitespace inside an item is refused: a token's groups claim
    is split on whitespace and commas (`handlers.claims.parse_groups`), so no group a rule
    could match holds either."""
    items = [item.strip() for item in text.split(",")]
    if items == [""]:
        raise ValueError(f"it names no {what}")
    for item in items:
        if not item:
            raise ValueError(f"an empty {what} (a stray comma)")
        if any(ch.isspace() for ch in item):
            raise ValueError(f"{what} {item!r}: separate {plural} with commas")
    if len(set(items)) != len(items):
        twice = next(item for item in items if items.count(item) > 1)
        raise ValueError(f"it names {what} {twice!r} twice")
    return items


def parse_rule(text: str) -> AutoApprovalRule:
    """One rule from its text (the grammar above); ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"a rule is a string like {EXAMPLE}, not {text!r}")
    match = _RULE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected {GRAMMAR}, e.g. {EXAMPLE}")
    name = match["name"].strip()
    priorities = _items(match["priorities"], "priority", "priorities")
    known = [p.value for p in Priority]
    if unknown := [p for p in priorities if p not in known]:
        raise ValueError(f"unknown priority {unknown[0]!r} (priorities: {', '.join(known)})")
    groups = _items(match["groups"], "group", "groups")
    return AutoApprovalRule(name=name, priorities=priorities, groups=groups)


def format_rule(rule: AutoApprovalRule) -> str:
    """The rule's canonical text: `parse_rule(format_rule(rule)) == rule`."""
    priorities = ", ".join(p.value for p in Priority if p in rule.priorities)
    return f"{rule.name}: {priorities} by {', '.join(sorted(rule.groups))}"


def parse_rules(texts: Sequence[str]) -> tuple[AutoApprovalRule, ...]:
    """A stack's rules, in order; ValueError naming the rule (1-based) that is wrong, or the
    two that share a name (`auto:<name>` must say which rule decided)."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(f"a list of rules like [{EXAMPLE}] is expected, not {texts!r}")
    rules: list[AutoApprovalRule] = []
    for number, text in enumerate(texts, start=1):
        try:
            rule = parse_rule(text)
        except ValueError as error:
            raise ValueError(f"rule {number} ({text!r}): {error}") from None
        for earlier, other in enumerate(rules, start=1):
            if other.name == rule.name:
                raise ValueError(
                    f"rules {earlier} and {number} are both named {rule.name!r}: a rule's name "
                    f"is what an approved task shows (approvalDecidedBy {rule.decided_by!r})"
                )
        rules.append(rule)
    return tuple(rules)


def rules_to_text(rules: Iterable[AutoApprovalRule]) -> str:
    """The rules as one compact value (an environment variable's): a JSON list of their
    canonical texts, in order."""
    return json.dumps([format_rule(rule) for rule in rules], separators=(",", ":"))


def rules_from_text(value: str) -> tuple[AutoApprovalRule, ...]:
    """What `rules_to_text` wrote; ValueError if it is not that."""
    try:
        texts = json.loads(value)
    except ValueError:
        raise ValueError(f"not a JSON list of rules: {value!r}") from None
    if not isinstance(texts, list):
        raise ValueError(f"not a JSON list of rules: {value!r}")
    return parse_rules(texts)
