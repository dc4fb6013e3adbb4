"""The mocks refuse what AWS refuses: every input of every resource the program registers is
held to the constraints of the AWS API member that receives it (botocore's models), and names
pulumi-aws generates are held to the provider's maximums. A missing type or property fails."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import botocore.model
import botocore.session
import pytest

from infra import limits, mocks, packaging
from infra.mocks import Inventory, Refused
from stack import config, manifest
from stack.config import (
    AUTO_APPROVE_MAX_BYTES,
    LAMBDA_ENVIRONMENT_MAX_BYTES,
    StackConfig,
    environment_size,
)
from stack.manifest import APPROVERS_FILTER
from taskcore.auto_approval import rules_from_text


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, f"{path}[]")
    else:
        yield path, value


def _covered(properties: dict[str, Any], path: str) -> bool:
    """`path` is in the table, itself or through a map- or list-valued property that holds it
    (a list mapped whole is checked for its number of items and each item)."""
    return "*" in properties or any(
        path == known or path.startswith((f"{known}.", f"{known}[]")) for known in properties
    )


def test_every_type_the_program_creates_is_in_the_table(graph: Inventory) -> None:
    types = {r.type for r in graph.resources if r.custom}
    assert types <= set(limits.LIMITS), sorted(types - set(limits.LIMITS))


def test_every_string_input_is_checked_or_says_why_not(graph: Inventory) -> None:
    """A new name-, id- or enum-like input cannot slip past: each string an input holds is
    mapped to its AWS API member, or marked a reference or document."""
    missing = set()
    for resource in graph.resources:
        if not resource.custom:
            continue
        properties = dict(limits.LIMITS[resource.type])
        for path, value in _leaves(dict(resource.provider_inputs)):
            if isinstance(value, str) and not _covered(properties, path):
                missing.add(f"{resource.type} {path}")
    assert not missing, sorted(missing)


def test_every_mapped_member_exists_in_botocores_model() -> None:
    for type_, properties in limits.LIMITS.items():
        for path, api in properties.items():
            if isinstance(api, limits.Api):
                assert limits.shape_of(api) is not None, (type_, path)


def test_documented_limits_still_say_what_they_quote() -> None:
    assert limits.documented_sentences_hold() == []


def test_both_stacks_pass_every_check(graph: Inventory) -> None:
    """The mocks refused nothing (they raise), and a second look agrees."""
    for resource in graph.resources:
        assert limits.violations(resource.type, resource.provider_inputs) == [], resource.name


def test_names_the_provider_generates_fit_with_their_suffix(graph: Inventory) -> None:
    for resource in graph.resources:
        rule = limits.AUTONAMED.get(resource.type)
        if rule and rule.property in resource.autonamed:
            generated = resource.autonamed[rule.property]
            assert generated.startswith(resource.name + "-")
            assert len(generated) == len(resource.name) + 1 + limits.RANDOM_HEX
            assert len(generated) <= rule.max_length


# -- what the checks refuse ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "inputs", "refusal"),
    [
        # The names today's main deployed with: EventBridge's 64-character rule names...
        (
            "aws:cloudwatch/eventRule:EventRule",
            {"name": "subscriptions-approval-decided-approval-decided-to-workflow-43f2df7"},
            "at 'name' failed to satisfy constraint: Member must have length less than or "
            "equal to 64",
        ),
        # ...and target ids.
        (
            "aws:cloudwatch/eventTarget:EventTarget",
            {"targetId": "subscriptions-approval-decided-approval-decided-to-workflow-target-1a2"},
            "at 'targetId' failed to satisfy constraint: Member must have length less than or "
            "equal to 64",
        ),
        (
            "aws:cloudwatch/eventRule:EventRule",
            {"name": "tasks dev stats"},
            r"Member must satisfy regular expression pattern: [\.\-_A-Za-z0-9]+",
        ),
        (
            "aws:lambda/function:Function",
            {"name": "f" * 65},
            "Member must have length less than or equal to 64",
        ),
        (
            "aws:lambda/function:Function",
            {"runtime": "python2.8"},
            "at 'runtime' failed to satisfy constraint: Member must satisfy enum value set",
        ),
        (
            "aws:lambda/function:Function",
            {"architectures": ["arm64", "sparc"]},
            "Member must satisfy enum value set",
        ),
        (
            "aws:lambda/function:Function",
            {"memorySize": 64.0},
            "Member must have value greater than or equal to 128",
        ),
        (
            "aws:lambda/function:Function",
            {"environment": {"variables": {"9LIVES": "x"}}},
            "key '9LIVES': Member must satisfy regular expression pattern",
        ),
        (
            "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
            {"maximumRetryAttempts": 3.0},
            "Member must have value less than or equal to 2",
        ),
        (
            "aws:sqs/queue:Queue",
            {"name": "q" * 81},
            "Member must have length less than or equal to 80",
        ),
        (
            "aws:sqs/queue:Queue",
            {"messageRetentionSeconds": 1_209_601.0},
            "Member must have value less than or equal to 1209600",
        ),
        (
            "aws:s3/bucket:Bucket",
            {"bucket": "Storage-Attachments-1a2b3c4"},
            "Member must satisfy regular expression pattern",
        ),
        (
            "aws:sfn/stateMachine:StateMachine",
            {"name": "tasks dev approval"},
            "Member must satisfy regular expression pattern",
        ),
        (
            "aws:iam/role:Role",
            {"tags": {"Component": "x" * 257}},
            "'Component': Value: Member must have length less than or equal to 256",
        ),
        (
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            {"comparisonOperator": "Above"},
            "Member must satisfy enum value set",
        ),
        (
            "aws:dynamodb/table:Table",
            {"name": "t"},
            "Member must have length greater than or equal to 3",
        ),
        ("aws:ec2/vpc:Vpc", {}, "not in infra/limits.py's LIMITS"),
        # Scheduled rules (the EventBridge User Guide's rules, pulumi-aws's note).
        (
            "aws:cloudwatch/eventRule:EventRule",
            {"scheduleExpression": "rate(1 minutes)"},
            "events:PutRule: schedule expression 'rate(1 minutes)': rate(1 minutes): the unit is "
            "singular for 1 and plural otherwise. AWS: 'Cron expressions have six required",
        ),
        (
            "aws:cloudwatch/eventRule:EventRule",
            {"scheduleExpression": "cron(0/15 * * * * *)"},
            "exactly one of day-of-month and day-of-week must be ?",
        ),
        (
            "aws:cloudwatch/eventRule:EventRule",
            {"scheduleExpression": "cron(0 * * * ?)"},
            "a cron expression has six fields",
        ),
        (
            "aws:cloudwatch/eventRule:EventRule",
            {"scheduleExpression": "cron(0 " + "0," * 130 + "0 * * ? *)"},
            "at 'scheduleExpression' failed to satisfy constraint: Member must have length less "
            "than or equal to 256",
        ),
        (
            "aws:cloudwatch/eventRule:EventRule",
            {"scheduleExpression": "rate(5 minutes)", "eventBusName": "tasks-dev"},
            "events:PutRule: a scheduled rule on the event bus 'tasks-dev'. AWS: "
            "'[schedule_expression] Can only be used on the default event bus.'",
        ),
        (
            "aws:cloudwatch/eventRule:EventRule",
            {"name": "tasks-dev-nothing"},
            "a rule with neither an event pattern nor a schedule expression. AWS: 'A rule must "
            "contain at least an EventPattern or ScheduleExpression.'",
        ),
        # Versions, aliases and cold starts.
        (
            "aws:lambda/function:Function",
            {"snapStart": {"applyOn": "Always"}},
            "at 'snapStart.applyOn' failed to satisfy constraint: "
            "Member must satisfy enum value set",
        ),
        (
            "aws:lambda/function:Function",
            {"runtime": "python3.11", "snapStart": {"applyOn": "PublishedVersions"}},
            "lambda:CreateFunction: SnapStart on runtime 'python3.11', which SnapStart does not "
            "support. AWS: 'Lambda SnapStart supports multiple runtimes, including Java 11",
        ),
        (
            "aws:lambda/function:Function",
            {
                "runtime": "python3.12",
                "snapStart": {"applyOn": "PublishedVersions"},
                "ephemeralStorage": {"size": 1024.0},
            },
            "SnapStart with 1024 MB of ephemeral storage. AWS: 'SnapStart does not support "
            "provisioned concurrency",
        ),
        (
            "aws:lambda/alias:Alias",
            {"name": "2"},
            "lambda:CreateAlias: 1 validation error detected: Value '2' at 'name' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern",
        ),
        (
            "aws:lambda/alias:Alias",
            {"name": "l" * 129},
            "Member must have length less than or equal to 128",
        ),
        (
            "aws:lambda/alias:Alias",
            {"functionVersion": "latest"},
            r"at 'functionVersion' failed to satisfy constraint: Member must satisfy regular "
            r"expression pattern: (\$LATEST(\.PUBLISHED)?|[0-9]+)",
        ),
        (
            "aws:lambda/permission:Permission",
            {"qualifier": "live alias"},
            "at 'qualifier' failed to satisfy constraint",
        ),
        (
            "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig",
            {"functionName": "f", "qualifier": "$LATEST"},
            "lambda:PutProvisionedConcurrencyConfig: provisioned concurrency on f:$LATEST. AWS: "
            '"Provisioned Concurrency is not supported on the unpublished version',
        ),
        (
            "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig",
            {"provisionedConcurrentExecutions": 0.0},
            "Member must have value greater than or equal to 1",
        ),
        # Function URLs (CreateFunctionUrlConfig) and the grants they need (AddPermission).
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {"functionName": "f", "qualifier": "2"},
            "lambda:CreateFunctionUrlConfig: 1 validation error detected: Value '2' at "
            "'qualifier' failed to satisfy constraint: Member must satisfy regular expression "
            "pattern",
        ),
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {"functionName": "f", "qualifier": "2"},
            'lambda:CreateFunctionUrlConfig: a function URL on f:2, a version. AWS: "You can '
            "apply function URLs to any function alias, or to the $LATEST unpublished function "
            "version. You can't add a function URL to any other function version.\"",
        ),
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {"qualifier": "$LATEST"},
            "Value '$LATEST' at 'qualifier' failed to satisfy constraint",
        ),
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {"invokeMode": "STREAM"},
            "at 'invokeMode' failed to satisfy constraint: Member must satisfy enum value set: "
            "[BUFFERED, RESPONSE_STREAM]",
        ),
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {"authorizationType": "JWT"},
            "at 'authorizationType' failed to satisfy constraint: Member must satisfy enum value "
            "set: [NONE, AWS_IAM]",
        ),
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {"cors": {"allowOrigins": [f"https://{n}.example.com" for n in range(101)]}},
            "at 'cors.allowOrigins' failed to satisfy constraint: Member must have length less "
            "than or equal to 100",
        ),
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {"cors": {"allowOrigins": ["https://" + "o" * 250]}},
            "Member must have length less than or equal to 253",
        ),
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {"cors": {"allowMethods": ["GET", "OPTIONS"]}},
            "Value ['GET', 'OPTIONS'] at 'cors.allowMethods' failed to satisfy constraint: "
            "Member must have length less than or equal to 6",
        ),
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {"cors": {"maxAge": 86401.0}},
            "at 'cors.maxAge' failed to satisfy constraint: Member must have value less than or "
            "equal to 86400",
        ),
        (
            "aws:lambda/functionUrl:FunctionUrl",
            {"functionName": "f" * 65},
            "at 'functionName' failed to satisfy constraint: Member must have length less than "
            "or equal to 64",
        ),
        (
            "aws:lambda/permission:Permission",
            {"functionUrlAuthType": "PUBLIC"},
            "at 'functionUrlAuthType' failed to satisfy constraint: Member must satisfy enum "
            "value set: [NONE, AWS_IAM]",
        ),
        (
            "aws:lambda/function:Function",
            {"layers": ["arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerArm64"]},
            "at 'layers[]' failed to satisfy constraint: Member must satisfy regular expression "
            "pattern",
        ),
        (
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            {
                "rules": [
                    {"id": "a", "transitions": [{"days": 29.0, "storageClass": "STANDARD_IA"}]}
                ]
            },
            "s3:PutBucketLifecycleConfiguration: rule 'a' moves objects to STANDARD_IA after 29 "
            "days. AWS: 'Before you transition objects to S3 Standard-IA or S3 One Zone-IA, you "
            "must store them for at least 30 days in Amazon S3.",
        ),
        (
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            {"rules": [{"id": "a", "transitions": [{"days": 0.0, "storageClass": "ONEZONE_IA"}]}]},
            "rule 'a' moves objects to ONEZONE_IA after 0 days",
        ),
        (
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            {"rules": [{"id": "a", "transitions": [{"days": 30.0, "storageClass": "COLD"}]}]},
            "at 'rules[].transitions[].storageClass' failed to satisfy constraint: Member must "
            "satisfy enum value set: [GLACIER, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, "
            "DEEP_ARCHIVE, GLACIER_IR]",
        ),
    ],
)
def test_aws_refusals(type_: str, inputs: dict[str, Any], refusal: str) -> None:
    problems = "\n".join(limits.violations(type_, inputs))
    assert refusal in problems


MAPPING_TYPE = "aws:lambda/eventSourceMapping:EventSourceMapping"


def _filters(*patterns: str) -> dict[str, Any]:
    return {"filterCriteria": {"filters": [{"pattern": p} for p in patterns]}}


@pytest.mark.parametrize(
    ("inputs", "refusal"),
    [
        # Lambda's guide: five filters per mapping by default.
        (_filters(*["{}"] * 6), "6 filters on one event source mapping, over 5"),
        # botocore's model: a pattern of at most 4,096 characters.
        (
            _filters(json.dumps({"dynamodb": {"Keys": {"sk": {"S": ["x" * 4096]}}}})),
            "at 'filterCriteria.filters[].pattern' failed to satisfy constraint: Member must "
            "have length less than or equal to 4096",
        ),
    ],
    ids=["six-filters", "long-pattern"],
)
def test_what_lambda_refuses_in_filter_criteria(inputs: dict[str, Any], refusal: str) -> None:
    assert refusal in "\n".join(limits.violations(MAPPING_TYPE, inputs))


def test_five_filters_of_4096_characters_are_accepted() -> None:
    pattern = json.dumps({"dynamodb": {"Keys": {"sk": {"S": ["x"]}}}})
    pattern = pattern.replace('"x"', '"' + "x" * (4096 - len(pattern) + 1) + '"')
    assert len(pattern) == 4096
    assert limits.violations(MAPPING_TYPE, _filters(*[pattern] * 5)) == []


@pytest.mark.parametrize(
    "transition",
    [
        {"days": 30.0, "storageClass": "STANDARD_IA"},
        {"days": 0.0, "storageClass": "GLACIER_IR"},
        {"days": 1.0, "storageClass": "GLACIER"},
    ],
)
def test_transitions_aws_accepts(transition: dict[str, Any]) -> None:
    inputs = {"rules": [{"id": "a", "status": "Enabled", "transitions": [transition]}]}
    assert (
        limits.violations(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", inputs
        )
        == []
    )


def test_the_mocks_refuse_an_archive_colder_than_s3_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stack config refuses it first (tasks:archiveColdAfterDays); the mocks refuse the
    lifecycle rule itself, whatever let it through."""
    with pytest.raises(ValueError, match="archiveColdAfterDays is 29"):
        mocks.run("dev", overrides={"tasks:archiveColdAfterDays": 29})
    monkeypatch.setitem(config.ARCHIVE_COLD_CLASSES, "STANDARD_IA", 0)  # a config that lets it by
    with pytest.raises(ValueError, match="moves objects to STANDARD_IA after 29 days"):
        mocks.run("dev", overrides={"tasks:archiveColdAfterDays": 29})


def test_the_provider_refuses_a_generated_name_that_cannot_fit() -> None:
    """pulumi-aws adds `-` and 7 hex characters and refuses (never truncates) past its max."""
    with pytest.raises(ValueError, match="longer than maximum length 64"):
        limits.autoname("aws:cloudwatch/eventRule:EventRule", "r" * 57, {})
    assert len(limits.autoname("aws:cloudwatch/eventRule:EventRule", "r" * 56, {})["name"]) == 64
    assert limits.autoname("aws:cloudwatch/eventRule:EventRule", "r", {"name": "given"}) == {}
    bucket = limits.autoname("aws:s3/bucket:Bucket", "Storage", {})["bucket"]
    assert bucket.startswith("storage-")


def test_the_program_is_refused_when_a_manifest_name_outgrows_aws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole program, not one resource: a rule name AWS would refuse stops the mocked run
    as it would stop `pulumi preview`."""
    stats = manifest.function("stats")
    long_rule = attrs.evolve(
        stats.rules[0], name="task-events-to-the-per-user-statistics-consumer-of-the-stack"
    )
    longer = attrs.evolve(stats, rules=(long_rule,))
    monkeypatch.setattr(
        manifest, "FUNCTIONS", tuple(longer if f is stats else f for f in manifest.FUNCTIONS)
    )
    # Pulumi wraps the mock's refusal in a ValueError of its own, with the refusal's text.
    with pytest.raises(ValueError, match="at 'name' failed to satisfy constraint"):
        mocks.run("prod")


def test_a_run_without_a_region_is_refused_as_the_provider_refuses() -> None:
    with pytest.raises(Refused, match="no region"):
        mocks.run("dev", overrides={"aws:region": None})


def test_the_optional_resources_are_covered_too() -> None:
    """A custom domain adds resource types the stacks' own graphs lack; the mocks check them as
    they are registered, and the table covers every string they hold."""
    graph = mocks.run(
        "prod",
        overrides={
            "tasks:domainName": "api.tasks.example.com",
            "tasks:certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
            "tasks:jwtIssuer": "https://login.example.com/",
            "tasks:jwtAudience": "tasks-api",
        },
    )
    assert graph.of_type("aws:apigatewayv2/domainName:DomainName")
    test_every_type_the_program_creates_is_in_the_table(graph)
    test_every_string_input_is_checked_or_says_why_not(graph)


def test_two_rules_with_one_name_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """PutRule with an existing name updates that rule: two manifest rules of one name would
    silently become one on AWS. The mocks refuse it."""
    stats, cleanup = manifest.function("stats"), manifest.function("attachment-cleanup")
    same = attrs.evolve(cleanup, rules=(attrs.evolve(cleanup.rules[0], name=stats.rules[0].name),))
    monkeypatch.setattr(
        manifest, "FUNCTIONS", tuple(same if f is cleanup else f for f in manifest.FUNCTIONS)
    )
    # The rule, or its dead-letter queue, whichever registers first.
    with pytest.raises(ValueError, match="are both named 'tasks-dev-task-events-to-stats"):
        mocks.run("dev")


# -- rules that span two resources, in whole programs -------------------------------------------

PROGRAM_HEADER = """
import pulumi_aws as aws

FUNCTION = dict(name="f", role="arn:aws:iam::123456789012:role/r", runtime="python3.12",
                handler="h.handler")
SNAPSTART = aws.lambda_.FunctionSnapStartArgs(apply_on="PublishedVersions")
"""
# A function, its `live` alias and provisioned concurrency on it, as `infra.functions` makes
# them; the cases below change one thing each.
FUNCTION_THEN_CONFIG = """
function = aws.lambda_.Function("f", publish={publish}, snap_start={snap_start},
                                reserved_concurrent_executions={reserved}, **FUNCTION)
alias = aws.lambda_.Alias("f-live", name="live", function_name=function.name,
                          function_version=function.version)
aws.lambda_.ProvisionedConcurrencyConfig("f-provisioned", function_name=function.name,
                                         qualifier={qualifier},
                                         provisioned_concurrent_executions={count})
"""
# The other order: the config names the function before the function is registered.
CONFIG_THEN_FUNCTION = """
import pulumi

config = aws.lambda_.ProvisionedConcurrencyConfig(
    "f-provisioned", function_name="f", qualifier="1", provisioned_concurrent_executions={count}
)
aws.lambda_.Function("f", publish=True, snap_start={snap_start},
                     reserved_concurrent_executions={reserved}, **FUNCTION,
                     opts=pulumi.ResourceOptions(depends_on=[config]))
"""
CORRECT = {
    "publish": True,
    "snap_start": None,
    "reserved": 5,
    "qualifier": "alias.name",
    "count": 3,
}


def _run_program(root: Path, body: str) -> mocks.Inventory:
    (root / "Pulumi.yaml").write_text("name: tasks\nruntime: python\n")
    (root / "Pulumi.dev.yaml").write_text("config:\n  aws:region: eu-west-1\n")
    (root / "__main__.py").write_text(PROGRAM_HEADER + body)
    return mocks.run("dev", root=root)


def test_a_correct_provisioned_program_passes(tmp_path: Path) -> None:
    graph = _run_program(tmp_path, FUNCTION_THEN_CONFIG.format(**CORRECT))
    (config,) = graph.of_type(
        "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
    )
    assert config.inputs["qualifier"] == "live"
    assert _run_program(tmp_path, CONFIG_THEN_FUNCTION.format(**CORRECT)).of_type(
        "aws:lambda/function:Function"
    )


@pytest.mark.parametrize(
    ("program", "changes", "refusal"),
    [
        (
            FUNCTION_THEN_CONFIG,
            {"snap_start": "SNAPSTART"},
            "provisioned concurrency on 'f', whose SnapStart is on. AWS: 'Lambda SnapStart and PC "
            "cannot be enabled at the same time, on the same function.'",
        ),
        (
            CONFIG_THEN_FUNCTION,
            {"snap_start": "SNAPSTART"},
            "SnapStart on 'f', which has provisioned concurrency. AWS: 'Lambda SnapStart and PC "
            "cannot be enabled",
        ),
        (
            FUNCTION_THEN_CONFIG,
            {"publish": False},
            "provisioned concurrency on f:live, an alias of $LATEST. AWS: ",
        ),
        (
            FUNCTION_THEN_CONFIG,
            {"qualifier": "'$LATEST'"},
            "provisioned concurrency on f:$LATEST. AWS: ",
        ),
        (
            FUNCTION_THEN_CONFIG,
            {"reserved": 2},
            "3 provisioned on 'f', which reserves 2. AWS: \"You can't allocate more provisioned "
            'concurrency than reserved concurrency for a function."',
        ),
        (CONFIG_THEN_FUNCTION, {"reserved": 2}, "3 provisioned on 'f', which reserves 2"),
        (
            FUNCTION_THEN_CONFIG,
            {"count": 0},
            "at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member must have "
            "value greater than or equal to 1",
        ),
    ],
)
def test_the_mocks_refuse_what_aws_refuses_across_resources(
    tmp_path: Path, program: str, changes: dict[str, object], refusal: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(refusal)):
        _run_program(tmp_path, program.format(**{**CORRECT, **changes}))


def test_snapstart_runtimes_are_the_faqs_among_botocores() -> None:
    """Java 11, Python 3.12 and .NET 8 and newer, of the runtimes botocore's model lists."""
    runtimes = botocore.session.get_session().get_service_model("lambda").shape_for("Runtime")
    assert isinstance(runtimes, botocore.model.StringShape)
    supported = {r for r in runtimes.enum if limits.snapstart_supports(r)}
    assert {"python3.12", "python3.13", "java11", "java21", "dotnet8"} <= supported
    assert not supported & {"python3.11", "java8", "java8.al2", "dotnet6", "nodejs22.x"}
    assert all(r.startswith(("python3.", "java", "dotnet")) for r in supported)
    assert limits.snapstart_supports(packaging.RUNTIME)


# A function, its `live` alias and a Function URL on it, as `infra.urls` makes them.
FUNCTION_URL_PROGRAM = """
import pulumi

function = aws.lambda_.Function("f", publish=True, **FUNCTION)
alias = aws.lambda_.Alias("f-live", name="live", function_name=function.name,
                          function_version=function.version)
aws.lambda_.FunctionUrl("f-url", function_name=function.name, qualifier={qualifier},
                        authorization_type="NONE", invoke_mode="RESPONSE_STREAM",
                        opts=pulumi.ResourceOptions(depends_on=[alias]))
"""


def test_a_function_url_on_an_alias_passes(tmp_path: Path) -> None:
    graph = _run_program(tmp_path, FUNCTION_URL_PROGRAM.format(qualifier="alias.name"))
    (url,) = graph.of_type("aws:lambda/functionUrl:FunctionUrl")
    assert url.inputs["qualifier"] == "live"
    assert url.outputs["functionUrl"].endswith(".lambda-url.eu-west-1.on.aws/")
    unqualified = _run_program(tmp_path, FUNCTION_URL_PROGRAM.format(qualifier="None"))
    assert "qualifier" not in unqualified.of_type("aws:lambda/functionUrl:FunctionUrl")[0].inputs


@pytest.mark.parametrize(
    ("qualifier", "refusal"),
    [
        (
            "'prod'",
            "lambda:CreateFunctionUrlConfig: a function URL on f:prod, which is not an alias of "
            "'f'. AWS: \"You can apply function URLs to any function alias",
        ),
        ("function.version", "a function URL on f:1, a version"),
        ("'$LATEST'", "Value '$LATEST' at 'qualifier' failed to satisfy constraint"),
    ],
)
def test_the_mocks_refuse_a_function_url_on_anything_but_an_alias(
    tmp_path: Path, qualifier: str, refusal: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(refusal)):
        _run_program(tmp_path, FUNCTION_URL_PROGRAM.format(qualifier=qualifier))


def test_two_function_urls_on_one_qualifier_are_refused(tmp_path: Path) -> None:
    second = """
aws.lambda_.FunctionUrl("f-url-2", function_name=function.name, qualifier=alias.name,
                        authorization_type="NONE")
"""
    with pytest.raises(ValueError, match=r"'f-url(-2)?' and 'f-url(-2)?' are both named 'live'"):
        _run_program(tmp_path, FUNCTION_URL_PROGRAM.format(qualifier="alias.name") + second)


class TestSnsFilterPolicies:
    """SNS's filter policy constraints (the subscription-filter-policy-constraints page)."""

    @staticmethod
    def refused(policy: object, scope: str = "MessageAttributes") -> list[str]:
        inputs = {
            "topic": "arn:aws:sns:eu-west-1:1:t",
            "protocol": "email",
            "endpoint": "approvers@example.com",
            "filterPolicy": json.dumps(policy) if not isinstance(policy, str) else policy,
            "filterPolicyScope": scope,
        }
        return limits.violations("aws:sns/topicSubscription:TopicSubscription", inputs)

    def test_the_approvers_filter_is_accepted(self) -> None:
        assert self.refused(APPROVERS_FILTER) == []

    @pytest.mark.parametrize(
        ("policy", "scope", "words"),
        [
            ({f"k{n}": ["v"] for n in range(6)}, "MessageAttributes", "6 keys"),
            ({"a": list(range(16)), "b": list(range(10))}, "MessageAttributes", "160 ways"),
            ({"a": {"b": ["c"]}}, "MessageAttributes", "nested"),
            ("{not json", "MessageAttributes", "not JSON"),
            (["a"], "MessageAttributes", "not a JSON object"),
            ({"a": ["b"]}, "Everything", "MessageAttributes|MessageBody"),
        ],
    )
    def test_what_sns_refuses_is_refused(self, policy: object, scope: str, words: str) -> None:
        problems = self.refused(policy, scope)
        assert any(words in p for p in problems), problems

    def test_a_nested_policy_on_the_body_is_allowed(self) -> None:
        assert self.refused({"a": {"b": ["c"]}}, "MessageBody") == []


# -- a function's environment: 4 KB in all -----------------------------------------------------

FUNCTION_TYPE = "aws:lambda/function:Function"


@pytest.mark.parametrize(
    ("value", "refused"),
    [("x" * 4086, False), ("x" * 4087, True), ("é" * 2043, False), ("é" * 2044, True)],
    ids=["4096", "4097", "4096-utf8", "4098-utf8"],
)
def test_a_functions_environment_is_held_to_4_kb_as_lambda_measures_it(
    value: str, refused: bool
) -> None:
    """`{"ABC":"…"}` is 10 bytes plus the value's; an `é` takes two bytes."""
    problems = limits.violations(FUNCTION_TYPE, {"environment": {"variables": {"ABC": value}}})
    assert any("over 4096 (largest: ABC)" in p for p in problems) is refused
    if refused:
        assert "4 KB, for all environment variables" in "\n".join(problems)


def test_unknown_values_leave_a_lower_bound() -> None:
    """At a preview, values from resources not created yet are unknown: what is known is
    measured, and only a known excess is refused."""
    unknown = {"ABC": "x" * 4000, "DEF": None}
    assert not limits.violations(FUNCTION_TYPE, {"environment": {"variables": unknown}})
    over = {"ABC": "x" * 4100, "DEF": None}
    assert limits.violations(FUNCTION_TYPE, {"environment": {"variables": over}})


def test_the_api_function_keeps_room_with_the_most_rules_a_stack_may_name() -> None:
    """Rules up to their budget (half of the 4 KB) leave the API function's environment
    within Lambda's limit in either stack: the program runs, which the mocks would refuse."""
    rules: list[str] = []
    while True:  # as many rules as the config accepts
        more = [*rules, f"rule-{len(rules):03}: high, critical by group-{len(rules):03}"]
        try:
            StackConfig.from_values("dev", {"tasks:autoApprove": more})
        except ValueError:
            break
        rules = more
    for stack in ("dev", "prod"):
        graph = mocks.run(stack, overrides={"tasks:autoApprove": rules})
        (api,) = [f for f in graph.of_type(FUNCTION_TYPE) if f.name == "functions-api"]
        variables = api.inputs["environment"]["variables"]
        assert len(rules_from_text(variables["AUTO_APPROVE"])) == len(rules)
        taken = environment_size({"AUTO_APPROVE": variables["AUTO_APPROVE"]})
        assert AUTO_APPROVE_MAX_BYTES - 50 < taken <= AUTO_APPROVE_MAX_BYTES
        assert environment_size(variables) <= LAMBDA_ENVIRONMENT_MAX_BYTES
