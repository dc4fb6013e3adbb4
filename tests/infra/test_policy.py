"""Policy rules over every captured resource of the dev and prod stacks (and of the synthetic
graph, which adds a test-only workflow with a Lambda step and more triggers). One test per rule;
each is parametrized over the three graphs."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from handlers.manifest import Function, Workflow
from infra.config import StackConfig
from infra.mocks import Inventory
from tests.infra import graph as g

# Actions IAM cannot scope to a resource (the Service Authorization Reference lists no resource
# type for them), so "Resource": "*" is the narrowest there is. Written out here, not imported
# from infra, so that widening infra's list fails this test until someone looks.
ACTIONS_WITHOUT_RESOURCE_TYPES = frozenset(
    {
        "dynamodb:ListStreams",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)


def _arns(graph: Inventory, type_: str) -> set[str]:
    return {r.outputs["arn"] for r in graph.of_type(type_)}


def test_no_iam_wildcard_where_a_narrower_grant_exists(graph: Inventory) -> None:
    """Allow statements name actions one by one; `*` as the resource only for actions that
    support nothing narrower; a wildcard inside an ARN only as `<bucket>/*` (objects of our
    bucket) or `<log group>:log-stream:*` (streams of our log group). Key policies may use
    `*` as the resource (it means the key itself), and only the account root gets `kms:*`."""
    buckets = _arns(graph, g.BUCKET)
    log_groups = _arns(graph, g.LOG_GROUP)
    account_root = "arn:aws:iam::123456789012:root"
    checked = 0
    for resource, kind, document in g.policy_documents(graph):
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow" or kind == "trust":
                continue
            checked += 1
            actions = g.as_list(statement["Action"])
            resources = g.as_list(statement.get("Resource", []))
            where = f"{resource.name}: {statement}"
            if resource.type == g.KEY and statement["Principal"] == {"AWS": account_root}:
                continue  # AWS's default key statement: the account administers through IAM
            assert not [a for a in actions if "*" in a], where
            for arn in resources:
                if arn == "*":
                    assert (
                        resource.type == g.KEY or set(actions) <= ACTIONS_WITHOUT_RESOURCE_TYPES
                    ), where
                elif "*" in arn:
                    assert (arn.endswith("/*") and arn[:-2] in buckets) or (
                        arn.endswith(":log-stream:*") and arn[: -len(":log-stream:*")] in log_groups
                    ), where
    assert checked > 20


def test_no_resource_policy_allows_everyone(graph: Inventory) -> None:
    """Resource policies allow a named service or account, never `*`; every service grant is
    tied to this account or to one source ARN."""
    for resource, kind, document in g.policy_documents(graph):
        if kind != "resource":
            continue
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            principal = statement["Principal"]
            assert principal != "*", resource.name
            assert principal.get("AWS") != "*", resource.name
            if "Service" in principal:
                condition = json.dumps(statement.get("Condition", {}))
                assert (
                    "aws:SourceAccount" in condition
                    or "aws:SourceArn" in condition
                    or ("kms:EncryptionContext:aws:logs:arn" in condition)
                ), (resource.name, statement)


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


def test_no_function_url_and_no_invoke_permission_without_source(graph: Inventory) -> None:
    assert not [r for r in graph.resources if "functionUrl" in r.type]
    execution_arn = g.one(graph, g.API).outputs["executionArn"]
    rules = _arns(graph, g.RULE)
    permissions = graph.of_type(g.PERMISSION)
    assert permissions
    for permission in permissions:
        i = permission.inputs
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


def test_table_is_encrypted_with_the_stacks_key(graph: Inventory) -> None:
    table = g.one(graph, g.TABLE).inputs
    assert table["serverSideEncryption"] == {
        "enabled": True,
        "kmsKeyArn": g.one(graph, g.KEY).outputs["arn"],
    }


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


def test_bucket_is_private_tls_only_encrypted_and_versioned(graph: Inventory) -> None:
    bucket = g.one(graph, g.BUCKET)

    def setting(type_: str) -> dict[str, object]:
        found = [r for r in graph.of_type(type_) if r.inputs["bucket"] == bucket.id]
        assert len(found) == 1, type_
        return dict(found[0].inputs)

    blocks = setting("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert all(blocks[f] is True for f in flags)
    ownership = setting("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    encryption = setting(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    default = encryption["rules"][0]["applyServerSideEncryptionByDefault"]  # type: ignore[index]
    assert default == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": g.one(graph, g.KEY).outputs["arn"],
    }
    versioning = setting("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    policy = json.loads(str(setting("aws:s3/bucketPolicy:BucketPolicy")["policy"]))
    denies_http = [
        s
        for s in policy["Statement"]
        if s["Effect"] == "Deny"
        and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and set(s["Resource"]) == {bucket.outputs["arn"], bucket.outputs["arn"] + "/*"}
    ]
    assert denies_http
    lifecycle = setting("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    rules = lifecycle["rules"]
    assert any("abortIncompleteMultipartUpload" in r for r in rules)  # type: ignore[attr-defined]
    assert any("noncurrentVersionExpiration" in r for r in rules)  # type: ignore[attr-defined]


def test_kms_key_rotates(graph: Inventory) -> None:
    assert g.one(graph, g.KEY).inputs["enableKeyRotation"] is True


def test_every_async_consumer_has_a_failure_destination(
    graph: Inventory, functions: Sequence[Function]
) -> None:
    queues = _arns(graph, g.QUEUE)
    mappings = graph.of_type(g.MAPPING)
    assert len(mappings) == sum(f.stream is not None for f in functions)
    for mapping in mappings:
        assert mapping.inputs["destinationConfig"]["onFailure"]["destinationArn"] in queues
    targets = graph.of_type(g.TARGET)
    assert targets
    for target in targets:
        assert target.inputs["deadLetterConfig"]["arn"] in queues
        assert target.inputs["retryPolicy"]["maximumRetryAttempts"] >= 0
    configs = {c.inputs["functionName"]: c.inputs for c in graph.of_type(g.INVOKE_CONFIG)}
    for function in functions:
        if function.rules:
            config = configs[f"tasks-{graph.stack}-{function.name}"]
            assert config["destinationConfig"]["onFailure"]["destination"] in queues


def test_every_function_is_traced_encrypted_and_alarmed(graph: Inventory) -> None:
    alarms = [a.inputs for a in graph.of_type(g.ALARM)]
    for function in graph.of_type(g.FUNCTION):
        i = function.inputs
        assert i["tracingConfig"] == {"mode": "Active"}
        assert i["kmsKeyArn"] == g.one(graph, g.KEY).outputs["arn"]
        watched = {
            a["metricName"]
            for a in alarms
            if a.get("dimensions") == {"FunctionName": i["name"]} and a["alarmActions"]
        }
        assert watched == {"Errors", "Throttles", "Duration"}, i["name"]


def test_every_queue_is_encrypted_and_alarmed(graph: Inventory) -> None:
    key = g.one(graph, g.KEY).outputs["arn"]
    watched = {
        a.inputs["dimensions"]["QueueName"]
        for a in graph.of_type(g.ALARM)
        if a.inputs.get("metricName") == "ApproximateNumberOfMessagesVisible"
        and a.inputs["threshold"] == 0
    }
    queues = graph.of_type(g.QUEUE)
    assert queues
    for queue in queues:
        assert queue.inputs["kmsMasterKeyId"] == key
        assert queue.outputs["name"] in watched


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


def test_roles_are_assumed_by_one_service_on_this_accounts_behalf(graph: Inventory) -> None:
    for resource, kind, document in g.policy_documents(graph):
        if kind != "trust":
            continue
        (statement,) = document["Statement"]
        (service,) = g.as_list(statement["Principal"]["Service"])
        assert service in {"lambda.amazonaws.com", "states.amazonaws.com", "events.amazonaws.com"}
        if service != "lambda.amazonaws.com":  # Lambda's own trust takes no source condition
            assert statement["Condition"] == {
                "StringEquals": {"aws:SourceAccount": "123456789012"}
            }, resource.name


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
    }
    assert all(re.fullmatch(r"tasks:\w+:[A-Z]\w+", c.type) for c in components.values())
    for resource in graph.resources:
        if resource.custom:
            parent = components[resource.parent]
            assert resource.name.startswith(parent.name + "-"), resource.name


def test_the_cursor_secret_is_generated_and_never_exported(graph: Inventory) -> None:
    secret = g.one(graph, "random:index/randomPassword:RandomPassword")
    assert secret.inputs["length"] >= 32
    assert secret.outputs["result"] not in json.dumps(graph.outputs)
