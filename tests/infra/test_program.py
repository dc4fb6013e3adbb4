"""The program builds what the manifest declares, and dev differs from prod only by config.

Expectations come from `stack/manifest.py` (and the sample entries), never from a list
kept here, so the tests keep holding as functions, routes and rules are added.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, get_args

import attrs
import pulumi
import pytest
import yaml

from infra import mocks, packaging
from infra.context import Deployment
from infra.mocks import Inventory
from infra.state_machines import check_steps, load_definition
from infra.wiring import Wiring
from stack import manifest
from stack.config import ROOT, StackConfig
from stack.manifest import STREAM, Function, Permission, Resource, Workflow
from taskcore.adapters.dynamodb import table_definition
from taskcore.adapters.stream_filters import STREAM_FILTERS
from tests.infra import graph as g
from tests.infra.sample_manifest import SAMPLE_STEP, SAMPLE_WORKFLOW

LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
INDEXES = [
    i["IndexName"]
    for kind in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes")
    for i in table_definition("t")[kind]
]

# The vocabulary, written out independently of infra/wiring.py: (actions, which resources).
VOCABULARY: Mapping[str, Sequence[tuple[Sequence[str], str]]] = {
    "table.read": [
        (["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"], "table+indexes")
    ],
    "table.write": [
        (
            [
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem",
            ],
            "table",
        )
    ],
    "table.stream": [
        (["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"], "stream"),
        (["dynamodb:ListStreams"], "*"),
    ],
    "bucket.presign": [(["s3:PutObject", "s3:GetObject"], "objects")],
    "bucket.write": [(["s3:PutObject", "s3:AbortMultipartUpload"], "objects")],
    "bucket.delete": [
        (["s3:ListBucket", "s3:ListBucketVersions"], "bucket"),
        (["s3:DeleteObject", "s3:DeleteObjectVersion"], "objects"),
    ],
    "bus.publish": [(["events:PutEvents"], "bus")],
    "workflow.respond": [(["states:SendTaskSuccess"], "state machines")],
    "queue.send": [(["sqs:SendMessage"], "own queue")],
    "cursor.read": [(["secretsmanager:GetSecretValue"], "cursor secret")],
    "topic.publish": [(["sns:Publish"], "notifications topic")],
    # s3:ListBucket with a condition on `s3:prefix` (test_archive_listing_is_limited_to_the_archive)
    "archive.read": [(["s3:ListBucket"], "bucket"), (["s3:GetObject"], "archive objects")],
    "archive.write": [
        (["s3:ListBucket"], "bucket"),
        (["s3:GetObject", "s3:PutObject"], "archive objects"),
    ],
}


def _resources(graph: Inventory, which: str, own_queue: str | None) -> list[str]:
    table = g.one(graph, g.TABLE).outputs
    bucket = g.one(graph, g.BUCKET).outputs["arn"]
    return {
        "table": [table["arn"]],
        "table+indexes": [table["arn"], *(f"{table['arn']}/index/{i}" for i in INDEXES)],
        "stream": [table["streamArn"]],
        "objects": [f"{bucket}/*"],
        "archive objects": [f"{bucket}/archive/*"],
        "bucket": [bucket],
        "bus": [g.one(graph, g.BUS).outputs["arn"]],
        "state machines": [m.outputs["arn"] for m in graph.of_type(g.STATE_MACHINE)],
        "own queue": [own_queue] if own_queue else [],
        "cursor secret": [g.one(graph, "aws:secretsmanager/secret:Secret").outputs["arn"]],
        "notifications topic": [
            t.outputs["arn"]
            for t in graph.of_type("aws:sns/topic:Topic")
            if t.outputs["name"].endswith("-notifications")
        ],
        "*": ["*"],
    }[which]


def _expected_pairs(
    graph: Inventory, permissions: frozenset[str], own_queue: str | None
) -> set[tuple[str, str]]:
    return {
        (action, resource)
        for permission in permissions
        for actions, which in VOCABULARY[permission]
        for action in actions
        for resource in _resources(graph, which, own_queue)
    }


def _audience(graph: Inventory, config: StackConfig) -> str:
    """The audience API Gateway's authorizer trusts: the Cognito app client, or the config's."""
    clients = graph.of_type("aws:cognito/userPoolClient:UserPoolClient")
    return clients[0].id if clients else config.jwt_audience


def _value(graph: Inventory, config: StackConfig, resource: str) -> Any:
    outputs = graph.outputs
    return {
        "table.name": outputs["tableName"],
        "bucket.name": outputs["bucketName"],
        "bus.name": outputs["busName"],
        "cursor.secret_arn": g.one(graph, "aws:secretsmanager/secret:Secret").outputs["arn"],
        "stage.name": "$default",
        "approval.timeout": config.approval_timeout_hours * 3600,
        "approval.rules": config.auto_approval_text,
        "api.max_body_bytes": config.max_body_bytes,
        "auth.issuer": outputs["jwtIssuer"],
        "auth.audience": _audience(graph, config),
        "topic.arn": outputs["notificationsTopicArn"],
        "archive.after_days": config.archive_completed_after_days,
        "approval.shards": config.approval_queue_shards,
        "key.arn": g.one(graph, g.KEY).outputs["arn"],
    }[resource]


def test_one_lambda_per_manifest_function_as_declared(
    graph: Inventory, functions: Sequence[Function], config: StackConfig
) -> None:
    assert len(graph.of_type(g.FUNCTION)) == len(functions)
    layer = g.one(graph, "aws:lambda/layerVersion:LayerVersion").outputs["arn"]
    for function in functions:
        i = g.function(graph, function.name).inputs
        http = bool(function.routes)
        if function.web is None:
            assert i["handler"] == f"{function.module}.{function.attribute}"
            assert i["layers"] == [layer]
        else:  # the Web Adapter runs the startup script; test_the_download_is_a_web_app
            assert i["handler"] == function.web.script
            assert i["layers"][0] == layer
        assert (i["runtime"], i["architectures"]) == ("python3.12", ["arm64"])
        assert i["timeout"] == function.timeout_s
        assert i["memorySize"] == (config.lambda_memory_mb if http else function.memory_mb)
        reserved = config.reserved_for(function)
        assert i.get("reservedConcurrentExecutions") == (reserved if reserved >= 0 else None)
        variables = (i.get("environment") or {}).get("variables", {})
        declared = {
            name: str(_value(graph, config, resource))
            for name, resource in function.environment.items()
        }
        assert {k: v for k, v in variables.items() if not k.startswith("AWS_")} == declared


def test_every_function_has_its_own_least_privilege_role(
    graph: Inventory, functions: Sequence[Function]
) -> None:
    roles = [g.function(graph, f.name).inputs["role"] for f in functions]
    assert len(set(roles)) == len(functions)
    key = g.one(graph, g.KEY).outputs["arn"]
    for function, role in zip(functions, roles, strict=True):
        lam = g.function(graph, function.name)
        queue = _failure_queue(graph, function)
        log_group = g.by_output(graph, g.LOG_GROUP, "name", lam.inputs["loggingConfig"]["logGroup"])
        expected = _expected_pairs(graph, function.permissions, queue)
        expected |= {
            ("logs:CreateLogStream", f"{log_group.outputs['arn']}:log-stream:*"),
            ("logs:PutLogEvents", f"{log_group.outputs['arn']}:log-stream:*"),
            ("xray:PutTraceSegments", "*"),
            ("xray:PutTelemetryRecords", "*"),
            ("kms:Decrypt", key),
        }
        writes = {"table.write", "bucket.presign", "bucket.write", "queue.send", "archive.write"}
        if queue or function.permissions & writes:
            expected.add(("kms:GenerateDataKey", key))
        if queue:
            expected.add(("sqs:SendMessage", queue))
        assert g.allowed_pairs(g.role_policy(graph, role)) == expected, function.name


def _failure_queue(graph: Inventory, function: Function) -> str | None:
    """The ARN of the function's failure queue, found through the wiring that uses it."""
    name = f"tasks-{graph.stack}-{function.name}"
    queues: set[str] = set()
    for config in graph.of_type(g.INVOKE_CONFIG):
        if config.inputs["functionName"] == name:
            assert config.inputs["qualifier"] == g.LIVE
            queues.add(config.inputs["destinationConfig"]["onFailure"]["destination"])
    arn = g.alias(graph, function.name).outputs["arn"]
    for mapping in graph.of_type(g.MAPPING):
        if mapping.inputs["functionName"] == arn:
            queues.add(mapping.inputs["destinationConfig"]["onFailure"]["destinationArn"])
    assert len(queues) <= 1
    is_async = bool(function.rules or function.schedules) or function.stream is not None
    assert bool(queues) == is_async, function.name
    return queues.pop() if queues else None


def test_routes_are_the_manifests_plus_default(
    graph: Inventory, functions: Sequence[Function]
) -> None:
    routes = {r.inputs["routeKey"]: r.inputs for r in graph.of_type(g.ROUTE)}
    declared = {route.key: f for f in functions for route in f.routes}
    assert set(routes) == {*declared, "$default"}
    integrations = {f"integrations/{i.id}": i.inputs for i in graph.of_type(g.INTEGRATION)}
    first_http = next(f for f in functions if f.routes)
    for key, route in routes.items():
        owner = declared.get(key, first_http)
        integration = integrations[route["target"]]
        assert integration["integrationUri"] == g.alias(graph, owner.name).outputs["invokeArn"]
        assert (integration["integrationType"], integration["payloadFormatVersion"]) == (
            "AWS_PROXY",
            "2.0",
        )


def _rule_wiring(
    graph: Inventory, pattern: Mapping[str, Any]
) -> tuple[mocks.Resource, mocks.Resource]:
    rules = [
        r
        for r in graph.of_type(g.RULE)
        if "eventPattern" in r.inputs and json.loads(r.inputs["eventPattern"]) == pattern
    ]
    assert len(rules) == 1, pattern
    (rule,) = rules
    targets = [t for t in graph.of_type(g.TARGET) if t.inputs["rule"] == rule.outputs["name"]]
    assert len(targets) == 1
    assert rule.inputs["eventBusName"] == graph.outputs["busName"]
    return rule, targets[0]


def _plain(pattern: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(pattern, default=list))


def test_each_event_rule_targets_its_function_with_retries_and_dlq(
    graph: Inventory, functions: Sequence[Function], workflows: Sequence[Workflow]
) -> None:
    declared = [(f, rule) for f in functions for rule in f.rules]
    scheduled = [schedule for f in functions for schedule in f.schedules]
    assert len(graph.of_type(g.RULE)) == len(declared) + len(scheduled) + len(workflows)
    permissions = {
        p.inputs["sourceArn"]: p.inputs
        for p in graph.of_type(g.PERMISSION)
        if "sourceArn" in p.inputs
    }
    for function, rule in declared:
        event_rule, target = _rule_wiring(graph, _plain(rule.pattern))
        lam = g.function(graph, function.name)
        assert target.inputs["arn"] == g.alias(graph, function.name).outputs["arn"]
        assert "inputTransformer" not in target.inputs
        assert "input" not in target.inputs
        assert target.inputs["retryPolicy"] == {
            "maximumRetryAttempts": rule.max_retries,
            "maximumEventAgeInSeconds": rule.max_event_age_s,
        }
        dlq = g.by_output(graph, g.QUEUE, "arn", target.inputs["deadLetterConfig"]["arn"])
        policy = json.loads(
            next(
                p.inputs["policy"]
                for p in graph.of_type("aws:sqs/queuePolicy:QueuePolicy")
                if p.inputs["queueUrl"] == dlq.outputs["url"]
            )
        )
        (statement,) = policy["Statement"]
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": event_rule.outputs["arn"]}}
        invoke = permissions[event_rule.outputs["arn"]]
        assert (invoke["function"], invoke["qualifier"], invoke["principal"]) == (
            lam.outputs["name"],
            g.LIVE,
            "events.amazonaws.com",
        )


def test_each_schedule_is_a_rule_on_the_default_bus_with_retries_dlq_and_an_alarm(
    graph: Inventory, functions: Sequence[Function]
) -> None:
    declared = [(f, schedule) for f in functions for schedule in f.schedules]
    assert declared, "the manifest schedules the reminder sweep"
    rules = {r.inputs["name"]: r for r in graph.of_type(g.RULE) if "scheduleExpression" in r.inputs}
    assert len(rules) == len(declared)
    for function, schedule in declared:
        rule = rules[f"tasks-{graph.stack}-{schedule.name}"]
        assert rule.inputs["scheduleExpression"] == schedule.expression
        assert "eventBusName" not in rule.inputs  # the default bus: AWS runs schedules there only
        assert "eventPattern" not in rule.inputs
        (target,) = [t for t in graph.of_type(g.TARGET) if t.inputs["rule"] == rule.outputs["name"]]
        assert "eventBusName" not in target.inputs
        assert target.inputs["arn"] == g.alias(graph, function.name).outputs["arn"]
        assert target.inputs["retryPolicy"] == {
            "maximumRetryAttempts": schedule.max_retries,
            "maximumEventAgeInSeconds": schedule.max_event_age_s,
        }
        dlq = g.by_output(graph, g.QUEUE, "arn", target.inputs["deadLetterConfig"]["arn"])
        assert dlq.inputs["name"] == f"tasks-{graph.stack}-{schedule.name}-dlq"
        (invoke,) = [
            p.inputs
            for p in graph.of_type(g.PERMISSION)
            if p.inputs.get("sourceArn") == rule.outputs["arn"]
        ]
        assert (invoke["qualifier"], invoke["principal"]) == (g.LIVE, "events.amazonaws.com")
        name = g.function(graph, function.name).outputs["name"]
        (missed,) = [
            a.inputs
            for a in graph.of_type(g.ALARM)
            if a.inputs.get("dimensions") == {"FunctionName": name}
            and a.inputs.get("metricName") == "Invocations"
        ]
        assert (missed["comparisonOperator"], missed["threshold"]) == ("LessThanThreshold", 1)
        assert missed["treatMissingData"] == "breaching"
        assert missed["period"] == 1800  # two of the sweep's 15-minute intervals


def test_each_stream_trigger_is_a_mapping_as_declared(
    graph: Inventory, functions: Sequence[Function]
) -> None:
    stream_arn = g.one(graph, g.TABLE).outputs["streamArn"]
    for function in functions:
        if function.stream is None:
            continue
        trigger = function.stream
        arn = g.alias(graph, function.name).outputs["arn"]
        (mapping,) = [m.inputs for m in graph.of_type(g.MAPPING) if m.inputs["functionName"] == arn]
        assert mapping["eventSourceArn"] == stream_arn
        assert (
            mapping["batchSize"],
            mapping["maximumBatchingWindowInSeconds"],
            mapping["maximumRetryAttempts"],
            mapping["maximumRecordAgeInSeconds"],
            mapping["bisectBatchOnFunctionError"],
            mapping["startingPosition"],
        ) == (
            trigger.batch_size,
            trigger.max_batching_window_s,
            trigger.max_retries,
            trigger.max_record_age_s,
            trigger.bisect_on_error,
            trigger.starting_position,
        )
        assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
        # The manifest's filters, each a JSON pattern, in order; none: no filter criteria.
        if trigger.filters:
            filters = mapping["filterCriteria"]["filters"]
            assert [json.loads(f["pattern"]) for f in filters] == [dict(f) for f in trigger.filters]
        else:
            assert mapping.get("filterCriteria") is None


def test_the_stream_function_is_filtered_to_what_it_decodes(graph: Inventory) -> None:
    """The real stream function's mapping carries the filters `decode_record` is held to."""
    arn = g.alias(graph, STREAM.name).outputs["arn"]
    (mapping,) = [m.inputs for m in graph.of_type(g.MAPPING) if m.inputs["functionName"] == arn]
    patterns = [json.loads(f["pattern"]) for f in mapping["filterCriteria"]["filters"]]
    assert patterns == [dict(f) for f in STREAM_FILTERS]


def test_each_workflow_is_a_state_machine_built_from_its_definition(
    graph: Inventory, workflows: Sequence[Workflow], config: StackConfig
) -> None:
    for workflow in workflows:
        machine = g.by_output(
            graph, g.STATE_MACHINE, "name", f"tasks-{graph.stack}-{workflow.name}"
        )
        resolved = {
            **{arg: g.alias(graph, f).outputs["arn"] for arg, f in workflow.steps.items()},
            **{arg: _value(graph, config, r) for arg, r in workflow.arguments.items()},
        }
        built = load_definition(workflow.definition)(**resolved)
        assert json.loads(machine.inputs["definition"]) == built
        steps = {g.alias(graph, f).outputs["arn"] for f in workflow.steps.values()}
        expected = _expected_pairs(graph, workflow.permissions, None)
        expected |= {("lambda:InvokeFunction", arn) for arn in steps}
        pairs = g.allowed_pairs(g.role_policy(graph, machine.inputs["roleArn"]))
        assert {p for p in pairs if p[1] != "*" and not p[0].startswith("kms:")} == {
            p for p in expected if p[1] != "*"
        }
        _, target = _rule_wiring(graph, _plain(workflow.started_by.pattern))
        assert target.inputs["arn"] == machine.outputs["arn"]
        starter = g.allowed_pairs(g.role_policy(graph, target.inputs["roleArn"]))
        assert starter == {("states:StartExecution", machine.outputs["arn"])}
        assert graph.outputs["stateMachineArns"][workflow.name] == machine.outputs["arn"]


def test_the_table_is_table_definition(graph: Inventory) -> None:
    table = g.one(graph, g.TABLE).inputs
    definition = table_definition("t")
    assert {(a["name"], a["type"]) for a in table["attributes"]} == {
        (a["AttributeName"], a["AttributeType"]) for a in definition["AttributeDefinitions"]
    }
    assert [table["hashKey"], table["rangeKey"]] == [
        k["AttributeName"] for k in definition["KeySchema"]
    ]
    assert {i["name"]: i["rangeKey"] for i in table["localSecondaryIndexes"]} == {
        i["IndexName"]: i["KeySchema"][1]["AttributeName"]
        for i in definition["LocalSecondaryIndexes"]
    }
    assert {
        i["name"]: [(k["attributeName"], k["keyType"]) for k in i["keySchemas"]]
        for i in table["globalSecondaryIndexes"]
    } == {
        i["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in i["KeySchema"]]
        for i in definition["GlobalSecondaryIndexes"]
    }
    assert (table["streamEnabled"], table["streamViewType"]) == (True, "NEW_AND_OLD_IMAGES")
    assert table["ttl"] == {"attributeName": "expiresAt", "enabled": True}
    assert table["billingMode"] == definition["BillingMode"]


def test_stack_outputs(graph: Inventory) -> None:
    outputs = graph.outputs
    assert outputs["apiUrl"] == g.one(graph, g.API).outputs["apiEndpoint"]
    assert outputs["region"] == "eu-west-1"
    assert outputs["tableName"] == g.one(graph, g.TABLE).outputs["name"]
    assert outputs["bucketName"] == g.one(graph, g.BUCKET).outputs["bucket"]
    assert outputs["busName"] == f"tasks-{graph.stack}"
    pool = g.one(graph, "aws:cognito/userPool:UserPool")
    client = g.one(graph, "aws:cognito/userPoolClient:UserPoolClient")
    assert (outputs["userPoolId"], outputs["userPoolClientId"]) == (pool.id, client.id)
    authorizer = g.one(graph, g.AUTHORIZER).inputs["jwtConfiguration"]
    assert authorizer == {"issuer": outputs["jwtIssuer"], "audiences": [client.id]}
    assert outputs["jwtIssuer"].endswith(pool.id)
    assert set(outputs["stateMachineArns"]) == {
        m.outputs["name"].split("-", 2)[2] for m in graph.of_type(g.STATE_MACHINE)
    }


def test_functions_run_the_code_archive_and_the_layer(graph: Inventory) -> None:
    code = packaging.BUILD_DIR / "code.zip"
    layer = packaging.BUILD_DIR / f"layer-{packaging.layer_key()}.zip"
    assert {f.inputs["code"].path for f in graph.of_type(g.FUNCTION)} == {str(code)}
    assert g.one(graph, "aws:lambda/layerVersion:LayerVersion").inputs["code"].path == str(layer)


# -- dev vs prod --------------------------------------------------------------------------------

# What each config value drives: (resource type, input path). A path that differs between the
# stacks must be explained by a config value that differs; and each differing value must show.
DRIVEN_BY: Mapping[str, set[tuple[str, str]]] = {
    "log_retention_days": {(g.LOG_GROUP, "retentionInDays")},
    "point_in_time_recovery": {(g.TABLE, "pointInTimeRecovery.enabled")},
    "deletion_protection": {
        (g.TABLE, "deletionProtectionEnabled"),
        (g.TABLE, "<protect>"),
        (g.BUCKET, "forceDestroy"),
        (g.BUCKET, "<protect>"),
        (g.KEY, "deletionWindowInDays"),
        (g.KEY, "<protect>"),
        ("aws:secretsmanager/secret:Secret", "recoveryWindowInDays"),
        ("aws:cognito/userPool:UserPool", "deletionProtection"),
        ("aws:cognito/userPool:UserPool", "<protect>"),
    },
    "throttle_rate_limit": {(g.STAGE, "defaultRouteSettings.throttlingRateLimit")},
    "throttle_burst_limit": {(g.STAGE, "defaultRouteSettings.throttlingBurstLimit")},
    "cors_allow_origins": {
        (g.API, "corsConfiguration.allowOrigins"),
        (g.FUNCTION_URL, "cors.allowOrigins"),
        (
            "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration",
            "corsRules.0.allowedOrigins",
        ),
    },
    "lambda_memory_mb": {(g.FUNCTION, "memorySize")},
    "reserved_concurrency": {(g.FUNCTION, "reservedConcurrentExecutions")},
    "download_concurrency": {(g.FUNCTION, "reservedConcurrentExecutions")},
    # dev has the API's backup URL, prod not: the URL and its two permissions
    "function_urls": {(g.FUNCTION_URL, "<exists>"), (g.PERMISSION, "<exists>")},
    # none (dev) against snapstart (prod); provisioned would add a provisioned-concurrency config
    "cold_start": {(g.FUNCTION, "snapStart.applyOn")},
    "provisioned_concurrency": {(g.PROVISIONED, "<exists>")},
    "approval_timeout_hours": {(g.STATE_MACHINE, "definition")},
    "auto_approve": {(g.FUNCTION, "environment.variables.AUTO_APPROVE")},
    "archive_completed_after_days": {
        (g.FUNCTION, "environment.variables.ARCHIVE_COMPLETED_AFTER_DAYS")
    },
    "approval_queue_shards": {(g.FUNCTION, "environment.variables.APPROVAL_QUEUE_SHARDS")},
    "archive_cold_storage_class": {(LIFECYCLE, "rules.2.transitions.0.storageClass")},
    "archive_cold_after_days": {(LIFECYCLE, "rules.2.transitions.0.days")},
    "alarm_email": {("aws:sns/topicSubscription:TopicSubscription", "<exists>")},
    "alarm_p99_latency_ms": {(g.ALARM, "threshold"), (g.ALARM, "alarmDescription")},
}


def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value and isinstance(value[0], Mapping):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{path}.{index}")
    else:
        yield path, value


def _normalised(graph: Inventory) -> dict[tuple[str, str], dict[str, Any]]:
    stack = graph.stack

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(f"tasks-{stack}", "tasks-STACK")
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value if not hasattr(value, "path") else "<archive>"

    result = {}
    for r in graph.resources:
        flat = {path: clean(v) for path, v in _flatten(r.inputs)}
        if "tags.Environment" in flat:  # the stack's name, as names are
            flat["tags.Environment"] = "STACK"
        flat["<protect>"] = (r.protect, r.retain_on_delete)
        result[(r.type, r.name)] = flat
    return result


def test_dev_and_prod_differ_exactly_by_their_config(graphs: dict[str, Inventory]) -> None:
    dev, prod = _normalised(graphs["dev"]), _normalised(graphs["prod"])
    differences = {(key[0], "<exists>") for key in dev.keys() ^ prod.keys()}
    for key in dev.keys() & prod.keys():
        for path in dev[key].keys() | prod[key].keys():
            if dev[key].get(path) != prod[key].get(path):
                differences.add((key[0], path))
    configs = {s: StackConfig.from_stack_file(s) for s in ("dev", "prod")}
    changed = {
        field
        for field in DRIVEN_BY
        if getattr(configs["dev"], field) != getattr(configs["prod"], field)
    }
    explained = set().union(*(DRIVEN_BY[field] for field in changed))
    assert differences == explained


def test_archive_listing_is_limited_to_the_archive(graph: Inventory) -> None:
    """`archive.*` lists the bucket only under `archive/`, and reads (and the archiver writes)
    only objects under it."""
    bucket = g.one(graph, g.BUCKET).outputs["arn"]
    for function in (
        f for f in manifest.FUNCTIONS if {"archive.read", "archive.write"} & f.permissions
    ):
        role = g.function(graph, function.name).inputs["role"]
        statements = g.role_policy(graph, role)["Statement"]
        (listing,) = [
            s for s in statements if "s3:ListBucket" in s["Action"] and s["Resource"] == [bucket]
        ]
        assert listing["Condition"] == {"StringLike": {"s3:prefix": ["archive/*"]}}, function.name


def test_the_archive_moves_to_the_stack_s_colder_class(
    graph: Inventory, config: StackConfig
) -> None:
    (lifecycle,) = graph.of_type(LIFECYCLE)
    (rule,) = [r for r in lifecycle.inputs["rules"] if r["id"] == "archive-to-colder-storage"]
    assert rule["filter"] == {"prefix": "archive/"}
    assert rule["transitions"] == [
        {"days": config.archive_cold_after_days, "storageClass": config.archive_cold_storage_class}
    ]
    assert "expiration" not in rule  # an archive is kept


def test_the_bucket_refuses_archive_writes_without_the_stack_s_key(graph: Inventory) -> None:
    bucket = g.one(graph, g.BUCKET).outputs["arn"]
    key = g.one(graph, g.KEY).outputs["arn"]
    document = json.loads(g.one(graph, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    (deny,) = [
        s for s in document["Statement"] if s["Sid"] == "DenyArchiveWritesWithoutTheStackKey"
    ]
    assert deny == {
        "Sid": "DenyArchiveWritesWithoutTheStackKey",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": f"{bucket}/archive/*",
        "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key}},
    }


def test_the_archiver_s_rule_keeps_what_it_fails_on_and_is_alarmed(graph: Inventory) -> None:
    """Nothing is lost if the archiver fails: EventBridge retries, then the rule's DLQ; Lambda
    retries, then the function's failure queue; each queue and the function have alarms."""
    (rule,) = [
        r for r in graph.of_type(g.RULE) if r.inputs["name"].endswith("task-archived-to-archive")
    ]
    assert json.loads(rule.inputs["eventPattern"]) == {
        "detail-type": ["TaskArchived"],
        "source": ["tasks"],
    }
    (target,) = [t for t in graph.of_type(g.TARGET) if t.inputs["rule"] == rule.outputs["name"]]
    assert target.inputs["arn"] == g.alias(graph, "archiver").outputs["arn"]
    assert (
        target.inputs["retryPolicy"]["maximumRetryAttempts"]
        == manifest.ARCHIVER.rules[0].max_retries
    )
    dlq = g.by_output(graph, g.QUEUE, "arn", target.inputs["deadLetterConfig"]["arn"])
    failure = _failure_queue(graph, manifest.ARCHIVER)
    alarmed = {
        (dimension, value)
        for alarm in graph.of_type(g.ALARM)
        if alarm.inputs.get("alarmActions")
        for dimension, value in (alarm.inputs.get("dimensions") or {}).items()
    }
    assert ("QueueName", dlq.outputs["name"]) in alarmed
    assert ("QueueName", g.by_output(graph, g.QUEUE, "arn", failure).outputs["name"]) in alarmed
    assert ("FunctionName", g.function(graph, "archiver").outputs["name"]) in alarmed


# -- config variants (as `pulumi config set` would make them) ----------------------------------


@pytest.fixture(scope="module")
def external_issuer() -> Inventory:
    return mocks.run(
        "dev",
        overrides={
            "tasks:jwtIssuer": "https://login.example.com/",
            "tasks:jwtAudience": "tasks-api",
            "tasks:domainName": "api.tasks.example.com",
            "tasks:certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
        },
    )


def test_an_external_issuer_replaces_cognito(external_issuer: Inventory) -> None:
    assert not [r for r in external_issuer.resources if r.type.startswith("aws:cognito")]
    authorizer = g.one(external_issuer, g.AUTHORIZER).inputs["jwtConfiguration"]
    assert authorizer == {"issuer": "https://login.example.com/", "audiences": ["tasks-api"]}
    assert external_issuer.outputs["userPoolId"] == ""


def test_a_custom_domain_maps_to_the_stage(external_issuer: Inventory) -> None:
    domain = g.one(external_issuer, "aws:apigatewayv2/domainName:DomainName").inputs
    assert domain["domainName"] == "api.tasks.example.com"
    assert domain["domainNameConfiguration"]["securityPolicy"] == "TLS_1_2"
    mapping = g.one(external_issuer, "aws:apigatewayv2/apiMapping:ApiMapping").inputs
    assert mapping["apiId"] == g.one(external_issuer, g.API).id
    assert external_issuer.outputs["apiUrl"] == "https://api.tasks.example.com"


# -- the manifest's vocabulary and consistency --------------------------------------------------


def test_infra_knows_every_word_of_the_manifests_vocabulary() -> None:
    """A permission or resource reference added to the manifest's vocabulary fails here until
    infra maps it (and this test's own VOCABULARY states it)."""
    assert set(get_args(Permission)) == set(VOCABULARY)
    wiring = Wiring(
        deployment=Deployment(
            config=StackConfig.from_stack_file("dev"),
            account_id=pulumi.Output.from_input("1"),
            partition=pulumi.Output.from_input("aws"),
            region=pulumi.Output.from_input("eu-west-1"),
            dns_suffix=pulumi.Output.from_input("amazonaws.com"),
        ),
        key_arn="k",
        cursor_secret_arn="s",
        table_name="t",
        table_arn="t",
        table_indexes=INDEXES,
        stream_arn="s",
        bucket_name="b",
        bucket_arn="b",
        bus_name="e",
        bus_arn="e",
        auth_issuer="https://issuer.example.com",
        auth_audience="client",
        topic_arn="n",
        state_machine_arns=["m"],
    )
    for resource in get_args(Resource):
        assert wiring.value(resource) is not None
    for permission in get_args(Permission):
        assert wiring.statements([permission], queue_arn="q")
    with pytest.raises(ValueError, match="unknown permission"):
        wiring.statements(["table.scan"])
    with pytest.raises(ValueError, match="unknown resource"):
        wiring.value("table.arn")


@pytest.mark.parametrize(
    ("functions", "workflows", "message"),
    [
        ((SAMPLE_STEP,), (), "no workflow's step"),
        ((attrs.evolve(SAMPLE_STEP, invoked_by_workflow=False),), (SAMPLE_WORKFLOW,), "not marked"),
        ((), (SAMPLE_WORKFLOW,), "name no manifest function"),
    ],
)
def test_workflow_steps_and_step_functions_must_agree(
    functions: tuple[Function, ...], workflows: tuple[Workflow, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        check_steps(workflows, functions)


def test_a_manifest_error_stops_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest, "FUNCTIONS", (*manifest.FUNCTIONS, SAMPLE_STEP))
    with pytest.raises(ValueError, match="no workflow's step"):
        mocks.run("dev")


def test_the_dev_stack_given_prods_values_is_prod(graphs: dict[str, Inventory]) -> None:
    """Nothing depends on the stack's name but names: dev run with prod's config values builds
    prod's graph exactly."""
    prod_values = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    dev_as_prod = mocks.run("dev", overrides=prod_values)
    assert _normalised(dev_as_prod) == _normalised(graphs["prod"])


def test_alarms_notify_an_encrypted_topic_and_the_stacks_email(
    graph: Inventory, config: StackConfig
) -> None:
    [topic] = [t for t in graph.of_type("aws:sns/topic:Topic") if t.name.endswith("-alarms")]
    assert topic.inputs["kmsMasterKeyId"] == g.one(graph, g.KEY).outputs["arn"]
    subscriptions = [
        s.inputs
        for s in graph.of_type("aws:sns/topicSubscription:TopicSubscription")
        if s.inputs["topic"] == topic.outputs["arn"]
    ]
    expected = [config.alarm_email] if config.alarm_email else []
    assert [s["endpoint"] for s in subscriptions if s["protocol"] == "email"] == expected
    alarms = {a.inputs["name"].split("-", 2)[2]: a.inputs for a in graph.of_type(g.ALARM)}
    assert all(a["alarmActions"] == [topic.outputs["arn"]] for a in alarms.values())
    api = {"ApiId": g.one(graph, g.API).id, "Stage": "$default"}
    assert (alarms["api-5xx"]["metricName"], alarms["api-5xx"]["dimensions"]) == ("5xx", api)
    latency = alarms["api-latency-p99"]
    assert (latency["extendedStatistic"], latency["threshold"]) == (
        "p99",
        config.alarm_p99_latency_ms,
    )
    throttles = {
        q["metric"]["metricName"]
        for q in alarms["table-throttles"]["metricQueries"]
        if "metric" in q
    }
    assert throttles == {"ReadThrottleEvents", "WriteThrottleEvents"}


def test_notifications_go_to_an_encrypted_topic_with_the_approvers_email_filtered(
    graph: Inventory, config: StackConfig
) -> None:
    [topic] = [t for t in graph.of_type("aws:sns/topic:Topic") if t.name.endswith("-topic")]
    assert topic.inputs["kmsMasterKeyId"] == g.one(graph, g.KEY).outputs["arn"]
    assert graph.outputs["notificationsTopicArn"] == topic.outputs["arn"]
    subscriptions = [
        s.inputs
        for s in graph.of_type("aws:sns/topicSubscription:TopicSubscription")
        if s.inputs["topic"] == topic.outputs["arn"]
    ]
    if not config.approvers_email:
        assert subscriptions == []
        return
    [email] = subscriptions
    assert (email["protocol"], email["endpoint"]) == ("email", config.approvers_email)
    assert json.loads(email["filterPolicy"]) == {"recipient": ["group:approvers"]}
    assert email["filterPolicyScope"] == "MessageAttributes"
    [notify] = [f for f in graph.of_type(g.FUNCTION) if f.inputs["name"].endswith("-notifications")]
    assert notify.inputs["environment"]["variables"]["TOPIC_ARN"] == topic.outputs["arn"]


def test_the_dashboard_shows_every_function_the_api_and_the_table(graph: Inventory) -> None:
    body = json.loads(g.one(graph, "aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    metrics = [tuple(m[:4]) for w in body["widgets"] for m in w["properties"]["metrics"]]
    for function in graph.of_type(g.FUNCTION):
        name = function.outputs["name"]
        assert ("AWS/Lambda", "Errors", "FunctionName", name) in metrics
        assert ("AWS/Lambda", "Duration", "FunctionName", name) in metrics
    assert ("AWS/ApiGateway", "5xx", "ApiId", g.one(graph, g.API).id) in metrics
    table = g.one(graph, g.TABLE).outputs["name"]
    assert ("AWS/DynamoDB", "ReadThrottleEvents", "TableName", table) in metrics
    for machine in graph.of_type(g.STATE_MACHINE):
        assert (
            "AWS/States",
            "ExecutionsFailed",
            "StateMachineArn",
            machine.outputs["arn"],
        ) in metrics


def test_cognito_has_the_approvers_group_and_a_public_srp_client(graph: Inventory) -> None:
    group = g.one(graph, "aws:cognito/userGroup:UserGroup").inputs
    assert group["name"] == "approvers"
    client = g.one(graph, "aws:cognito/userPoolClient:UserPoolClient").inputs
    assert client["generateSecret"] is False
    assert set(client["explicitAuthFlows"]) == {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    pool = g.one(graph, "aws:cognito/userPool:UserPool").inputs
    assert pool["adminCreateUserConfig"] == {"allowAdminCreateUserOnly": True}


def test_the_api_allows_what_the_local_gateway_allows() -> None:
    """The local platform mirrors the stage's CORS; the two must not drift."""
    from infra import api
    from local_platform.gateway import stage as gateway

    assert api.CORS_ALLOW_HEADERS == gateway.CORS_ALLOW_HEADERS
    assert api.CORS_EXPOSE_HEADERS == gateway.CORS_EXPOSE_HEADERS
    assert api.CORS_MAX_AGE_S == gateway.CORS_MAX_AGE_S
    assert set(api.allowed_methods(manifest.FUNCTIONS)) <= set(gateway.CORS_ALLOW_METHODS)


def test_the_region_is_the_providers_wherever_it_comes_from() -> None:
    """With no `aws:region` in the stack (the provider took it from AWS_REGION or a profile),
    every ARN, service principal, issuer and dashboard names the provider's region."""
    graph = mocks.run("prod", overrides={"aws:region": None}, provider_region="ap-southeast-2")
    text = json.dumps([(r.inputs, r.outputs) for r in graph.resources], default=str)
    assert "eu-west-1" not in text
    assert graph.outputs["region"] == "ap-southeast-2"
    key_policy = json.loads(g.one(graph, g.KEY).inputs["policy"])
    principals = [s["Principal"] for s in key_policy["Statement"]]
    assert {"Service": "logs.ap-southeast-2.amazonaws.com"} in principals
    assert graph.outputs["jwtIssuer"].startswith(
        "https://cognito-idp.ap-southeast-2.amazonaws.com/"
    )
    dashboard = json.loads(
        g.one(graph, "aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"]
    )
    assert {w["properties"]["region"] for w in dashboard["widgets"]} == {"ap-southeast-2"}
