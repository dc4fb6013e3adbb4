"""`make plan STACK=dev`: the stack's resource inventory, from a mocked run of the real program.

For an operator to review what `pulumi up` would manage, without credentials, the CLI or the
provider plugin: each component, then each resource in it with its type, name and the settings
that matter. Values AWS assigns (ARNs, ids, generated names) are the mocks' stand-ins.

    python -m infra.plan --stack dev
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from infra.mocks import ACCOUNT_ID, Inventory, Resource, run


def _on(value: Any) -> str:
    return "on" if value else "off"


def _actions(document: str) -> str:
    statements = json.loads(document)["Statement"]
    allowed = sorted({a for s in statements if s["Effect"] == "Allow" for a in _list(s["Action"])})
    return ", ".join(allowed)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


PROVISIONED = "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"


def cold_start(function: Resource, inventory: Inventory) -> str:
    """A function's cold-start mode: `snapstart`, `provisioned=<n>` (on its alias) or `none`."""
    if (function.inputs.get("snapStart") or {}).get("applyOn") == "PublishedVersions":
        return "snapstart"
    counts = [
        f"{c.inputs['provisionedConcurrentExecutions']:.0f}"
        for c in inventory.of_type(PROVISIONED)
        if c.inputs.get("functionName") == function.inputs.get("name")
    ]
    return f"provisioned={','.join(counts)}" if counts else "none"


def settings(resource: Resource, inventory: Inventory | None = None) -> str:  # noqa: PLR0911, PLR0912, PLR0915 - one case per type
    """The settings of `resource` an operator would check first, on one line (`inventory`, the
    run it belongs to, for what other resources say about it)."""
    i: Mapping[str, Any] = resource.inputs
    match resource.type.split(":")[1:]:
        case ["kms/key", "Key"]:
            window = i.get("deletionWindowInDays", 30)
            return f"rotation={_on(i.get('enableKeyRotation'))} deletion-window={window:.0f}d"
        case ["dynamodb/table", "Table"]:
            lsis = ",".join(x["name"] for x in i.get("localSecondaryIndexes", []))
            gsis = ",".join(x["name"] for x in i.get("globalSecondaryIndexes", []))
            return (
                f"keys={i['hashKey']}/{i['rangeKey']} lsi={lsis} gsi={gsis} "
                f"stream={i.get('streamViewType')} ttl={i['ttl']['attributeName']} "
                f"kms={_on(i['serverSideEncryption'].get('kmsKeyArn'))} "
                f"pitr={_on(i['pointInTimeRecovery']['enabled'])} "
                f"deletion-protection={_on(i.get('deletionProtectionEnabled'))}"
            )
        case ["s3/bucket", "Bucket"]:
            return f"force-destroy={_on(i.get('forceDestroy'))}"
        case ["s3/bucketPublicAccessBlock", _]:
            flags = (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
            return f"all-public-access-blocked={_on(all(i.get(f) for f in flags))}"
        case ["s3/bucketVersioning", _]:
            return f"versioning={i['versioningConfiguration']['status']}"
        case ["s3/bucketServerSideEncryptionConfiguration", _]:
            default = i["rules"][0]["applyServerSideEncryptionByDefault"]
            return f"sse={default['sseAlgorithm']}"
        case ["s3/bucketLifecycleConfiguration", _]:
            return "rules=" + ",".join(r["id"] for r in i["rules"])
        case ["s3/bucketCorsConfiguration", _]:
            return "origins=" + ",".join(i["corsRules"][0]["allowedOrigins"])
        case ["lambda/function", "Function"]:
            env = ",".join(sorted((i.get("environment") or {}).get("variables", {})))
            reserved = i.get("reservedConcurrentExecutions")
            mode = cold_start(resource, inventory) if inventory is not None else "-"
            return (
                f"{i['name']} handler={i['handler']} {i['runtime']}/{i['architectures'][0]} "
                f"memory={i['memorySize']:.0f}MB timeout={i['timeout']:.0f}s "
                f"reserved={'-' if reserved is None else f'{reserved:.0f}'} "
                f"publish={_on(i.get('publish'))} cold-start={mode} "
                f"tracing={i['tracingConfig']['mode']} env={env or '-'}"
            )
        case ["lambda/alias", _]:
            return f"version={i['functionVersion']} of {i['functionName']}"
        case ["lambda/provisionedConcurrencyConfig", _]:
            executions = i["provisionedConcurrentExecutions"]
            return f"{executions:.0f} environments on {i['functionName']}:{i['qualifier']}"
        case ["lambda/eventSourceMapping", _]:
            return (
                f"batch={i['batchSize']:.0f} retries={i['maximumRetryAttempts']:.0f} "
                f"max-age={i['maximumRecordAgeInSeconds']:.0f}s "
                f"bisect={_on(i['bisectBatchOnFunctionError'])} "
                f"on-failure={_on(i.get('destinationConfig'))}"
            )
        case ["lambda/layerVersion", _]:
            runtimes = ",".join(i["compatibleRuntimes"])
            return f"{i['layerName']} {runtimes}/{','.join(i['compatibleArchitectures'])}"
        case ["lambda/permission", _]:
            through = ""
            if i.get("functionUrlAuthType"):
                through = f" url-auth={i['functionUrlAuthType']}"
            if i.get("invokedViaFunctionUrl"):
                through = " via-url-only"
            return (
                f"{i['action']} qualifier={i.get('qualifier', '-')} principal={i['principal']} "
                f"source-arn={i.get('sourceArn', '-')}{through}"
            )
        case ["lambda/functionUrl", _]:
            cors = i.get("cors") or {}
            return (
                f"{i['functionName']}:{i.get('qualifier', '$LATEST')} "
                f"auth={i['authorizationType']} mode={i.get('invokeMode', 'BUFFERED')} "
                f"cors={','.join(cors.get('allowOrigins', [])) or '-'} "
                f"methods={','.join(cors.get('allowMethods', [])) or '-'}"
            )
        case ["lambda/functionEventInvokeConfig", _]:
            failure = _on(i.get("destinationConfig"))
            return (
                f"qualifier={i.get('qualifier', '-')} retries={i['maximumRetryAttempts']:.0f} "
                f"on-failure={failure}"
            )
        case ["apigatewayv2/api", _]:
            return "cors=" + ",".join(i["corsConfiguration"]["allowOrigins"])
        case ["apigatewayv2/route", _]:
            return f"{i['routeKey']} auth={i.get('authorizationType')}"
        case ["apigatewayv2/stage", _]:
            route = i["defaultRouteSettings"]
            return (
                f"{i['name']} throttle={route['throttlingRateLimit']:.0f}/s "
                f"burst={route['throttlingBurstLimit']:.0f} "
                f"access-logs={_on(i.get('accessLogSettings'))}"
            )
        case ["apigatewayv2/authorizer", _]:
            return f"{i['authorizerType']} issuer={i['jwtConfiguration']['issuer']}"
        case ["cloudwatch/logGroup", _]:
            return f"{i['name']} retention={i['retentionInDays']:.0f}d kms={_on(i.get('kmsKeyId'))}"
        case ["cloudwatch/eventRule", _]:
            if "scheduleExpression" in i:
                return f"schedule={i['scheduleExpression']} (the default bus)"
            return f"pattern={i['eventPattern']}"
        case ["cloudwatch/eventTarget", _]:
            retry = i.get("retryPolicy") or {}
            return (
                f"retries={retry.get('maximumRetryAttempts', 0):.0f} "
                f"dlq={_on(i.get('deadLetterConfig'))}"
            )
        case ["cloudwatch/metricAlarm", _]:
            metric = i.get("metricName") or "metric math"
            stat = i.get("extendedStatistic") or i.get("statistic") or ""
            below = str(i.get("comparisonOperator", "")).startswith("LessThan")
            return f"{i['name']}: {metric} {stat} {'<' if below else '>'} {i['threshold']:g}"
        case ["sqs/queue", _]:
            days = i["messageRetentionSeconds"] / 86400
            return f"kms={_on(i.get('kmsMasterKeyId'))} retention={days:.0f}d"
        case ["sfn/stateMachine", _]:
            logging = i["loggingConfiguration"]
            return (
                f"{i['name']} logging={logging['level']} "
                f"tracing={_on(i['tracingConfiguration']['enabled'])}"
            )
        case ["iam/rolePolicy", _]:
            return "allows " + _actions(i["policy"])
        case ["cognito/userPool", _]:
            protection = i["deletionProtection"]
            return f"{i['name']} mfa={i['mfaConfiguration']} deletion-protection={protection}"
        case ["cognito/userGroup", _]:
            return f"group={i['name']}"
        case ["sns/topicSubscription", _]:
            return f"{i['protocol']} -> {i['endpoint']}"
    return str(i.get("name", "")) if isinstance(i.get("name"), str) else ""


NAME_PROPERTIES = ("name", "dashboardName", "layerName", "bucket", "targetId", "statementId")


def physical_name(resource: Resource) -> str:
    """The name AWS will know the resource by: the program's, or the one pulumi-aws generates
    (marked `*`; the suffix here is the mocks', a deploy draws its own)."""
    inputs = resource.provider_inputs
    for key in NAME_PROPERTIES:
        value = inputs.get(key)
        if isinstance(value, str):
            return value + ("*" if key in resource.autonamed else "")
    return ""


def _tag_line(children: Sequence[Resource]) -> str:
    tagged = [r for r in children if r.inputs.get("tags")]
    if not tagged:
        return ""
    common = dict.fromkeys(sorted(tagged[0].inputs["tags"].items()))
    for resource in tagged[1:]:
        common = {kv: None for kv in common if kv in resource.inputs["tags"].items()}
    pairs = " ".join(f"{k}={v}" for k, v in common)
    return f"  tags on {len(tagged)} of {len(children)} resources: {pairs}"


def render(inventory: Inventory) -> str:
    components = [r for r in inventory.resources if not r.custom]
    lines = [
        f"stack {inventory.stack}: {len(inventory.resources) - len(components)} resources "
        f"in {len(components)} components (mocked run: account {ACCOUNT_ID}, no AWS call; "
        "* = a name pulumi-aws generates)",
        "",
    ]
    for component in sorted(components, key=lambda c: c.name):
        children = [r for r in inventory.resources if r.parent == component.urn and r.custom]
        lines.append(f"{component.name}  [{component.type}]")
        if tag_line := _tag_line(children):
            lines.append(tag_line)
        width = max((len(r.kind) for r in children), default=0)
        for child in sorted(children, key=lambda r: (r.kind, r.name)):
            flags = " [protected, retained]" if child.protect else ""
            name, details = physical_name(child), settings(child, inventory)
            if name and details.startswith(name.rstrip("*")):
                details = details[len(name.rstrip("*")) :].lstrip()
            shown = f"{child.name} -> {name}" if name else child.name
            lines.append(f"  {child.kind:<{width}}  {shown}{flags}  {details}".rstrip())
        lines.append("")
    lines.append("outputs")
    for key, value in inventory.outputs.items():
        lines.append(f"  {key} = {json.dumps(value)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack", default="dev", help="stack name (Pulumi.<stack>.yaml)")
    args = parser.parse_args(argv)
    print(render(run(args.stack)))


if __name__ == "__main__":
    main()
