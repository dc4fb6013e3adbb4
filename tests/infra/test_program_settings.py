"""What the program builds follows the manifest and the stack config: open routes, log groups,
data protection, CORS origins, throttling, components and the generated secret. The security
rules these settings must also satisfy are the policy pack's (`policy/rules.py`), run over the
same graphs in `test_policy.py`."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from infra import mocks
from infra.mocks import Inventory
from stack.config import StackConfig
from stack.manifest import Function, Workflow
from tests.infra import graph as g


def _arns(graph: Inventory, type_: str) -> set[str]:
    return {r.outputs["arn"] for r in graph.of_type(type_)}


def test_every_route_has_the_authorizer_but_health(
    graph: Inventory, functions: Sequence[Function]
) -> None:
    routes = {r.inputs["routeKey"]: r.inputs for r in graph.of_type(g.ROUTE)}
    authorizer = g.one(graph, g.AUTHORIZER)
    open_routes = {key for key, route in routes.items() if route["authorizationType"] == "NONE"}
    declared_open = {r.key for f in functions for r in f.routes if not r.authorized}
    assert open_routes == declared_open
    assert "GET /health" in open_routes
    assert all(key.split()[-1] in {"/health", "/sample/open"} for key in open_routes)
    for key, route in routes.items():
        if key not in open_routes:
            assert route["authorizationType"] == "JWT", key
            assert route["authorizerId"] == authorizer.id, key
    assert "$default" in routes
    assert "$default" not in open_routes


def test_every_invoke_permission_names_its_source_or_is_a_function_urls(
    graph: Inventory,
) -> None:
    """API Gateway from this API, EventBridge from one rule; everyone only through a Function
    URL the stack config turned on (`test_function_urls.py` checks those two per URL)."""
    urls = {u.inputs["functionName"] for u in graph.of_type(g.FUNCTION_URL)}
    execution_arn = g.one(graph, g.API).outputs["executionArn"]
    rules = _arns(graph, g.RULE)
    permissions = graph.of_type(g.PERMISSION)
    assert permissions
    for permission in permissions:
        i = permission.inputs
        if i["principal"] == "*":
            assert i["function"] in urls, i
            assert i.get("functionUrlAuthType") == "NONE" or i.get("invokedViaFunctionUrl") is True
            continue
        assert i["action"] == "lambda:InvokeFunction"
        assert i["principal"] in {"apigateway.amazonaws.com", "events.amazonaws.com"}, i
        if i["principal"] == "apigateway.amazonaws.com":
            assert i["sourceArn"] == f"{execution_arn}/*"
        else:
            assert i["sourceArn"] in rules


def test_every_log_group_has_retention_and_the_key(graph: Inventory, config: StackConfig) -> None:
    key = g.one(graph, g.KEY).outputs["arn"]
    log_groups = graph.of_type(g.LOG_GROUP)
    functions = graph.of_type(g.FUNCTION)
    assert len(log_groups) == len(functions) + 1 + len(graph.of_type(g.STATE_MACHINE))
    for log_group in log_groups:
        assert log_group.inputs["retentionInDays"] == config.log_retention_days
        assert log_group.inputs["kmsKeyId"] == key


def test_pitr_deletion_protection_and_retention_follow_config(
    graph: Inventory, graph_name: str, config: StackConfig
) -> None:
    table = g.one(graph, g.TABLE)
    assert table.inputs["pointInTimeRecovery"]["enabled"] is config.point_in_time_recovery
    assert table.inputs["deletionProtectionEnabled"] is config.deletion_protection
    stateful = [table, g.one(graph, g.BUCKET), g.one(graph, g.KEY)]
    stateful += graph.of_type("aws:cognito/userPool:UserPool")
    for resource in stateful:
        assert (resource.protect, resource.retain_on_delete) == (config.deletion_protection,) * 2
    assert not [r for r in graph.resources if r.protect and r not in stateful]
    if graph_name == "prod":
        assert config.point_in_time_recovery
        assert config.deletion_protection
        assert g.one(graph, g.BUCKET).inputs["forceDestroy"] is False


def test_state_machines_log_everything_and_trace(
    graph: Inventory, workflows: Sequence[Workflow]
) -> None:
    machines = graph.of_type(g.STATE_MACHINE)
    assert len(machines) == len(workflows)
    log_groups = {r.outputs["arn"] + ":*" for r in graph.of_type(g.LOG_GROUP)}
    alarms = [a.inputs for a in graph.of_type(g.ALARM)]
    for machine in machines:
        logging = machine.inputs["loggingConfiguration"]
        assert logging["level"] == "ALL"
        assert logging["includeExecutionData"] is True
        assert logging["logDestination"] in log_groups
        assert machine.inputs["tracingConfiguration"] == {"enabled": True}
        watched = {
            a["metricName"]
            for a in alarms
            if a.get("dimensions") == {"StateMachineArn": machine.outputs["arn"]}
        }
        assert watched == {"ExecutionsFailed", "ExecutionsTimedOut"}


def test_stage_throttles_and_writes_access_logs(graph: Inventory, config: StackConfig) -> None:
    stage = g.one(graph, g.STAGE).inputs
    assert stage["name"] == "$default"
    assert stage["autoDeploy"] is True
    assert stage["defaultRouteSettings"]["throttlingRateLimit"] == config.throttle_rate_limit
    assert stage["defaultRouteSettings"]["throttlingBurstLimit"] == config.throttle_burst_limit
    logs = stage["accessLogSettings"]
    assert logs["destinationArn"] in _arns(graph, g.LOG_GROUP)
    assert json.loads(logs["format"])["requestId"] == "$context.requestId"


def test_cors_allows_the_stacks_origins_never_star_in_prod(
    graph: Inventory, graph_name: str, config: StackConfig
) -> None:
    api = g.one(graph, g.API).inputs["corsConfiguration"]
    bucket = g.one(graph, "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration").inputs
    for origins in (api["allowOrigins"], bucket["corsRules"][0]["allowedOrigins"]):
        assert origins == list(config.cors_allow_origins)
        if graph_name == "prod":
            assert "*" not in origins
            assert all(o.startswith("https://") for o in origins)


def test_every_resource_belongs_to_a_tasks_component(graph: Inventory) -> None:
    components = {r.urn: r for r in graph.resources if not r.custom}
    assert {c.type.split(":")[1] for c in components.values()} == {
        "keys",
        "data",
        "storage",
        "identity",
        "events",
        "functions",
        "api",
        "state_machines",
        "monitoring",
        "urls",
        "notifications",
    }
    assert all(re.fullmatch(r"tasks:\w+:[A-Z]\w+", c.type) for c in components.values())
    for resource in graph.resources:
        if resource.custom:
            parent = components[resource.parent]
            assert resource.name.startswith(parent.name + "-"), resource.name


def test_the_cursor_keys_are_generated_into_the_secret_and_never_exported(
    graph: Inventory,
) -> None:
    key = g.one(graph, "random:index/randomPassword:RandomPassword")
    assert key.inputs["length"] >= 32
    secret = g.one(graph, "aws:secretsmanager/secret:Secret")
    assert secret.inputs["kmsKeyId"] == g.one(graph, "aws:kms/key:Key").outputs["arn"]
    version = g.one(graph, "aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretId"] == secret.id
    assert json.loads(version.inputs["secretString"]) == {"current": key.outputs["result"]}
    assert key.outputs["result"] not in json.dumps(graph.outputs)
    for function in graph.of_type(g.FUNCTION):  # only the secret's ARN is in an environment
        variables = (function.inputs.get("environment") or {}).get("variables", {})
        assert key.outputs["result"] not in json.dumps(variables)


def test_a_rotation_keeps_the_previous_generation_accepted() -> None:
    """`[1]` -> `[1, 2]` -> `[2, 1]`: each generation's key is its own resource, so the one
    that signed stays the same key while the list changes around it."""
    values = {}
    for generations in ([1], [1, 2], [2, 1]):
        graph = mocks.run("dev", overrides={"tasks:cursorKeyGenerations": generations})
        keys = {
            int(r.name.rsplit("-", 1)[1]): r.outputs["result"]
            for r in graph.of_type("random:index/randomPassword:RandomPassword")
        }
        version = g.one(graph, "aws:secretsmanager/secretVersion:SecretVersion")
        values[tuple(generations)] = (keys, json.loads(version.inputs["secretString"]))
    keys, value = values[(1, 2)]
    assert value == {"current": keys[1], "previous": keys[2]}  # 2 accepted, 1 still signs
    keys, value = values[(2, 1)]
    assert value == {"current": keys[2], "previous": keys[1]}  # 2 signs, 1 still accepted
