"""The stack's policy rules, as Pulumi CrossGuard policies: one set of rules, run by operators
with `pulumi preview --policy-pack policy` (and `pulumi up --policy-pack policy`) and by the
tests over the mocked graphs of both stacks (`tests/infra/test_policy.py`).

Enforcement levels, and why:
- **mandatory**: security (least-privilege IAM, no public resource policies, authorized routes,
  no Function URL without in-function token verification, encryption, TLS), data protection in
  prod, failure paths (a lost event is data lost), names
  AWS would refuse and missing tags. A violation is a bug or a breach; the deploy stops.
- **advisory**: choices with a cost that a stack may make on purpose: point-in-time recovery
  outside prod, log retention shorter than 30 days outside prod, x86 functions, an
  auto-approval rule for critical tasks in prod.

Resource policies see one resource's inputs (as the provider received them: with pulumi-aws's
generated names). During a preview, inputs that depend on resources not yet created are
unknown; CrossGuard then reports that the policy could not run for that resource, and the same
policy runs on `pulumi up` before the resource is created, with every input known. Stack
policies see every resource's outputs, after the preview or update.

The stack a resource belongs to is read from its URN (`urn:pulumi:<stack>::...`): rules that
hold only for `prod` say so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra import limits
from infra.tags import STANDARD, accepts_tags
from infra.wiring import ARCHIVE_PREFIX
from stack.config import PROJECT
from stack.manifest import AUTO_APPROVE_VARIABLE
from taskcore.auto_approval import rules_from_text
from taskcore.model import Priority

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY
PRODUCTION = "prod"

# Actions IAM cannot scope to a resource (the Service Authorization Reference lists no resource
# type for them), so "Resource": "*" is the narrowest there is. Written out here, not imported
# from infra, so that widening infra's list fails the policy until someone looks.
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
# Services our roles may be assumed by; every one but Lambda only on this account's behalf.
TRUSTED_SERVICES = frozenset(
    {"lambda.amazonaws.com", "states.amazonaws.com", "events.amazonaws.com"}
)
INVOKERS = frozenset({"apigateway.amazonaws.com", "events.amazonaws.com"})
# Everyone may invoke a function through a Function URL of auth type NONE, and only so: AWS
# requires both grants since October 2025 (infra/README.md, "Function URLs").
EVERYONE = "*"
URL_GRANTS = {
    "lambda:InvokeFunctionUrl": ("functionUrlAuthType", "NONE"),
    "lambda:InvokeFunction": ("invokedViaFunctionUrl", True),
}
# What a function verifies bearer tokens with (`handlers.auth`, `stack.manifest.AUTH_ENVIRONMENT`),
# written out here like the lists above: a URL anyone can call needs a function that has both.
TOKEN_VERIFICATION = ("JWT_ISSUER", "JWT_AUDIENCE")
FUNCTION = "aws:lambda/function:Function"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
PERMISSION = "aws:lambda/permission:Permission"
OPEN_ROUTES = frozenset({"GET /health"})
ACCOUNT_ROOT = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:root")
# A bucket's objects, or those under one prefix of it (`archive/*`).
OBJECTS = re.compile(r"arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]*/([A-Za-z0-9._-]+/)*\*")
LOG_STREAMS = re.compile(r"arn:aws[a-z-]*:logs:[a-z0-9-]+:\d{12}:log-group:[^*]+:log-stream:\*")
SOURCE_CONDITIONS = ("aws:SourceAccount", "aws:SourceArn", "kms:EncryptionContext:aws:logs:arn")
MIN_LOG_RETENTION_DAYS = 30
# The alias every trigger invokes (infra's `ALIAS`, written out here like the lists above): a
# deploy moves it, a rollback moves it back; a trigger on the function itself or on `$LATEST`
# would run whatever was deployed last, and would not follow a rollback.
LIVE = "live"
FUNCTION_ARN = re.compile(
    r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$.*-]+)?"
)
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"

Report = Callable[[str], None]
Validate = Callable[[ResourceValidationArgs, Report], None]


def stack_of(urn: str) -> str:
    """`urn:pulumi:prod::tasks::...` -> `prod`."""
    return urn.split("::", maxsplit=1)[0].rsplit(":", maxsplit=1)[-1]


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _document(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


def policy_documents(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """The IAM documents in a resource's inputs: (kind, document), kind `identity` for what a
    role may do, `trust` for who may assume it, `resource` for a resource policy."""
    if resource_type == "aws:iam/rolePolicy:RolePolicy":
        yield "identity", _document(props["policy"])
    elif resource_type == "aws:iam/role:Role":
        yield "trust", _document(props["assumeRolePolicy"])
        for inline in props.get("inlinePolicies") or []:
            yield "identity", _document(inline["policy"])
    elif isinstance(props.get("policy"), str | dict):
        yield "resource", _document(props["policy"])


def _allows(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    return (s for s in as_list(document.get("Statement", [])) if s.get("Effect") == "Allow")


# -- resource rules -----------------------------------------------------------------------------


def _least_privilege(args: ResourceValidationArgs, report: Report) -> None:
    for kind, document in policy_documents(args.resource_type, args.props):
        if kind != "identity":
            continue
        for statement in _allows(document):
            if "NotAction" in statement or "NotResource" in statement:
                report(f"{args.name}: an Allow with NotAction/NotResource grants too much")
            actions = as_list(statement.get("Action", []))
            if wild := [a for a in actions if "*" in a]:
                report(f"{args.name}: wildcard actions {wild}: name each action")
            for arn in as_list(statement.get("Resource", [])):
                if arn == "*":
                    if unscoped := sorted(set(actions) - ACTIONS_WITHOUT_RESOURCE_TYPES):
                        report(f"{args.name}: {unscoped} on '*', but they can be scoped")
                elif "*" in arn and not (OBJECTS.fullmatch(arn) or LOG_STREAMS.fullmatch(arn)):
                    report(
                        f"{args.name}: {arn!r}: a wildcard ARN other than a bucket's objects "
                        "(under a prefix or not) or a log group's streams"
                    )


def _resource_policies(args: ResourceValidationArgs, report: Report) -> None:
    for kind, document in policy_documents(args.resource_type, args.props):
        if kind != "resource":
            continue
        for statement in _allows(document):
            principal = statement.get("Principal")
            if principal == "*" or (
                isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS", []))
            ):
                report(f"{args.name}: a resource policy allows everyone")
                continue
            if not isinstance(principal, Mapping):
                report(f"{args.name}: a resource policy statement without a principal")
                continue
            accounts = as_list(principal.get("AWS", []))
            if accounts and not all(ACCOUNT_ROOT.fullmatch(str(a)) for a in accounts):
                report(f"{args.name}: grants to {accounts}: only the account itself")
            if "*" in "".join(as_list(statement.get("Action", []))) and not accounts:
                report(f"{args.name}: a service is granted a wildcard action")
            if "Service" in principal:
                condition = json.dumps(statement.get("Condition", {}))
                if not any(key in condition for key in SOURCE_CONDITIONS):
                    report(
                        f"{args.name}: {principal['Service']} is not tied to this account or "
                        "one source ARN (confused deputy)"
                    )


def _trust(args: ResourceValidationArgs, report: Report) -> None:
    for kind, document in policy_documents(args.resource_type, args.props):
        if kind != "trust":
            continue
        statements = list(_allows(document))
        if len(statements) != 1:
            report(f"{args.name}: a role is assumed through exactly one statement")
            continue
        services = as_list(statements[0].get("Principal", {}).get("Service", []))
        if len(services) != 1 or services[0] not in TRUSTED_SERVICES:
            report(f"{args.name}: assumed by {services}: one of {sorted(TRUSTED_SERVICES)}")
            continue
        condition = statements[0].get("Condition", {})
        if services[0] != "lambda.amazonaws.com" and "aws:SourceAccount" not in json.dumps(
            condition
        ):
            report(f"{args.name}: {services[0]} may assume it for any account")


def _routes(args: ResourceValidationArgs, report: Report) -> None:
    props = args.props
    open_routes = set(args.get_config().get("openRoutes", sorted(OPEN_ROUTES)))
    route = props["routeKey"]
    if props.get("authorizationType", "NONE") == "NONE" and route not in open_routes:
        report(f"{route}: no authorizer (only {sorted(open_routes)} may be open)")


def _invoke_permissions(args: ResourceValidationArgs, report: Report) -> None:
    props = args.props
    if props["principal"] == EVERYONE:
        grant = URL_GRANTS.get(props["action"])
        if grant is None or props.get(grant[0]) != grant[1]:
            report(
                f"{args.name}: lets everyone {props['action']} other than through a Function "
                "URL (only lambda:InvokeFunctionUrl with functionUrlAuthType NONE, and "
                "lambda:InvokeFunction with invokedViaFunctionUrl)"
            )
        return
    if props["action"] != "lambda:InvokeFunction":
        report(f"{args.name}: grants {props['action']}")
    if props["principal"] not in INVOKERS:
        report(f"{args.name}: lets {props['principal']} invoke: only {sorted(INVOKERS)}")
    if not props.get("sourceArn"):
        report(f"{args.name}: any {props['principal']} resource, of any account, may invoke")


def _qualifier(reference: Any) -> str | None:
    """The qualifier a function's name, partial ARN or ARN carries (None if unqualified)."""
    if not isinstance(reference, str):
        return None
    _, _, qualifier = reference.split(":function:")[-1].partition(":")
    return qualifier or None


def _not_live(text: str) -> list[str]:
    """Every function ARN in `text` that is not qualified with the live alias."""
    return [m[0] for m in FUNCTION_ARN.finditer(text) if m[1] != f":{LIVE}"]


def _step_functions(definition: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(state, function) for each Task state that invokes a Lambda function."""
    for state_name, state in _states(definition):
        resource = str(state.get("Resource", ""))
        if state.get("Type") != "Task":
            continue
        if resource.startswith(LAMBDA_INVOKE):
            arguments = state.get("Parameters") or state.get("Arguments") or {}
            dynamic = "FunctionName.$" in arguments
            yield state_name, None if dynamic else arguments.get("FunctionName")
        elif ":lambda:" in resource and ":function:" in resource:
            yield state_name, resource


def _invokes_live(args: ResourceValidationArgs, report: Report) -> None:
    """Whatever invokes a function names its `live` alias: not the function, not `$LATEST`."""
    props, kind = args.props, args.resource_type.split(":")[1]

    def check(what: str, reference: Any, qualifier: Any = None) -> None:
        qualifier = qualifier or _qualifier(reference)
        if qualifier != LIVE:
            at = f"its {qualifier!r}" if qualifier else "the unqualified function"
            report(f"{args.name}: {what} invokes {reference}, {at}, not its {LIVE!r} alias")

    if kind in {"lambda/permission", "lambda/functionEventInvokeConfig", "lambda/functionUrl"}:
        function = props.get("function") or props.get("functionName")
        what = {
            "lambda/permission": "a permission",
            "lambda/functionEventInvokeConfig": "async delivery",
            "lambda/functionUrl": "the Function URL",
        }[kind]
        check(what, function, props.get("qualifier"))
    elif kind == "lambda/eventSourceMapping":
        check("the mapping", props.get("functionName"))
    elif kind in {"apigatewayv2/integration", "cloudwatch/eventTarget"}:
        for arn in _not_live(str(props.get("integrationUri") or props.get("arn") or "")):
            check("the integration" if kind.startswith("api") else "the target", arn)
    elif kind == "sfn/stateMachine":
        for state_name, function in _step_functions(_document(props["definition"])):
            check(f"Task state {state_name!r}", function)
    elif kind == "iam/rolePolicy":
        for _, document in policy_documents(args.resource_type, props):
            for statement in _allows(document):
                if "lambda:InvokeFunction" in as_list(statement.get("Action", [])):
                    for arn in as_list(statement.get("Resource", [])):
                        if arn != "*":
                            check("the role", arn)


def _function_urls_verified(args: StackValidationArgs, report: ReportViolation) -> None:
    """A Function URL of auth type NONE reaches the function with no authorizer in front: it is
    allowed only on a function that verifies bearer tokens itself (its environment names the
    issuer and audience), on its `live` alias, and never with CORS from anywhere in prod. A
    grant to everyone is only for such a URL, on the same function and qualifier. Stack-wide:
    the URL, the function and the grants are three resources."""
    functions = {r.props.get("name"): r for r in args.resources if r.resource_type == FUNCTION}
    verified: set[tuple[Any, Any]] = set()
    for url in (r for r in args.resources if r.resource_type == FUNCTION_URL):
        props = url.props
        name, qualifier = limits.function_name(props.get("functionName")), props.get("qualifier")
        if qualifier != LIVE:
            at = f"its {qualifier!r}" if qualifier else "$LATEST"
            report(f"{url.name}: a Function URL on {at}, not its {LIVE!r} alias", url.urn)
        origins = (props.get("cors") or {}).get("allowOrigins") or []
        if stack_of(url.urn) == PRODUCTION and EVERYONE in origins:
            report(f"{url.name}: a prod Function URL allows CORS from any origin", url.urn)
        if props.get("authorizationType") != "NONE":
            continue
        function = functions.get(name)
        variables = (
            ((function.props.get("environment") or {}).get("variables") or {}) if function else {}
        )
        if missing := [v for v in TOKEN_VERIFICATION if not variables.get(v)]:
            report(
                f"{url.name}: a Function URL anyone can call (auth type NONE) on {name}, which "
                f"does not verify tokens itself (no {', '.join(missing)} in its environment)",
                url.urn,
            )
        else:
            verified.add((name, qualifier))
    for grant in (r for r in args.resources if r.resource_type == PERMISSION):
        props = grant.props
        if props.get("principal") != EVERYONE:
            continue
        target = (limits.function_name(props.get("function")), props.get("qualifier"))
        if target not in verified:
            report(
                f"{grant.name}: lets everyone {props.get('action')} {target[0]}:{target[1]}, "
                "which has no Function URL whose function verifies tokens",
                grant.urn,
            )


def _log_groups(args: ResourceValidationArgs, report: Report) -> None:
    if not args.props.get("kmsKeyId"):
        report(f"{args.name}: log group not encrypted with the stack's key")
    if not args.props.get("retentionInDays"):
        report(f"{args.name}: log group kept forever (no retention)")


def _log_retention(args: ResourceValidationArgs, report: Report) -> None:
    days = args.props.get("retentionInDays") or 0
    if days < MIN_LOG_RETENTION_DAYS:
        report(f"{args.name}: logs kept {days:.0f} days, under {MIN_LOG_RETENTION_DAYS}")


def _table(args: ResourceValidationArgs, report: Report) -> None:
    encryption = args.props.get("serverSideEncryption") or {}
    if not (encryption.get("enabled") and encryption.get("kmsKeyArn")):
        report(f"{args.name}: table not encrypted with the stack's key")


def _point_in_time_recovery(args: ResourceValidationArgs, report: Report) -> None:
    if not (args.props.get("pointInTimeRecovery") or {}).get("enabled"):
        report(f"{args.name}: no point-in-time recovery: a bad write cannot be undone")


STATEFUL = frozenset(
    {
        "aws:dynamodb/table:Table",
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:cognito/userPool:UserPool",
    }
)


def _production_data(args: ResourceValidationArgs, report: Report) -> None:
    if stack_of(args.urn) != PRODUCTION or args.resource_type not in STATEFUL:
        return
    props = args.props
    if not args.opts.protect:
        report(f"{args.name}: prod data not `protect`ed: a destroy or replacement deletes it")
    checks = {
        "aws:dynamodb/table:Table": (
            bool((props.get("pointInTimeRecovery") or {}).get("enabled"))
            and bool(props.get("deletionProtectionEnabled")),
            "point-in-time recovery and deletion protection",
        ),
        "aws:s3/bucket:Bucket": (not props.get("forceDestroy"), "no forceDestroy"),
        "aws:kms/key:Key": (
            (props.get("deletionWindowInDays") or 30) >= 30,
            "the longest deletion window (30 days)",
        ),
        "aws:cognito/userPool:UserPool": (
            props.get("deletionProtection") == "ACTIVE",
            "deletion protection",
        ),
    }
    holds, what = checks[args.resource_type]
    if not holds:
        report(f"{args.name}: prod data needs {what}")


def _bucket_settings(args: ResourceValidationArgs, report: Report) -> None:
    props, kind = args.props, args.resource_type.split(":")[1]
    if kind == "s3/bucketPublicAccessBlock":
        flags = (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
        if not all(props.get(flag) is True for flag in flags):
            report(f"{args.name}: public access is not blocked in every way")
    elif kind == "s3/bucketOwnershipControls":
        if (props.get("rule") or {}).get("objectOwnership") != "BucketOwnerEnforced":
            report(f"{args.name}: ACLs are not disabled (BucketOwnerEnforced)")
    elif kind == "s3/bucketServerSideEncryptionConfiguration":
        rules = props.get("rules") or [{}]
        default = rules[0].get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") != "aws:kms" or not default.get("kmsMasterKeyId"):
            report(f"{args.name}: objects are not encrypted with the stack's key by default")
    elif kind == "s3/bucketVersioning":
        if (props.get("versioningConfiguration") or {}).get("status") != "Enabled":
            report(f"{args.name}: versioning is off")
    elif kind == "s3/bucketPolicy":
        denies = [
            s
            for s in as_list(_document(props["policy"]).get("Statement", []))
            if s.get("Effect") == "Deny"
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        if not denies:
            report(f"{args.name}: plain HTTP is not denied")


KMS_KEY_ID_CONDITION = "s3:x-amz-server-side-encryption-aws-kms-key-id"


def _archive_encrypted(args: ResourceValidationArgs, report: Report) -> None:
    """The bucket's policy denies a write under the archive's prefix that does not name a KMS
    key: whatever the bucket's default encryption becomes, archived tasks are SSE-KMS."""
    for statement in as_list(_document(args.props["policy"]).get("Statement", [])):
        actions = as_list(statement.get("Action", []))
        resources = [str(r) for r in as_list(statement.get("Resource", []))]
        condition = (statement.get("Condition") or {}).get("StringNotEquals") or {}
        if (
            statement.get("Effect") == "Deny"
            and statement.get("Principal") == EVERYONE
            and {"s3:PutObject", "s3:*"} & set(actions)
            and any(r.endswith(f"/{ARCHIVE_PREFIX}*") for r in resources)
            and condition.get(KMS_KEY_ID_CONDITION)
        ):
            return
    report(
        f"{args.name}: writes under {ARCHIVE_PREFIX} are not refused without the stack's KMS key"
    )


def _key_rotation(args: ResourceValidationArgs, report: Report) -> None:
    if args.props.get("enableKeyRotation") is not True:
        report(f"{args.name}: the key does not rotate")


def _failure_paths(args: ResourceValidationArgs, report: Report) -> None:
    props, kind = args.props, args.resource_type.split(":")[1]
    if kind == "lambda/eventSourceMapping":
        failure = ((props.get("destinationConfig") or {}).get("onFailure") or {}).get(
            "destinationArn"
        )
        if not failure:
            report(f"{args.name}: a failed batch is dropped (no on-failure destination)")
        if props.get("maximumRetryAttempts", -1) < 0:
            report(f"{args.name}: retries forever, blocking the shard")
    elif kind == "cloudwatch/eventTarget":
        if not (props.get("deadLetterConfig") or {}).get("arn"):
            report(f"{args.name}: an undeliverable event is dropped (no dead-letter queue)")
        if not props.get("retryPolicy"):
            report(f"{args.name}: no retry policy")
    elif kind == "lambda/functionEventInvokeConfig":
        failure = ((props.get("destinationConfig") or {}).get("onFailure") or {}).get("destination")
        if not failure:
            report(f"{args.name}: a failed event is dropped (no on-failure destination)")


def _functions(args: ResourceValidationArgs, report: Report) -> None:
    props = args.props
    if (props.get("tracingConfig") or {}).get("mode") != "Active":
        report(f"{args.name}: not traced (X-Ray Active)")
    if not props.get("kmsKeyArn"):
        report(f"{args.name}: environment not encrypted with the stack's key")


def _arm64(args: ResourceValidationArgs, report: Report) -> None:
    if props_architectures := args.props.get("architectures"):
        if props_architectures != ["arm64"]:
            report(f"{args.name}: {props_architectures}: arm64 costs 20% less per GB-second")
    else:
        report(f"{args.name}: x86_64 by default: arm64 costs 20% less per GB-second")


def _topics(args: ResourceValidationArgs, report: Report) -> None:
    if not args.props.get("kmsMasterKeyId"):
        report(f"{args.name}: topic not encrypted with the stack's key")


def _queues(args: ResourceValidationArgs, report: Report) -> None:
    if not args.props.get("kmsMasterKeyId"):
        report(f"{args.name}: queue not encrypted with the stack's key")


def _state_machines(args: ResourceValidationArgs, report: Report) -> None:
    props = args.props
    logging = props.get("loggingConfiguration") or {}
    if logging.get("level") != "ALL" or not logging.get("includeExecutionData"):
        report(f"{args.name}: does not log every event with its data")
    if not (props.get("tracingConfiguration") or {}).get("enabled"):
        report(f"{args.name}: not traced")
    definition = _document(props["definition"])
    for state_name, state in _states(definition):
        if state.get("Type") != "Task":
            continue
        retriers = state.get("Retry") or []
        retried = {e for r in retriers for e in r.get("ErrorEquals", [])}
        backs_off = all(r.get("BackoffRate", 2.0) > 1 for r in retriers)
        if not ({"States.TaskFailed", "States.ALL"} & retried and backs_off):
            report(
                f"{args.name}: Task state {state_name!r} does not retry failures with backoff "
                "(one throttled call would fail the execution)"
            )


def _states(definition: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every state, nested Parallel branches and Map iterators included."""
    for name, state in (definition.get("States") or {}).items():
        yield name, state
        for branch in state.get("Branches") or []:
            yield from _states(branch)
        for key in ("Iterator", "ItemProcessor"):
            if state.get(key):
                yield from _states(state[key])


def _stage(args: ResourceValidationArgs, report: Report) -> None:
    route = args.props.get("defaultRouteSettings") or {}
    if not (route.get("throttlingRateLimit") and route.get("throttlingBurstLimit")):
        report(f"{args.name}: the stage is not throttled")
    if not (args.props.get("accessLogSettings") or {}).get("destinationArn"):
        report(f"{args.name}: no access logs")


def _cors(args: ResourceValidationArgs, report: Report) -> None:
    kind = args.resource_type.split(":")[1]
    if kind == "apigatewayv2/api":
        origins = (args.props.get("corsConfiguration") or {}).get("allowOrigins") or []
    elif kind == "lambda/functionUrl":
        origins = (args.props.get("cors") or {}).get("allowOrigins") or []
    else:
        origins = [o for r in args.props.get("corsRules") or [] for o in r["allowedOrigins"]]
    if "*" in origins:
        report(f"{args.name}: CORS allows any origin")
    if stack_of(args.urn) == PRODUCTION and not all(o.startswith("https://") for o in origins):
        report(f"{args.name}: prod CORS allows a non-HTTPS origin: {origins}")


def _generated_secrets(args: ResourceValidationArgs, report: Report) -> None:
    if (args.props.get("length") or 0) < 32:
        report(f"{args.name}: a generated secret shorter than 32 characters")


SECRET_LOOKING = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL")
REFERENCE_SUFFIXES = ("_ARN", "_NAME", "_ID")


def _no_secrets_in_environment(args: ResourceValidationArgs, report: Report) -> None:
    """A secret belongs in Secrets Manager (read by the function, as `handlers.secrets` reads
    the cursor keys): an environment variable's value shows in the console and the API to
    anyone who may read the function's configuration. A name that refers to a secret
    (`..._ARN`, `..._NAME`, `..._ID`) is fine."""
    variables = (args.props.get("environment") or {}).get("variables") or {}
    for name in sorted(variables):
        upper = name.upper()
        if SECRET_LOOKING.search(upper) and not upper.endswith(REFERENCE_SUFFIXES):
            report(
                f"{args.name}: environment variable {name} looks like a secret: keep it in "
                "Secrets Manager and pass its ARN"
            )


def _critical_auto_approval(args: ResourceValidationArgs, report: Report) -> None:
    """A rule that approves critical tasks in prod: allowed (the config must list critical
    explicitly, `taskcore.auto_approval`), but then nobody reviews the tasks that matter most,
    so it is worth a second look. The rules are the API function's `AUTO_APPROVE`."""
    variables = (args.props.get("environment") or {}).get("variables") or {}
    value = variables.get(AUTO_APPROVE_VARIABLE)
    if stack_of(args.urn) != PRODUCTION or not isinstance(value, str):
        return
    try:
        rules = rules_from_text(value)
    except ValueError as error:
        report(f"{args.name}: {AUTO_APPROVE_VARIABLE} is not a list of rules: {error}")
        return
    for rule in rules:
        if Priority.CRITICAL in rule.priorities:
            report(
                f"{args.name}: rule {rule.name!r} approves critical tasks of "
                f"{', '.join(sorted(rule.groups))} in prod with no approver looking"
            )


def _aws_limits(args: ResourceValidationArgs, report: Report) -> None:
    for problem in limits.violations(args.resource_type, args.props):
        report(f"{args.name}: {problem}")


def _tags(args: ResourceValidationArgs, report: Report) -> None:
    if not args.resource_type.startswith("aws:") or not accepts_tags(args.resource_type):
        return
    tags = args.props.get("tags") or {}
    if missing := [key for key in STANDARD if not tags.get(key)]:
        report(f"{args.name}: missing tags {missing}")
    elif tags["Environment"] != stack_of(args.urn) or tags["Application"] != PROJECT:
        report(f"{args.name}: tagged for {tags['Application']}/{tags['Environment']}")


def _on(
    name: str,
    description: str,
    level: EnforcementLevel,
    validate: Validate,
    *types: str,
    config: PolicyConfigSchema | None = None,
) -> ResourceValidationPolicy:
    """A resource policy that runs `validate` on resources of `types` (all, when none)."""
    wanted = frozenset(types)

    def run(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not wanted or args.resource_type in wanted:
            validate(args, lambda message: report_violation(message, None))

    return ResourceValidationPolicy(
        name=name,
        description=description,
        enforcement_level=level,
        validate=run,
        config_schema=config,
    )


# -- stack rules --------------------------------------------------------------------------------


def _alarmed(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every function, queue and state machine has its alarms (read from the alarms' dimensions
    and metric names: an alarm on something else does not count)."""
    watched: dict[tuple[str, str], set[str]] = {}
    for resource in args.resources:
        if resource.resource_type != "aws:cloudwatch/metricAlarm:MetricAlarm":
            continue
        props = resource.props
        if not props.get("alarmActions"):
            continue
        for dimension, value in (props.get("dimensions") or {}).items():
            watched.setdefault((dimension, value), set()).add(props.get("metricName", ""))
    wanted = {
        "aws:lambda/function:Function": (
            "FunctionName",
            "name",
            {"Errors", "Throttles", "Duration"},
        ),
        "aws:sqs/queue:Queue": ("QueueName", "name", {"ApproximateNumberOfMessagesVisible"}),
        "aws:sfn/stateMachine:StateMachine": (
            "StateMachineArn",
            "arn",
            {"ExecutionsFailed", "ExecutionsTimedOut"},
        ),
    }
    for resource in args.resources:
        if resource.resource_type not in wanted:
            continue
        dimension, key, metrics = wanted[resource.resource_type]
        have = watched.get((dimension, resource.props[key]), set())
        if missing := sorted(metrics - have):
            report(f"{resource.name}: no alarm on {missing}", resource.urn)


def _scheduled_runs_watched(args: StackValidationArgs, report: ReportViolation) -> None:
    """A function a scheduled rule invokes has an alarm on too few invocations: a rule that
    stops firing (disabled, deleted, its target gone) makes no error and no throttle, so the
    other alarms never see it. Targets whose ARN is not known yet (a first preview) wait."""
    scheduled = {
        r.props.get("name")
        for r in args.resources
        if r.resource_type == "aws:cloudwatch/eventRule:EventRule"
        and r.props.get("scheduleExpression")
    }
    watched = {
        (r.props.get("dimensions") or {}).get("FunctionName")
        for r in args.resources
        if r.resource_type == "aws:cloudwatch/metricAlarm:MetricAlarm"
        and r.props.get("metricName") == "Invocations"
        and str(r.props.get("comparisonOperator", "")).startswith("LessThan")
        and r.props.get("alarmActions")
    }
    for target in args.resources:
        if target.resource_type != "aws:cloudwatch/eventTarget:EventTarget":
            continue
        arn = target.props.get("arn")
        if target.props.get("rule") not in scheduled or not isinstance(arn, str):
            continue
        function = limits.function_name(arn)
        if function not in watched:
            report(
                f"{target.name}: {function} runs on a schedule with no alarm on missed runs "
                "(its Invocations below a threshold)",
                target.urn,
            )


POLICIES: list[Policy] = [
    _on(
        "iam-least-privilege",
        "Identity policies name each action, and use '*' only for actions AWS cannot scope; "
        "ARN wildcards only for a bucket's objects (all, or those under a prefix) or a log "
        "group's streams.",
        MANDATORY,
        _least_privilege,
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/role:Role",
    ),
    _on(
        "resource-policies-not-public",
        "Resource policies (key, bucket, queue, topic) allow a named service tied to this "
        "account or one source ARN, or the account itself; never everyone.",
        MANDATORY,
        _resource_policies,
    ),
    _on(
        "roles-trust-one-service",
        "Each role is assumed by one of our services; all but Lambda only for this account.",
        MANDATORY,
        _trust,
        "aws:iam/role:Role",
    ),
    _on(
        "routes-authorized",
        "Every API route has the JWT authorizer, but the declared open ones (GET /health).",
        MANDATORY,
        _routes,
        "aws:apigatewayv2/route:Route",
        config=PolicyConfigSchema(
            properties={
                "openRoutes": {
                    "type": "array",
                    "items": {"type": "string"},
                    "default": sorted(OPEN_ROUTES),
                }
            }
        ),
    ),
    _on(
        "lambda-invoke-permissions-scoped",
        "Only API Gateway and EventBridge may invoke a function, each from one source ARN; "
        "everyone only through a Function URL (lambda:InvokeFunctionUrl for auth type NONE, "
        "lambda:InvokeFunction when invoked via a function URL).",
        MANDATORY,
        _invoke_permissions,
        PERMISSION,
    ),
    _on(
        "triggers-invoke-live-alias",
        "Every trigger (API integration, Function URL, stream mapping, rule target, workflow "
        "step, async invoke config) and every permission to invoke names a function's live "
        "alias, never the function itself or $LATEST: a deploy and a rollback move live, and "
        "nothing else.",
        MANDATORY,
        _invokes_live,
        "aws:apigatewayv2/integration:Integration",
        "aws:lambda/permission:Permission",
        FUNCTION_URL,
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:sfn/stateMachine:StateMachine",
        "aws:iam/rolePolicy:RolePolicy",
    ),
    _on(
        "log-groups-encrypted-with-retention",
        "Every log group is encrypted with the stack's key and expires its events.",
        MANDATORY,
        _log_groups,
        "aws:cloudwatch/logGroup:LogGroup",
    ),
    _on(
        "log-retention-30-days",
        "Logs are kept at least 30 days. Advisory: dev keeps a week on purpose (cost).",
        ADVISORY,
        _log_retention,
        "aws:cloudwatch/logGroup:LogGroup",
    ),
    _on(
        "table-encrypted-with-cmk",
        "The table is encrypted with the stack's customer-managed key.",
        MANDATORY,
        _table,
        "aws:dynamodb/table:Table",
    ),
    _on(
        "table-point-in-time-recovery",
        "The table can be restored to any second of the last 35 days. Advisory: dev may do "
        "without (cost); prod's rule is production-data-protected.",
        ADVISORY,
        _point_in_time_recovery,
        "aws:dynamodb/table:Table",
    ),
    _on(
        "production-data-protected",
        "In prod, the table, bucket, key and user pool are protected and retained, with the "
        "services' own deletion protection and recovery on.",
        MANDATORY,
        _production_data,
    ),
    _on(
        "bucket-private-tls-encrypted-versioned",
        "The bucket blocks public access, disables ACLs, encrypts with the stack's key, keeps "
        "versions and refuses plain HTTP.",
        MANDATORY,
        _bucket_settings,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketPolicy:BucketPolicy",
    ),
    _on(
        "archive-objects-kms-encrypted",
        "The bucket's policy refuses any write under the archive's prefix (archived tasks) that "
        "does not ask for SSE-KMS with the stack's key.",
        MANDATORY,
        _archive_encrypted,
        "aws:s3/bucketPolicy:BucketPolicy",
    ),
    _on(
        "kms-key-rotates",
        "The stack's key rotates yearly.",
        MANDATORY,
        _key_rotation,
        "aws:kms/key:Key",
    ),
    _on(
        "async-failures-kept",
        "Every stream mapping, rule target and async invoke config sends what it gives up on to "
        "a queue, with bounded retries: no event is dropped silently.",
        MANDATORY,
        _failure_paths,
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
    ),
    _on(
        "functions-traced-and-encrypted",
        "Every function is traced with X-Ray and encrypts its environment with the stack's key.",
        MANDATORY,
        _functions,
        "aws:lambda/function:Function",
    ),
    _on(
        "functions-on-arm64",
        "Functions run on arm64 (Graviton). Advisory: a cost choice, not a safety one.",
        ADVISORY,
        _arm64,
        "aws:lambda/function:Function",
    ),
    _on(
        "queues-encrypted",
        "Every queue is encrypted with the stack's key.",
        MANDATORY,
        _queues,
        "aws:sqs/queue:Queue",
    ),
    _on(
        "topics-encrypted",
        "Every SNS topic (the alarms', the notifications') is encrypted with the stack's key: "
        "notifications carry task titles.",
        MANDATORY,
        _topics,
        "aws:sns/topic:Topic",
    ),
    _on(
        "state-machines-observable-and-retrying",
        "State machines log every event with its data, are traced, and every Task state "
        "retries failures with backoff.",
        MANDATORY,
        _state_machines,
        "aws:sfn/stateMachine:StateMachine",
    ),
    _on(
        "stage-throttled-and-logged",
        "The API stage is throttled and writes access logs.",
        MANDATORY,
        _stage,
        "aws:apigatewayv2/stage:Stage",
    ),
    _on(
        "cors-named-origins",
        "CORS names its origins (never '*'); in prod only HTTPS ones.",
        MANDATORY,
        _cors,
        "aws:apigatewayv2/api:Api",
        "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration",
        FUNCTION_URL,
    ),
    _on(
        "generated-secrets-long-enough",
        "Generated secrets have at least 32 characters.",
        MANDATORY,
        _generated_secrets,
        "random:index/randomPassword:RandomPassword",
    ),
    _on(
        "no-secrets-in-environment",
        "No function's environment holds a secret-looking variable (a secret is read from "
        "Secrets Manager; the environment names its ARN).",
        MANDATORY,
        _no_secrets_in_environment,
        "aws:lambda/function:Function",
    ),
    _on(
        "prod-critical-reviewed",
        "In prod no auto-approval rule approves critical tasks (tasks:autoApprove). Advisory: "
        "a rule may list critical on purpose.",
        ADVISORY,
        _critical_auto_approval,
        "aws:lambda/function:Function",
    ),
    _on(
        "aws-api-limits",
        "Every name, id and enum is one the receiving AWS API accepts (botocore's models), and "
        "every resource type is known to infra/limits.py.",
        MANDATORY,
        _aws_limits,
    ),
    _on(
        "tagged",
        "Every taggable resource carries Application, Environment (its stack) and Component.",
        MANDATORY,
        _tags,
    ),
    StackValidationPolicy(
        name="function-urls-verified-in-function",
        description="No Function URL without in-function verification: a URL of auth type NONE "
        "(which AWS leaves open to anyone) only on a function whose environment sets "
        "JWT_ISSUER and JWT_AUDIENCE (it verifies bearer tokens itself), on its live alias, "
        "never with CORS '*' in prod; a grant to everyone only for such a URL.",
        enforcement_level=MANDATORY,
        validate=_function_urls_verified,
    ),
    StackValidationPolicy(
        name="scheduled-runs-watched",
        description="Every function a scheduled rule invokes has an alarm on missed runs (too "
        "few invocations): a schedule that stops firing raises no error.",
        enforcement_level=MANDATORY,
        validate=_scheduled_runs_watched,
    ),
    StackValidationPolicy(
        name="everything-alarmed",
        description="Every function (errors, throttles, duration), queue (a message waiting) "
        "and state machine (failed, timed out) has an alarm with an action.",
        enforcement_level=MANDATORY,
        validate=_alarmed,
    ),
]
