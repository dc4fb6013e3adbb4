"""State machines: one Step Functions state machine per manifest `Workflow`.

The ASL comes from the workflow's `definition` function (e.g. `stack.workflows:approval_definition`,
a pure function returning a dict), called with the workflow's `steps` resolved to Lambda ARNs
and its `arguments` resolved to resource values. A step is the function's `live` alias. Each
state machine logs every event (level ALL, with execution data) to a KMS-encrypted log group,
is traced with X-Ray, and has its own role: its manifest permissions, invoking its own steps'
`live` aliases (nothing else of those functions), and log delivery. Its `started_by` rule
on the bus starts it through a role that may start this state machine and nothing else, with the
rule's retry policy and a dead-letter queue.

State machine names are chosen (`infra.wiring.state_machine_name`), not generated, so that
functions may be granted `workflow.respond` on a state machine before it exists.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import attrs
import pulumi
import pulumi_aws as aws

from infra.context import Deployment, policy, trust
from infra.events import rule_with_dead_letters
from infra.functions import Functions
from infra.wiring import ENCRYPTED, UNSCOPED_ACTIONS, Wiring, allow, state_machine_name
from stack.manifest import Function, Workflow

LOG_DELIVERY = sorted(a for a in UNSCOPED_ACTIONS if a.startswith("logs:"))
TRACING = sorted(a for a in UNSCOPED_ACTIONS if a.startswith("xray:"))
Definition = Callable[..., Mapping[str, Any]]


def load_definition(reference: str) -> Definition:
    """`module:function` to the function."""
    module, _, attribute = reference.partition(":")
    return cast(Definition, getattr(importlib.import_module(module), attribute))


def check_steps(workflows: Iterable[Workflow], functions: Iterable[Function]) -> None:
    """Workflow steps and `invoked_by_workflow` must agree: a step is a manifest function
    marked as one, and a function so marked is some workflow's step."""
    marked = {f.name for f in functions if f.invoked_by_workflow}
    known = {f.name for f in functions}
    stepped = {name for w in workflows for name in w.steps.values()}
    if unknown := stepped - known:
        raise ValueError(f"workflow steps name no manifest function: {sorted(unknown)}")
    if unmarked := stepped - marked:
        raise ValueError(f"workflow steps not marked invoked_by_workflow: {sorted(unmarked)}")
    if unused := marked - stepped:
        raise ValueError(f"invoked_by_workflow, but no workflow's step: {sorted(unused)}")


@attrs.frozen
class StateMachinesArgs:
    deployment: Deployment
    workflows: Sequence[Workflow]
    functions: Functions
    wiring: Wiring


class StateMachines(pulumi.ComponentResource):
    state_machines: dict[str, aws.sfn.StateMachine]
    dead_letter_queues: dict[str, aws.sqs.Queue]

    def __init__(
        self, name: str, args: StateMachinesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tasks:state_machines:StateMachines", name, None, opts)
        self.state_machines, self.dead_letter_queues = {}, {}
        check_steps(args.workflows, args.functions.manifest.values())
        for workflow in args.workflows:
            self._workflow(name, workflow, args)
        self.register_outputs({"stateMachines": {n: m.arn for n, m in self.state_machines.items()}})

    def _workflow(self, name: str, workflow: Workflow, args: StateMachinesArgs) -> None:
        env, wiring = args.deployment, args.wiring
        child = pulumi.ResourceOptions(parent=self)
        base = f"{name}-{workflow.name}"
        physical = state_machine_name(env, workflow)
        log_group = aws.cloudwatch.LogGroup(
            f"{base}-logs",
            name=f"/aws/vendedlogs/states/{physical}",
            retention_in_days=env.config.log_retention_days,
            kms_key_id=wiring.key_arn,
            opts=child,
        )
        role = aws.iam.Role(
            f"{base}-role",
            description=f"{physical}: its service integrations and its own steps",
            assume_role_policy=trust("states", env.account_id),
            opts=child,
        )
        steps = {
            arg: args.functions.aliases[function].arn for arg, function in workflow.steps.items()
        }
        statements = [
            *wiring.statements(workflow.permissions),
            allow(LOG_DELIVERY, "*"),
            allow(TRACING, "*"),
        ]
        if steps:
            invoked = [args.functions.aliases[f].arn for f in sorted(set(workflow.steps.values()))]
            statements.append(allow(["lambda:InvokeFunction"], invoked))
        if any(p.startswith(ENCRYPTED) for p in workflow.permissions):
            statements.append(wiring.key_statement(workflow.permissions))
        role_policy = aws.iam.RolePolicy(
            f"{base}-policy", role=role.id, policy=policy(statements), opts=child
        )
        build = load_definition(workflow.definition)
        values: dict[str, pulumi.Input[Any]] = {
            **steps,
            **{arg: wiring.value(resource) for arg, resource in workflow.arguments.items()},
        }
        definition = pulumi.Output.all(**values).apply(
            lambda resolved: json.dumps(build(**resolved), indent=2)
        )
        machine = aws.sfn.StateMachine(
            base,
            name=physical,
            type="STANDARD",
            role_arn=role.arn,
            definition=definition,
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ALL",
                include_execution_data=True,
                log_destination=pulumi.Output.concat(log_group.arn, ":*"),
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[role_policy], delete_before_replace=True
            ),
        )
        self.state_machines[workflow.name] = machine
        self._start_rule(base, workflow, machine, args)

    def _start_rule(
        self, base: str, workflow: Workflow, machine: aws.sfn.StateMachine, args: StateMachinesArgs
    ) -> None:
        env, wiring = args.deployment, args.wiring
        child = pulumi.ResourceOptions(parent=self)
        rule, queue, retry = rule_with_dead_letters(
            f"{base}-start",
            workflow.started_by,
            deployment=env,
            bus_name=wiring.bus_name,
            key_arn=wiring.key_arn,
            parent=self,
            description=f"{workflow.started_by.name} -> state machine {workflow.name}",
        )
        starter = aws.iam.Role(
            f"{base}-starter",
            description=f"EventBridge starts {state_machine_name(env, workflow)}",
            assume_role_policy=trust("events", env.account_id),
            opts=child,
        )
        starter_policy = aws.iam.RolePolicy(
            f"{base}-starter-policy",
            role=starter.id,
            policy=policy([allow(["states:StartExecution"], [machine.arn])]),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{base}-start-target",
            target_id=f"state-machine-{workflow.name}",
            rule=rule.name,
            event_bus_name=wiring.bus_name,
            arn=machine.arn,
            role_arn=starter.arn,
            retry_policy=retry,
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=queue.arn),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[starter_policy]),
        )
        self.dead_letter_queues[workflow.name] = queue
