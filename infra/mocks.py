"""Run the real Pulumi program (`__main__.py`) offline, under Pulumi's mocks, and capture every
resource it registers: type, name, inputs, parent and options.

No Pulumi CLI, no provider plugin, no AWS call, no credentials: the mock monitor answers each
registration with the inputs plus plausible outputs (ARNs, ids, names), and the two provider
functions the program calls (caller identity, partition) with a fixed fake account. The config
is what the CLI would hand the program: `Pulumi.yaml`'s defaults overlaid with
`Pulumi.<stack>.yaml`'s values.

Each run happens in a fresh `contextvars.Context`, so one process can run several stacks one
after the other (Pulumi keeps its settings and root stack resource in context variables).
`infra.plan` and `tests/infra` both use this module.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import runpy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra import limits
from stack.config import PROJECT, ROOT

ACCOUNT_ID = "123456789012"
PARTITION = "aws"


@attrs.frozen(kw_only=True)
class Resource:
    """One registered resource, as the engine would have received it."""

    type: str
    name: str
    urn: str
    parent: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    id: str
    autonamed: Mapping[str, Any] = attrs.field(factory=dict)
    custom: bool
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    dependencies: tuple[str, ...] = ()

    @property
    def provider_inputs(self) -> dict[str, Any]:
        """The inputs as the provider passes them on (what a policy pack sees): the program's,
        plus what pulumi-aws auto-names."""
        return {**self.inputs, **self.autonamed}

    @property
    def kind(self) -> str:
        """`aws:lambda/function:Function` -> `aws:lambda:Function`, the short form."""
        package, module, cls = self.type.split(":")
        return f"{package}:{module.split('/')[0]}:{cls}"


@attrs.frozen(kw_only=True)
class Inventory:
    """What one run of the program registered, and the stack's outputs."""

    stack: str
    resources: tuple[Resource, ...]
    outputs: Mapping[str, Any]

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def named(self, name: str) -> Resource:
        return next(r for r in self.resources if r.name == name)

    def parent_of(self, resource: Resource) -> Resource | None:
        return next((r for r in self.resources if r.urn == resource.parent), None)


def _suffix(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:7]


class Refused(ValueError):
    """What the provider or AWS would refuse in a registration: the preview stops there."""


def provider_inputs(
    type_: str,
    name: str,
    inputs: Mapping[str, Any],
    registered: Sequence[limits.Registered] = (),
) -> dict[str, Any]:
    """The inputs as the provider passes them on: with what it auto-names filled in, after
    checking them against AWS's limits (`infra.limits`), the rules that span resources against
    those `registered` before. Raises `Refused` as AWS would."""
    try:
        checked = {**inputs, **limits.autoname(type_, name, inputs)}
    except ValueError as error:
        raise Refused(str(error)) from None
    if problems := limits.violations(type_, checked, registered):
        raise Refused(f"{type_} {name!r}:\n  " + "\n  ".join(problems))
    return checked


def fake_state(type_: str, name: str, inputs: Mapping[str, Any], region: str) -> dict[str, Any]:
    """The inputs plus the outputs AWS would add, in the provider's (camelCase) names."""
    state = dict(inputs)
    physical = str(inputs.get("name") or f"{name}-{_suffix(name)}")
    account, where = ACCOUNT_ID, f"{region}:{ACCOUNT_ID}"
    arns = {
        "aws:kms/key:Key": f"arn:aws:kms:{where}:key/{_suffix(name)}-mock",
        "aws:dynamodb/table:Table": f"arn:aws:dynamodb:{where}:table/{physical}",
        "aws:lambda/function:Function": f"arn:aws:lambda:{where}:function:{physical}",
        "aws:lambda/layerVersion:LayerVersion": (
            f"arn:aws:lambda:{where}:layer:{inputs.get('layerName', physical)}:1"
        ),
        "aws:sqs/queue:Queue": f"arn:aws:sqs:{where}:{physical}",
        "aws:cloudwatch/eventBus:EventBus": f"arn:aws:events:{where}:event-bus/{physical}",
        # `rule/[<bus>/]<name>`: a rule on the default bus has no bus in its ARN (AWS CDK's
        # `IRule.ruleArn` documentation: "such as arn:aws:events:us-east-2:123456789012:rule/
        # example"; a custom bus's rules carry the bus's name).
        "aws:cloudwatch/eventRule:EventRule": (
            f"arn:aws:events:{where}:rule/{inputs['eventBusName']}/{physical}"
            if inputs.get("eventBusName") not in (None, "default")
            else f"arn:aws:events:{where}:rule/{physical}"
        ),
        "aws:cloudwatch/logGroup:LogGroup": f"arn:aws:logs:{where}:log-group:{physical}",
        "aws:sfn/stateMachine:StateMachine": f"arn:aws:states:{where}:stateMachine:{physical}",
        "aws:iam/role:Role": f"arn:aws:iam::{account}:role/{physical}",
        "aws:sns/topic:Topic": f"arn:aws:sns:{where}:{physical}",
        "aws:cognito/userPool:UserPool": f"arn:aws:cognito-idp:{where}:userpool/{physical}",
        # Secrets Manager appends a hyphen and six random characters to a secret's name.
        "aws:secretsmanager/secret:Secret": (
            f"arn:aws:secretsmanager:{where}:secret:{physical}-{_suffix(name)[:6]}"
        ),
    }
    if type_ in arns:
        state.setdefault("name", physical)
        state["arn"] = arns[type_]
    match type_:
        case "aws:kms/key:Key":
            state["keyId"] = f"{_suffix(name)}-mock"
        case "aws:dynamodb/table:Table":
            state["streamArn"] = f"{state['arn']}/stream/2024-01-01T00:00:00.000"
        case "aws:lambda/function:Function":
            # With `publish`, the provider reads back the latest published version; without,
            # the function has only `$LATEST`.
            version = "1" if inputs.get("publish") else limits.LATEST
            state |= {
                "version": version,
                "qualifiedArn": f"{state['arn']}:{version}",
                "invokeArn": _invoke_arn(region, state["arn"]),
                "qualifiedInvokeArn": _invoke_arn(region, f"{state['arn']}:{version}"),
            }
        case "aws:lambda/alias:Alias":
            function = limits.function_name(inputs.get("functionName"))
            arn = f"arn:aws:lambda:{where}:function:{function}:{inputs.get('name')}"
            state |= {"arn": arn, "invokeArn": _invoke_arn(region, arn)}
        case "aws:lambda/functionUrl:FunctionUrl":
            # `https://<url-id>.lambda-url.<region>.on.aws/`, the url-id 32 lower-case characters
            function = limits.function_name(inputs.get("functionName"))
            url_id = hashlib.sha256(name.encode()).hexdigest()[:32]
            state |= {
                "urlId": url_id,
                "functionUrl": f"https://{url_id}.lambda-url.{region}.on.aws/",
                "functionArn": f"arn:aws:lambda:{where}:function:{function}",
            }
        case "aws:s3/bucket:Bucket":
            bucket = str(inputs.get("bucket") or physical)
            state |= {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        case "aws:sqs/queue:Queue":
            state["url"] = f"https://sqs.{region}.amazonaws.com/{account}/{physical}"
        case "aws:apigatewayv2/api:Api":
            api_id = _suffix(name)
            state |= {
                "apiEndpoint": f"https://{api_id}.execute-api.{region}.amazonaws.com",
                "executionArn": f"arn:aws:execute-api:{where}:{api_id}",
            }
        case "aws:cognito/userPool:UserPool":
            state["endpoint"] = f"cognito-idp.{region}.amazonaws.com/{region}_{_suffix(name)}"
        case "random:index/randomPassword:RandomPassword":
            state["result"] = "m" * int(inputs.get("length", 16))
    return state


def _invoke_arn(region: str, function_arn: str) -> str:
    """What API Gateway integrations call: the function's (or version's, or alias's) ARN."""
    return (
        f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )


# The ids the provider gives these types: one of their outputs.
ID_OUTPUT = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:sqs/queue:Queue": "url",
    "aws:lambda/function:Function": "name",
    "aws:lambda/alias:Alias": "arn",
    "aws:iam/role:Role": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
}


def fake_id(type_: str, name: str, state: Mapping[str, Any], region: str) -> str:
    if type_ in ID_OUTPUT:
        return str(state[ID_OUTPUT[type_]])
    match type_:
        case "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig":
            return f"{state['functionName']},{state['qualifier']}"
        case "aws:lambda/functionUrl:FunctionUrl":  # the provider's: `<function>[/<qualifier>]`
            qualifier = state.get("qualifier")
            return (
                f"{state['functionName']}/{qualifier}" if qualifier else str(state["functionName"])
            )
        case "aws:apigatewayv2/api:Api":
            return _suffix(name)
        case "aws:cognito/userPool:UserPool":
            return f"{region}_{_suffix(name)}"
    return f"{name}-id"


class CapturingMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str) -> None:
        self.region = region
        self.names: dict[tuple[str, Any, Any], str] = {}
        self.registered: list[limits.Registered] = []

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        inputs = provider_inputs(args.typ, args.name, _plain(args.inputs), self.registered)
        key = limits.unique_key(args.typ, inputs)
        if key is not None and (other := self.names.setdefault(key, args.name)) != args.name:
            raise Refused(
                f"{args.typ} {args.name!r} and {other!r} are both named {key[2]!r}: in AWS "
                "they would be one resource"
            )
        self.registered.append(limits.Registered(type=args.typ, inputs=inputs))
        state = fake_state(args.typ, args.name, inputs, self.region)
        return fake_id(args.typ, args.name, state, self.region), state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        match args.token:
            case "aws:index/getCallerIdentity:getCallerIdentity":
                return {
                    "accountId": ACCOUNT_ID,
                    "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/mock",
                    "userId": "MOCK",
                    "id": ACCOUNT_ID,
                }
            case "aws:index/getRegion:getRegion":
                return {
                    "region": self.region,
                    "name": self.region,
                    "id": self.region,
                    "endpoint": f"ec2.{self.region}.amazonaws.com",
                    "description": "mock",
                }
            case "aws:index/getPartition:getPartition":
                return {
                    "partition": PARTITION,
                    "dnsSuffix": "amazonaws.com",
                    "reverseDnsPrefix": "com.amazonaws",
                    "id": PARTITION,
                }
        raise NotImplementedError(f"the program calls {args.token}: give it a mock answer")


class CapturingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping what `Mocks.new_resource` is not shown: parent and
    resource options."""

    def __init__(self, mocks: CapturingMocks) -> None:
        super().__init__(mocks)
        self.captured: list[Resource] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            inputs = _plain(rpc.deserialize_properties(request.object))
            self.captured.append(
                Resource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    inputs=inputs,
                    autonamed=limits.autoname(request.type, request.name, inputs),
                    outputs=_plain(rpc.deserialize_properties(response.object)),
                    id=response.id,
                    custom=bool(request.custom),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    dependencies=tuple(request.dependencies),
                )
            )
        return response


def _plain(value: Any) -> Any:
    """Inputs as plain data: secrets unwrapped (the mocks hold no real secret)."""
    if isinstance(value, Mapping):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value["value"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def stack_config(
    stack: str, root: Path = ROOT, overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """What the CLI hands the program: project defaults, then the stack's values, then
    `overrides` (as strings; lists and objects as JSON)."""
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    values: dict[str, Any] = {}
    for key, declaration in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(declaration, Mapping) and "default" in declaration:
            values[full] = declaration["default"]
        elif not isinstance(declaration, Mapping):
            values[full] = declaration
    document = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, Mapping) and "secure" in value:
            raise ValueError(f"{key} is encrypted: the mocked run cannot decrypt stack secrets")
        values[key] = value
    values.update(overrides or {})
    return {
        k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items() if v is not None
    }


def run(
    stack: str,
    root: Path = ROOT,
    overrides: Mapping[str, Any] | None = None,
    *,
    provider_region: str | None = None,
) -> Inventory:
    """Run `<root>/__main__.py` for `stack` under mocks; every resource and output, resolved.
    `overrides` replace config values (`tasks:jwtIssuer`, ...) as `pulumi config set` would;
    an override of `None` removes the key. The provider's region is `aws:region`, or else
    `provider_region` (as `AWS_REGION` or a profile would give it); with neither, the run
    fails as the provider does."""
    config = stack_config(stack, root, overrides)
    region = config.get("aws:region") or provider_region
    if not region:
        raise Refused("the AWS provider has no region: set aws:region, AWS_REGION or a profile's")

    def in_fresh_context() -> Inventory:
        mocks = CapturingMocks(region)
        monitor = CapturingMonitor(mocks)
        pulumi.runtime.set_all_config(config)
        pulumi_settings.ROOT.set(None)
        pulumi.runtime.set_mocks(
            mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor
        )

        def program() -> None:
            runpy.run_path(str(root / "__main__.py"), run_name="__main__")

        _sync_await(run_pulumi_func(program))
        stack_resource = pulumi_settings.get_root_resource()
        exported = getattr(stack_resource, "outputs", {})
        outputs = _sync_await(pulumi.Output.from_input(exported).future())
        return Inventory(stack=stack, resources=tuple(monitor.captured), outputs=outputs or {})

    try:
        return contextvars.Context().run(in_fresh_context)
    except Exception:
        _abandon_pending_registrations()
        raise


def _abandon_pending_registrations() -> None:
    """After a refused run: cancel what it left pending on the (shared) event loop, so that it
    does not finish, and fail, inside the next run."""
    loop = asyncio.get_event_loop()
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    pulumi_settings.SETTINGS.rpc_manager.clear()
    with pulumi_settings.SETTINGS.lock:
        pulumi_settings.SETTINGS.outputs.clear()
