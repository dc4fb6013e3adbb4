"""Functions: one Lambda function per manifest entry, each with its own role, log group and, for
the asynchronous ones, a failure queue.

Every function runs the same code archive and dependency layer (arm64, Python 3.12) with its own
handler, is traced with X-Ray, logs JSON to its own KMS-encrypted log group with the stack's
retention, and reads its environment from the manifest's resource references. Its role allows
what its manifest permissions name, on the one resource each names (see `infra.wiring`), plus
writing its own logs and traces and sending to its own failure queue.

The function(s) serving HTTP routes take memory, reserved concurrency and the cold-start mode
from the stack config (they carry the user-facing load); the others take memory and cold-start
mode from the manifest. A web function (the download: an ASGI app behind AWS's Lambda Web
Adapter, `infra.web_adapter`) runs its startup script as its handler, with the adapter's layer
after the dependency layer and the adapter's settings in its environment; its reserved
concurrency is the stack's `tasks:downloadConcurrency` (`StackConfig.reserved_for`), and it never
runs with SnapStart.

Every function publishes a version whenever its code or configuration changes (`publish`), and
has an alias, `live`, on the version it published last. Every trigger invokes `live` (API
Gateway's integration, stream mappings, rule targets, workflow steps) and every permission to
invoke names it: a deploy moves `live`, and so does a rollback. A cold-start mode applies to
published versions: `snapstart` snapshots each one as it is published; `provisioned` keeps
environments of the version `live` points to initialised (AWS refuses both on one function).

Asynchronous consumers (EventBridge rule targets, scheduled ones included) and stream consumers
get a failure queue: Lambda sends an event there after its own retries (rule targets), and the
stream mapping sends the batch it gave up on (see `infra.events`). Workflow steps are invoked
synchronously by Step Functions, whose own retry and catch handle their failures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import pulumi
import pulumi_aws as aws

from infra import packaging, web_adapter
from infra.context import Deployment, policy, trust
from infra.queues import failure_queue
from infra.wiring import TRACING, Wiring, allow
from stack.cold_start import ColdStart
from stack.config import StackConfig
from stack.manifest import ASYNC_RETRIES, EventRule, Function, Schedule

ALIAS = "live"  # what every trigger invokes; a deploy moves it to the version it publishes


def is_async_consumer(function: Function) -> bool:
    return bool(function.rules or function.schedules) or function.stream is not None


def serves_http(function: Function) -> bool:
    return bool(function.routes)


def cold_start(function: Function, config: StackConfig) -> ColdStart:
    """The stack's mode for the HTTP function(s), the manifest's for the others."""
    return config.http_cold_start if serves_http(function) else function.cold_start


def lambda_handler(function: Function) -> str:
    """`handlers.http_api:handler` as the Lambda runtime spells it; a web function's startup
    script (a path in the code archive), which the Web Adapter runs."""
    if function.web is not None:
        return function.web.script
    return f"{function.module}.{function.attribute}"


def check_function(function: Function, cold: ColdStart) -> None:
    """What the program refuses in a manifest function before building it: a streamed response
    without the Web Adapter (the Python runtime buffers a handler's answer), SnapStart on a web
    function (the adapter runs it through an exec wrapper and a web server of its own, outside
    the runtime whose initialisation SnapStart snapshots and whose hooks
    `handlers/bootstrap.py` registers), and environment names the adapter owns."""
    streams = function.url is not None and function.url.invoke_mode == "RESPONSE_STREAM"
    if streams and function.web is None:
        raise ValueError(
            f"{function.name}: a RESPONSE_STREAM Function URL needs the function to be a web "
            "app behind the Lambda Web Adapter (stack/manifest.py `web`)"
        )
    if function.web is not None:
        if cold.mode == "snapstart":
            raise ValueError(
                f"{function.name}: a web function (Lambda Web Adapter) does not run with "
                "SnapStart: choose cold start mode none or provisioned"
            )
        if owned := sorted(set(function.environment) & set(web_adapter.environment(function))):
            raise ValueError(f"{function.name}: {owned} are the Web Adapter's settings")


def layers(function: Function, dependencies: pulumi.Input[str], env: Deployment) -> list[Any]:
    """The dependency layer, and for a web function the Web Adapter's after it."""
    found: list[Any] = [dependencies]
    if function.web is not None:
        found.append(web_adapter.layer_arn(env))
    return found


def environment(function: Function, wiring: Wiring) -> dict[str, Any]:
    """The manifest's variables resolved, plus the Web Adapter's settings for a web function."""
    variables: dict[str, Any] = dict(wiring.environment(function.environment))
    if function.web is not None:
        variables |= web_adapter.environment(function)
    return dict(sorted(variables.items()))


@attrs.frozen
class FunctionsArgs:
    deployment: Deployment
    functions: Sequence[Function]
    wiring: Wiring
    code: pulumi.Archive
    layer: pulumi.Archive


class Functions(pulumi.ComponentResource):
    manifest: dict[str, Function]
    functions: dict[str, aws.lambda_.Function]
    aliases: dict[str, aws.lambda_.Alias]
    roles: dict[str, aws.iam.Role]
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    failure_queues: dict[str, aws.sqs.Queue]
    layer: aws.lambda_.LayerVersion

    def __init__(
        self, name: str, args: FunctionsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tasks:functions:Functions", name, None, opts)
        env = args.deployment
        self.manifest = {f.name: f for f in args.functions}
        for function in args.functions:  # before anything is registered
            check_function(function, cold_start(function, env.config))
        self.functions, self.roles, self.log_groups, self.failure_queues = {}, {}, {}, {}
        self.aliases = {}
        self.layer = aws.lambda_.LayerVersion(
            f"{name}-dependencies",
            layer_name=f"{env.prefix}-dependencies",
            description="Third-party dependencies from requirements/lambda.txt",
            code=args.layer,
            compatible_runtimes=[packaging.RUNTIME],
            compatible_architectures=[packaging.ARCHITECTURE],
            opts=pulumi.ResourceOptions(parent=self),
        )
        for function in args.functions:
            self._function(name, function, args)
        self.register_outputs(
            {
                "functions": {n: f.arn for n, f in self.functions.items()},
                "aliases": {n: a.arn for n, a in self.aliases.items()},
                "failureQueues": {n: q.arn for n, q in self.failure_queues.items()},
            }
        )

    def _function(self, name: str, function: Function, args: FunctionsArgs) -> None:
        env, wiring, config = args.deployment, args.wiring, args.deployment.config
        child = pulumi.ResourceOptions(parent=self)
        base = f"{name}-{function.name}"
        physical = f"{env.prefix}-{function.name}"
        log_group = aws.cloudwatch.LogGroup(
            f"{base}-logs",
            name=f"/aws/lambda/{physical}",
            retention_in_days=config.log_retention_days,
            kms_key_id=wiring.key_arn,
            opts=child,
        )
        queue = None
        if is_async_consumer(function):
            queue = failure_queue(
                f"{base}-failures",
                physical=f"{physical}-failures",
                key_arn=wiring.key_arn,
                parent=self,
            )
            self.failure_queues[function.name] = queue
        role = aws.iam.Role(
            f"{base}-role",
            description=f"{physical}: what stack/manifest.py lets it do",
            assume_role_policy=trust("lambda"),
            opts=child,
        )
        statements = [
            *wiring.statements(function.permissions, queue_arn=queue.arn if queue else None),
            allow(
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                [pulumi.Output.concat(log_group.arn, ":log-stream:*")],
            ),
            allow(TRACING, "*"),
            wiring.key_statement(function.permissions, writes=queue is not None),
        ]
        if queue is not None and "queue.send" not in function.permissions:
            statements.append(allow(["sqs:SendMessage"], [queue.arn]))
        role_policy = aws.iam.RolePolicy(
            f"{base}-policy", role=role.id, policy=policy(statements), opts=child
        )
        reserved = config.reserved_for(function)
        cold = cold_start(function, config)
        self.roles[function.name] = role
        self.log_groups[function.name] = log_group
        lam = self.functions[function.name] = aws.lambda_.Function(
            base,
            name=physical,
            description=function.description,
            runtime=packaging.RUNTIME,
            architectures=[packaging.ARCHITECTURE],
            handler=lambda_handler(function),
            code=args.code,
            layers=layers(function, self.layer.arn, env),
            role=role.arn,
            memory_size=config.memory_for(function),
            timeout=function.timeout_s,
            reserved_concurrent_executions=reserved if reserved >= 0 else None,
            publish=True,
            snap_start=aws.lambda_.FunctionSnapStartArgs(apply_on="PublishedVersions")
            if cold.mode == "snapstart"
            else None,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment(function, wiring))
            if function.environment or function.web is not None
            else None,
            kms_key_arn=wiring.key_arn,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON",
                log_group=log_group.name,
                application_log_level="INFO",
                system_log_level="WARN",
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy, log_group]),
        )
        alias = self.aliases[function.name] = aws.lambda_.Alias(
            f"{base}-{ALIAS}",
            name=ALIAS,
            function_name=lam.name,
            function_version=lam.version,
            description="What every trigger invokes: the version the last deploy published",
            opts=child,
        )
        if cold.mode == "provisioned":
            aws.lambda_.ProvisionedConcurrencyConfig(
                f"{base}-provisioned",
                function_name=lam.name,
                qualifier=alias.name,
                provisioned_concurrent_executions=cold.provisioned,
                opts=child,
            )
        triggers: tuple[EventRule | Schedule, ...] = (*function.rules, *function.schedules)
        if triggers and queue is not None:
            aws.lambda_.FunctionEventInvokeConfig(
                f"{base}-async",
                function_name=lam.name,
                qualifier=alias.name,
                maximum_retry_attempts=ASYNC_RETRIES,
                maximum_event_age_in_seconds=max(r.max_event_age_s for r in triggers),
                destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                    on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                        destination=queue.arn
                    )
                ),
                opts=child,
            )
