"""Run the policy pack's own validators over a mocked run of the program (`infra.mocks`), as
the CrossGuard analyzer would over a preview: resource policies on each resource's inputs (with
pulumi-aws's generated names), stack policies on every resource's outputs.

    python -m policy.offline --stack prod
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.mocks import Inventory, Resource, run
from policy.rules import POLICIES


@attrs.frozen
class Violation:
    policy: str
    level: EnforcementLevel
    message: str
    urn: str | None

    def __str__(self) -> str:
        return f"[{self.level.value}] {self.policy}: {self.message}"


def _options(resource: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=[],
        delete_before_replace=resource.delete_before_replace,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent or None,
    )


def _defaults(policy: Policy) -> dict[str, Any]:
    schema = getattr(policy, "config_schema", None)
    properties = schema.properties if schema is not None else {}
    return {key: spec["default"] for key, spec in properties.items() if "default" in spec}


def check(
    inventory: Inventory,
    policies: Sequence[Policy] = POLICIES,
    config: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Violation]:
    """Every violation the pack reports for `inventory`; `config` is the policy pack config
    (`{policy name: {key: value}}`), over each policy's schema defaults."""
    resources = [r for r in inventory.resources if r.custom]
    return [
        violation
        for policy in policies
        for violation in _run(
            policy, resources, {**_defaults(policy), **(config or {}).get(policy.name, {})}
        )
    ]


def _run(
    policy: Policy, resources: Sequence[Resource], settings: dict[str, Any]
) -> list[Violation]:
    level = policy.enforcement_level or EnforcementLevel.ADVISORY
    found: list[Violation] = []
    if isinstance(policy, ResourceValidationPolicy):
        for resource in resources:
            args = ResourceValidationArgs(
                resource.type,
                resource.provider_inputs,
                resource.urn,
                resource.name,
                _options(resource),
                None,
                settings,
            )

            def on_resource(message: str, urn: str | None = None, at: str = resource.urn) -> None:
                found.append(Violation(policy.name, level, message, urn or at))

            policy.validate(args, on_resource)
    elif isinstance(policy, StackValidationPolicy):
        stack = [
            PolicyResource(r.type, r.outputs, r.urn, r.name, _options(r), None, None, [], {})
            for r in resources
        ]

        def on_stack(message: str, urn: str | None = None) -> None:
            found.append(Violation(policy.name, level, message, urn))

        policy.validate(StackValidationArgs(stack, settings), on_stack)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack", default="dev", help="stack name (Pulumi.<stack>.yaml)")
    args = parser.parse_args(argv)
    found = check(run(args.stack))
    for violation in found:
        print(violation)
    mandatory = [v for v in found if v.level == EnforcementLevel.MANDATORY]
    print(
        f"policy pack over stack {args.stack}: {len(POLICIES)} policies, "
        f"{len(mandatory)} mandatory and {len(found) - len(mandatory)} advisory violations"
    )
    return 1 if mandatory else 0


if __name__ == "__main__":
    raise SystemExit(main())
