"""The policy pack (`policy/rules.py`), run by its own validators over the mocked graphs of both
stacks (and the synthetic one): no mandatory violation, exactly the advisory ones each stack
chooses, and every policy shown to catch what it is for."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

from infra.mocks import Inventory, Resource
from policy.offline import Violation, check
from policy.rules import POLICIES
from tests.infra import graph as g

SYNTHETIC_CONFIG = {"routes-authorized": {"openRoutes": ["GET /health", "POST /sample/open"]}}
# The advisory rules each graph breaks on purpose: dev keeps logs a week and has no PITR.
ADVISORIES = {
    "dev": {"log-retention-30-days", "table-point-in-time-recovery"},
    "prod": set(),
    "synthetic": {"log-retention-30-days", "table-point-in-time-recovery"},
}


def _check(graph: Inventory, graph_name: str, **kwargs: Any) -> list[Violation]:
    config = SYNTHETIC_CONFIG if graph_name == "synthetic" else None
    return check(graph, config=config, **kwargs)


def test_the_stacks_pass_the_pack(graph: Inventory, graph_name: str) -> None:
    found = _check(graph, graph_name)
    mandatory = [str(v) for v in found if v.level == EnforcementLevel.MANDATORY]
    assert mandatory == []
    assert {v.policy for v in found} == ADVISORIES[graph_name]


def test_every_policy_has_a_level_and_a_description() -> None:
    assert len({p.name for p in POLICIES}) == len(POLICIES)
    for policy in POLICIES:
        assert policy.enforcement_level in {EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY}
        assert policy.description
        assert isinstance(policy, ResourceValidationPolicy | StackValidationPolicy)


# -- each policy catches what it is for -----------------------------------------------------------

Change = Callable[[Resource], Resource]


def _inputs(**changes: Any) -> Change:
    return lambda r: attrs.evolve(r, inputs={**r.inputs, **changes})


def _policy(change: Callable[[dict[str, Any]], None], key: str = "policy") -> Change:
    def apply(resource: Resource) -> Resource:
        document = json.loads(resource.inputs[key])
        change(document)
        return attrs.evolve(resource, inputs={**resource.inputs, key: json.dumps(document)})

    return apply


def _first_statement(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return lambda document: document["Statement"][0].update(changes)


def _state_machine_without_retries(resource: Resource) -> Resource:
    definition = json.loads(resource.inputs["definition"])
    for state in definition["States"].values():
        state.pop("Retry", None)
    return attrs.evolve(resource, inputs={**resource.inputs, "definition": json.dumps(definition)})


def _unknown_type(resource: Resource) -> Resource:
    return attrs.evolve(resource, type="aws:ec2/vpc:Vpc")


UNQUALIFIED = "arn:aws:lambda:eu-west-1:123456789012:function:tasks-prod-stats"


def _unqualified(key: str) -> Change:
    """`key`'s function ARN without its `:live`."""
    return lambda r: attrs.evolve(r, inputs={**r.inputs, key: r.inputs[key].replace(":live", "")})


def _lambda_step(function: str) -> Change:
    def apply(resource: Resource) -> Resource:
        definition = json.loads(resource.inputs["definition"])
        definition["States"]["Step"] = {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function, "Payload.$": "$"},
            "Retry": [{"ErrorEquals": ["States.TaskFailed"], "BackoffRate": 2.0}],
            "End": True,
        }
        return attrs.evolve(
            resource, inputs={**resource.inputs, "definition": json.dumps(definition)}
        )

    return apply


BREAKAGES: list[tuple[str, str, Change]] = [
    (
        "iam-least-privilege",
        g.ROLE_POLICY,
        _policy(_first_statement(Action=["dynamodb:*"])),
    ),
    ("iam-least-privilege", g.ROLE_POLICY, _policy(_first_statement(Resource="*"))),
    (
        "iam-least-privilege",
        g.ROLE_POLICY,
        _policy(_first_statement(Resource=["arn:aws:dynamodb:eu-west-1:123456789012:table/*"])),
    ),
    (
        "resource-policies-not-public",
        "aws:sqs/queuePolicy:QueuePolicy",
        _policy(_first_statement(Principal="*")),
    ),
    (
        "resource-policies-not-public",
        "aws:sqs/queuePolicy:QueuePolicy",
        _policy(_first_statement(Condition={})),
    ),
    (
        "resource-policies-not-public",
        g.KEY,
        _policy(_first_statement(Principal={"AWS": "arn:aws:iam::123456789012:user/bob"})),
    ),
    (
        "roles-trust-one-service",
        g.ROLE,
        _policy(_first_statement(Principal={"Service": "ec2.amazonaws.com"}), "assumeRolePolicy"),
    ),
    (
        "routes-authorized",
        g.ROUTE,
        _inputs(routeKey="DELETE /tasks/{taskId}", authorizationType="NONE", authorizerId=None),
    ),
    ("triggers-invoke-live-alias", g.PERMISSION, _inputs(qualifier=None)),
    ("triggers-invoke-live-alias", g.INVOKE_CONFIG, _inputs(qualifier="$LATEST")),
    ("triggers-invoke-live-alias", g.INTEGRATION, _unqualified("integrationUri")),
    ("triggers-invoke-live-alias", g.MAPPING, _unqualified("functionName")),
    ("triggers-invoke-live-alias", g.TARGET, _inputs(arn=UNQUALIFIED)),
    ("triggers-invoke-live-alias", g.TARGET, _inputs(arn=f"{UNQUALIFIED}:1")),
    ("triggers-invoke-live-alias", g.STATE_MACHINE, _lambda_step(UNQUALIFIED)),
    ("triggers-invoke-live-alias", g.STATE_MACHINE, _lambda_step("tasks-prod-stats:$LATEST")),
    (
        "triggers-invoke-live-alias",
        g.ROLE_POLICY,
        _policy(_first_statement(Action=["lambda:InvokeFunction"], Resource=[UNQUALIFIED])),
    ),
    ("lambda-invoke-permissions-scoped", g.PERMISSION, _inputs(sourceArn=None)),
    ("lambda-invoke-permissions-scoped", g.PERMISSION, _inputs(principal="s3.amazonaws.com")),
    ("lambda-invoke-permissions-scoped", g.PERMISSION, _inputs(principal="*")),
    (
        "lambda-invoke-permissions-scoped",
        g.PERMISSION,
        _inputs(principal="*", action="lambda:InvokeFunctionUrl", functionUrlAuthType="AWS_IAM"),
    ),
    ("triggers-invoke-live-alias", g.FUNCTION_URL, _inputs(qualifier=None)),
    ("cors-named-origins", g.FUNCTION_URL, _inputs(cors={"allowOrigins": ["*"]})),
    (
        "cors-named-origins",
        g.FUNCTION_URL,
        _inputs(cors={"allowOrigins": ["http://tasks.example.com"]}),
    ),
    ("log-groups-encrypted-with-retention", g.LOG_GROUP, _inputs(kmsKeyId=None)),
    ("log-groups-encrypted-with-retention", g.LOG_GROUP, _inputs(retentionInDays=None)),
    ("log-retention-30-days", g.LOG_GROUP, _inputs(retentionInDays=14)),
    ("table-encrypted-with-cmk", g.TABLE, _inputs(serverSideEncryption={"enabled": False})),
    ("table-point-in-time-recovery", g.TABLE, _inputs(pointInTimeRecovery={"enabled": False})),
    ("production-data-protected", g.TABLE, lambda r: attrs.evolve(r, protect=False)),
    ("production-data-protected", g.BUCKET, _inputs(forceDestroy=True)),
    ("production-data-protected", g.KEY, _inputs(deletionWindowInDays=7)),
    (
        "production-data-protected",
        "aws:cognito/userPool:UserPool",
        _inputs(deletionProtection="INACTIVE"),
    ),
    (
        "bucket-private-tls-encrypted-versioned",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        _inputs(restrictPublicBuckets=False),
    ),
    (
        "bucket-private-tls-encrypted-versioned",
        "aws:s3/bucketVersioning:BucketVersioning",
        _inputs(versioningConfiguration={"status": "Suspended"}),
    ),
    (
        "bucket-private-tls-encrypted-versioned",
        "aws:s3/bucketPolicy:BucketPolicy",
        _policy(lambda d: d.update(Statement=d["Statement"][1:])),
    ),
    (
        "bucket-private-tls-encrypted-versioned",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        _inputs(rule={"objectOwnership": "ObjectWriter"}),
    ),
    (
        "bucket-private-tls-encrypted-versioned",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        _inputs(rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]),
    ),
    (
        "archive-objects-kms-encrypted",
        "aws:s3/bucketPolicy:BucketPolicy",
        _policy(lambda d: d.update(Statement=d["Statement"][:2])),
    ),
    (
        "archive-objects-kms-encrypted",
        "aws:s3/bucketPolicy:BucketPolicy",
        _policy(lambda d: d["Statement"][2].update(Condition={})),
    ),
    (
        "iam-least-privilege",
        g.ROLE_POLICY,
        _policy(_first_statement(Resource=["arn:aws:s3:::tasks-prod-bucket/archive*"])),
    ),
    ("kms-key-rotates", g.KEY, _inputs(enableKeyRotation=False)),
    ("async-failures-kept", g.MAPPING, _inputs(destinationConfig=None)),
    ("async-failures-kept", g.TARGET, _inputs(deadLetterConfig=None)),
    ("async-failures-kept", g.INVOKE_CONFIG, _inputs(destinationConfig=None)),
    ("functions-traced-and-encrypted", g.FUNCTION, _inputs(tracingConfig={"mode": "PassThrough"})),
    ("functions-on-arm64", g.FUNCTION, _inputs(architectures=["x86_64"])),
    ("queues-encrypted", g.QUEUE, _inputs(kmsMasterKeyId=None)),
    ("topics-encrypted", "aws:sns/topic:Topic", _inputs(kmsMasterKeyId=None)),
    ("state-machines-observable-and-retrying", g.STATE_MACHINE, _state_machine_without_retries),
    (
        "state-machines-observable-and-retrying",
        g.STATE_MACHINE,
        _inputs(tracingConfiguration={"enabled": False}),
    ),
    ("stage-throttled-and-logged", g.STAGE, _inputs(accessLogSettings=None)),
    (
        "cors-named-origins",
        g.API,
        _inputs(corsConfiguration={"allowOrigins": ["http://tasks.example.com"]}),
    ),
    (
        "generated-secrets-long-enough",
        "random:index/randomPassword:RandomPassword",
        _inputs(length=16),
    ),
    (
        "no-secrets-in-environment",
        g.FUNCTION,
        _inputs(environment={"variables": {"CURSOR_SECRET": "s" * 48, "SECRET_ARN": "arn"}}),
    ),
    (
        "prod-critical-reviewed",
        g.FUNCTION,
        _inputs(environment={"variables": {"AUTO_APPROVE": '["ops: high, critical by ops"]'}}),
    ),
    ("aws-api-limits", g.RULE, _inputs(name="r" * 65)),
    ("aws-api-limits", g.FUNCTION, _inputs(environment={"variables": {"BIG": "x" * 4096}})),
    ("aws-api-limits", g.QUEUE, _unknown_type),
    ("tagged", g.FUNCTION, _inputs(tags={"Application": "tasks", "Environment": "prod"})),
    (
        "tagged",
        g.QUEUE,
        _inputs(tags={**{"Application": "tasks", "Component": "x"}, "Environment": "dev"}),
    ),
]


def _broken(graph: Inventory, type_: str, change: Change) -> Inventory:
    target = graph.of_type(type_)[0]
    resources = tuple(change(r) if r is target else r for r in graph.resources)
    return attrs.evolve(graph, resources=resources)


@pytest.mark.parametrize(
    ("policy_name", "type_", "change"),
    BREAKAGES,
    ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(BREAKAGES)],
)
def test_each_policy_catches_its_breakage(
    graphs: dict[str, Inventory], policy_name: str, type_: str, change: Change
) -> None:
    (policy,) = [p for p in POLICIES if p.name == policy_name]
    graph = _broken(graphs["prod"], type_, change)
    assert [v for v in check(graph, [policy]) if v.policy == policy_name]


def test_a_function_without_alarms_is_caught(graphs: dict[str, Inventory]) -> None:
    prod = graphs["prod"]
    function = g.function(prod, "stats").outputs["name"]
    resources = tuple(
        r
        for r in prod.resources
        if not (r.type == g.ALARM and r.inputs.get("dimensions") == {"FunctionName": function})
    )
    (policy,) = [p for p in POLICIES if p.name == "everything-alarmed"]
    found = check(attrs.evolve(prod, resources=resources), [policy])
    assert [str(v) for v in found] == [
        "[mandatory] everything-alarmed: functions-stats: no alarm on "
        "['Duration', 'Errors', 'Throttles']"
    ]


def test_a_scheduled_function_without_a_missed_runs_alarm_is_caught(
    graphs: dict[str, Inventory],
) -> None:
    prod = graphs["prod"]
    function = g.function(prod, "reminders").outputs["name"]
    resources = tuple(
        r
        for r in prod.resources
        if not (r.type == g.ALARM and r.inputs.get("metricName") == "Invocations")
    )
    (policy,) = [p for p in POLICIES if p.name == "scheduled-runs-watched"]
    assert check(prod, [policy]) == []
    found = check(attrs.evolve(prod, resources=resources), [policy])
    assert [str(v) for v in found] == [
        f"[mandatory] scheduled-runs-watched: subscriptions-reminders-due-date-reminders-target: "
        f"{function} runs on a schedule with no alarm on missed runs (its Invocations below a "
        "threshold)"
    ]


def test_every_policy_is_shown_to_catch_something() -> None:
    shown = {name for name, _, _ in BREAKAGES} | {
        "everything-alarmed",
        "function-urls-verified-in-function",
        "scheduled-runs-watched",
    }
    assert shown == {p.name for p in POLICIES}


def test_the_pack_starts_as_crossguard_starts_it(tmp_path: Path) -> None:
    """The analyzer runs the pack's directory with the pack's interpreter; the pack then serves
    on a port it prints. It loads here from outside the repository, as it would there."""
    pack = Path(__file__).resolve().parents[2] / "policy"
    process = subprocess.Popen(
        [sys.executable, str(pack)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().decode().strip()
        assert port.isdigit(), process.stderr.read().decode() if process.stderr else port
    finally:
        process.kill()
        process.wait(timeout=10)


def test_live_alias_triggers_pass_and_the_message_says_what_is_invoked(
    graphs: dict[str, Inventory],
) -> None:
    (policy,) = [p for p in POLICIES if p.name == "triggers-invoke-live-alias"]
    assert check(graphs["synthetic"], [policy]) == []
    found = check(_broken(graphs["prod"], g.TARGET, _inputs(arn=UNQUALIFIED)), [policy])
    assert [v.message for v in found] == [
        f"{graphs['prod'].of_type(g.TARGET)[0].name}: the target invokes {UNQUALIFIED}, the "
        "unqualified function, not its 'live' alias"
    ]


# -- no Function URL without in-function verification (a stack policy: outputs) ---------------

URL_POLICY = "function-urls-verified-in-function"


def _outputs(graph: Inventory, name: str, change: Callable[[dict[str, Any]], None]) -> Inventory:
    """`graph` with the outputs of the resource named `name` changed (what a stack policy sees)."""

    def apply(resource: Resource) -> Resource:
        if resource.name != name:
            return resource
        outputs = copy.deepcopy(dict(resource.outputs))
        change(outputs)
        return attrs.evolve(resource, outputs=outputs)

    return attrs.evolve(graph, resources=tuple(apply(r) for r in graph.resources))


def _url_policy(graph: Inventory) -> list[str]:
    (policy,) = [p for p in POLICIES if p.name == URL_POLICY]
    return [v.message for v in check(graph, [policy])]


def test_urls_on_functions_that_verify_tokens_pass(graphs: dict[str, Inventory]) -> None:
    for graph in graphs.values():
        assert graph.of_type(g.FUNCTION_URL)
        assert _url_policy(graph) == []


def test_an_aws_iam_url_needs_no_token_verification(graphs: dict[str, Inventory]) -> None:
    def iam(outputs: dict[str, Any]) -> None:
        outputs["authorizationType"] = "AWS_IAM"

    def unverified(outputs: dict[str, Any]) -> None:
        del outputs["environment"]["variables"]["JWT_ISSUER"]

    graph = _outputs(
        _outputs(graphs["prod"], "urls-download", iam), "functions-download", unverified
    )
    found = _url_policy(graph)
    # The URL is fine; only the grants to everyone, now for no NONE URL, are not.
    assert found
    assert all("has no Function URL whose function verifies tokens" in m for m in found)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        (
            "functions-download",
            lambda o: o["environment"]["variables"].pop("JWT_AUDIENCE"),
            "urls-download: a Function URL anyone can call (auth type NONE) on "
            "tasks-prod-download, which does not verify tokens itself (no JWT_AUDIENCE in its "
            "environment)",
        ),
        (
            "functions-download",
            lambda o: o.pop("environment"),
            "(no JWT_ISSUER, JWT_AUDIENCE in its environment)",
        ),
        (
            "urls-download",
            lambda o: o.pop("qualifier"),
            "urls-download: a Function URL on $LATEST, not its 'live' alias",
        ),
        (
            "urls-download",
            lambda o: o.update(qualifier="1"),
            "urls-download: a Function URL on its '1', not its 'live' alias",
        ),
        (
            "urls-download",
            lambda o: o["cors"].update(allowOrigins=["*"]),
            "urls-download: a prod Function URL allows CORS from any origin",
        ),
        (
            # a grant to everyone on a function with no URL at all
            "urls-download-invoke-via-url",
            lambda o: o.update(function="tasks-prod-stats"),
            "urls-download-invoke-via-url: lets everyone lambda:InvokeFunction "
            "tasks-prod-stats:live, which has no Function URL whose function verifies tokens",
        ),
    ],
)
def test_a_url_without_in_function_verification_is_refused(
    graphs: dict[str, Inventory],
    name: str,
    change: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    found = _url_policy(_outputs(graphs["prod"], name, change))
    assert any(message in m for m in found), found


@pytest.mark.parametrize(
    ("stack", "rules", "flagged"),
    [
        ("prod", '["leads: high by leads"]', []),
        ("dev", '["ops: critical by ops"]', []),
        (
            "prod",
            '["leads: high by leads","ops: critical by ops, oncall"]',
            ["rule 'ops' approves critical tasks of oncall, ops in prod with no approver looking"],
        ),
    ],
)
def test_only_prods_critical_rules_are_worth_a_second_look(
    graphs: dict[str, Inventory], stack: str, rules: str, flagged: list[str]
) -> None:
    (policy,) = [p for p in POLICIES if p.name == "prod-critical-reviewed"]

    def with_rules(resource: Resource) -> Resource:
        variables = {**resource.inputs["environment"]["variables"], "AUTO_APPROVE": rules}
        return attrs.evolve(
            resource, inputs={**resource.inputs, "environment": {"variables": variables}}
        )

    api = g.function(graphs[stack], "api")
    resources = tuple(with_rules(r) if r is api else r for r in graphs[stack].resources)
    found = check(attrs.evolve(graphs[stack], resources=resources), [policy])
    assert [v.level for v in found] == [EnforcementLevel.ADVISORY] * len(flagged)
    assert [str(v).split(": ", 2)[-1] for v in found] == flagged
