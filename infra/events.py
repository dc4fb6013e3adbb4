"""Events: the custom EventBridge bus, and what delivers events to the functions.

- `Bus`: the domain events' bus (the stream publisher puts them there). Created before the
  functions, whose environment and permissions name it.
- `Subscriptions`: for each function with a `stream` trigger, an event-source mapping on the
  table's stream (bisect on error, bounded retries and record age, partial batch failures, the
  function's failure queue as on-failure destination, the trigger's filters as its filter
  criteria); for each `EventRule`, a rule on the bus with the manifest's pattern and a target
  with the manifest's retry policy and a dead-letter queue of its own (events EventBridge could
  not deliver); for each `Schedule`, the same on the
  account's default bus, with the schedule's expression instead of a pattern (AWS runs
  scheduled rules on the default bus only). Events reach the targets as they are: no input
  transformation, so the handler sees what the local bus (or scheduler) hands it. Mappings and
  targets invoke each function's `live` alias, which is all the rule may invoke.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import pulumi
import pulumi_aws as aws

from infra.context import Deployment
from infra.functions import Functions
from infra.queues import dead_letter_queue
from infra.wiring import Wiring
from stack.manifest import EventRule, Function, Schedule


def pattern_json(pattern: Mapping[str, Any]) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple | frozenset | set):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(pattern), sort_keys=True, separators=(",", ":"))


def rule_with_dead_letters(
    name: str,
    rule: EventRule | Schedule,
    *,
    deployment: Deployment,
    bus_name: pulumi.Input[str],
    key_arn: pulumi.Input[str],
    parent: pulumi.Resource,
    description: str,
) -> tuple[aws.cloudwatch.EventRule, aws.sqs.Queue, aws.cloudwatch.EventTargetRetryPolicyArgs]:
    """A rule on the bus (a schedule's on the default bus: `bus_name` is not used), its
    dead-letter queue (only this rule may send to it) and the retry policy its target uses.
    Both are named after the manifest's rule (`tasks-<stack>-<rule>`, `...-dlq`), not after the
    logical name, which grows with the function's name."""
    child = pulumi.ResourceOptions(parent=parent)
    event_rule = aws.cloudwatch.EventRule(
        name,
        name=f"{deployment.prefix}-{rule.name}",
        event_bus_name=None if isinstance(rule, Schedule) else bus_name,
        event_pattern=None if isinstance(rule, Schedule) else pattern_json(rule.pattern),
        schedule_expression=rule.expression if isinstance(rule, Schedule) else None,
        description=description,
        opts=child,
    )
    queue = dead_letter_queue(
        f"{name}-dlq",
        physical=f"{deployment.prefix}-{rule.name}-dlq",
        key_arn=key_arn,
        rule_arn=event_rule.arn,
        parent=parent,
    )
    retry = aws.cloudwatch.EventTargetRetryPolicyArgs(
        maximum_retry_attempts=rule.max_retries,
        maximum_event_age_in_seconds=rule.max_event_age_s,
    )
    return event_rule, queue, retry


@attrs.frozen
class BusArgs:
    deployment: Deployment


class Bus(pulumi.ComponentResource):
    bus: aws.cloudwatch.EventBus
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: BusArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tasks:events:Bus", name, None, opts)
        self.bus = aws.cloudwatch.EventBus(
            f"{name}-domain-events",
            name=args.deployment.prefix,
            description="Domain events of the tasks service (from the table's stream)",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = self.bus.name
        self.arn = self.bus.arn
        self.register_outputs({"name": self.name, "arn": self.arn})


@attrs.frozen
class SubscriptionsArgs:
    deployment: Deployment
    functions: Functions
    wiring: Wiring


class Subscriptions(pulumi.ComponentResource):
    mappings: dict[str, aws.lambda_.EventSourceMapping]
    rules: dict[str, aws.cloudwatch.EventRule]
    dead_letter_queues: dict[str, aws.sqs.Queue]

    def __init__(
        self, name: str, args: SubscriptionsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tasks:events:Subscriptions", name, None, opts)
        self.mappings, self.rules, self.dead_letter_queues = {}, {}, {}
        for function in args.functions.manifest.values():
            if function.stream is not None:
                self._stream(name, function, args)
            triggers: tuple[EventRule | Schedule, ...] = (*function.rules, *function.schedules)
            for rule in triggers:
                self._rule(name, function, rule, args)
        self.register_outputs(
            {
                "rules": {key: rule.arn for key, rule in self.rules.items()},
                "deadLetterQueues": {key: q.arn for key, q in self.dead_letter_queues.items()},
            }
        )

    def _stream(self, name: str, function: Function, args: SubscriptionsArgs) -> None:
        trigger = function.stream
        assert trigger is not None
        self.mappings[function.name] = aws.lambda_.EventSourceMapping(
            f"{name}-{function.name}-stream",
            event_source_arn=args.wiring.stream_arn,
            function_name=args.functions.aliases[function.name].arn,
            starting_position=trigger.starting_position,
            batch_size=trigger.batch_size,
            maximum_batching_window_in_seconds=trigger.max_batching_window_s,
            maximum_retry_attempts=trigger.max_retries,
            maximum_record_age_in_seconds=trigger.max_record_age_s,
            bisect_batch_on_function_error=trigger.bisect_on_error,
            function_response_types=["ReportBatchItemFailures"],
            destination_config=aws.lambda_.EventSourceMappingDestinationConfigArgs(
                on_failure=aws.lambda_.EventSourceMappingDestinationConfigOnFailureArgs(
                    destination_arn=args.functions.failure_queues[function.name].arn
                )
            ),
            # Records matching none of the manifest's filters never invoke the function.
            filter_criteria=aws.lambda_.EventSourceMappingFilterCriteriaArgs(
                filters=[
                    aws.lambda_.EventSourceMappingFilterCriteriaFilterArgs(pattern=json.dumps(f))
                    for f in trigger.filters
                ]
            )
            if trigger.filters
            else None,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _rule(
        self, name: str, function: Function, rule: EventRule | Schedule, args: SubscriptionsArgs
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        base = f"{name}-{function.name}-{rule.name}"
        target = args.functions.functions[function.name]
        alias = args.functions.aliases[function.name]
        event_rule, queue, retry = rule_with_dead_letters(
            base,
            rule,
            deployment=args.deployment,
            bus_name=args.wiring.bus_name,
            key_arn=args.wiring.key_arn,
            parent=self,
            description=f"{rule.name} -> {function.name}"
            + (f", {rule.expression} (UTC)" if isinstance(rule, Schedule) else ""),
        )
        permission = aws.lambda_.Permission(
            f"{base}-invoke",
            action="lambda:InvokeFunction",
            function=target.name,
            qualifier=alias.name,
            principal="events.amazonaws.com",
            source_arn=event_rule.arn,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{base}-target",
            target_id=function.name,
            rule=event_rule.name,
            event_bus_name=None if isinstance(rule, Schedule) else args.wiring.bus_name,
            arn=alias.arn,
            retry_policy=retry,
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=queue.arn),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )
        key = f"{function.name}.{rule.name}"
        self.rules[key] = event_rule
        self.dead_letter_queues[key] = queue
