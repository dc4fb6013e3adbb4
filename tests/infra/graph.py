"""Reading a captured resource graph: lookups by type, links through outputs, policy documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from infra.mocks import Inventory, Resource

STACKS = ("dev", "prod")  # the stacks with a Pulumi.<stack>.yaml

FUNCTION = "aws:lambda/function:Function"
ALIAS = "aws:lambda/alias:Alias"
PROVISIONED = "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
LIVE = "live"  # the alias every trigger invokes
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
QUEUE = "aws:sqs/queue:Queue"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
PERMISSION = "aws:lambda/permission:Permission"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
ROUTE = "aws:apigatewayv2/route:Route"
INTEGRATION = "aws:apigatewayv2/integration:Integration"
STAGE = "aws:apigatewayv2/stage:Stage"
API = "aws:apigatewayv2/api:Api"
AUTHORIZER = "aws:apigatewayv2/authorizer:Authorizer"
TABLE = "aws:dynamodb/table:Table"
BUCKET = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
BUS = "aws:cloudwatch/eventBus:EventBus"


def one(graph: Inventory, type_: str) -> Resource:
    found = graph.of_type(type_)
    assert len(found) == 1, f"{len(found)} x {type_}"
    return found[0]


def by_output(graph: Inventory, type_: str, key: str, value: Any) -> Resource:
    found = [r for r in graph.of_type(type_) if r.outputs.get(key) == value]
    assert len(found) == 1, f"{len(found)} x {type_} with {key}={value!r}"
    return found[0]


def function(graph: Inventory, name: str) -> Resource:
    """A manifest function's Lambda, by its physical name."""
    return by_output(graph, FUNCTION, "name", f"tasks-{graph.stack}-{name}")


def alias(graph: Inventory, name: str) -> Resource:
    """A manifest function's `live` alias."""
    found = [
        a
        for a in graph.of_type(ALIAS)
        if a.inputs["functionName"] == f"tasks-{graph.stack}-{name}" and a.inputs["name"] == LIVE
    ]
    assert len(found) == 1, f"{len(found)} x {LIVE} alias of {name}"
    return found[0]


def role_policy(graph: Inventory, role_arn: str) -> dict[str, Any]:
    role = by_output(graph, ROLE, "arn", role_arn)
    policies = [r for r in graph.of_type(ROLE_POLICY) if r.inputs["role"] == role.id]
    assert len(policies) == 1, f"{len(policies)} policies on {role.name}"
    document: dict[str, Any] = json.loads(policies[0].inputs["policy"])
    return document


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def allowed_pairs(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (action, resource) an identity policy allows."""
    return {
        (action, resource)
        for statement in document["Statement"]
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }


def policy_documents(graph: Inventory) -> Iterator[tuple[Resource, str, dict[str, Any]]]:
    """Every IAM document in the graph: (resource, kind, document); kind is `identity` for a
    role's permissions, `trust` for who may assume a role, `resource` for a resource policy."""
    for resource in graph.resources:
        inputs = resource.inputs
        if resource.type == ROLE_POLICY:
            yield resource, "identity", json.loads(inputs["policy"])
        elif resource.type == ROLE:
            yield resource, "trust", json.loads(inputs["assumeRolePolicy"])
            for inline in inputs.get("inlinePolicies") or []:
                yield resource, "identity", json.loads(inline["policy"])
        elif "policy" in inputs and isinstance(inputs["policy"], str):
            yield resource, "resource", json.loads(inputs["policy"])
