"""Api: the API Gateway HTTP API in front of the HTTP function(s).

One route per manifest route, each behind the JWT authorizer unless the manifest marks it
`authorized=False` (`GET /health`), plus a `$default` route, also authorized, to the first HTTP
function: an unknown path then gets the handler's problem+json 404/405 instead of API Gateway's
bare one, and never without a valid token. The `$default` stage deploys automatically, applies
the stack's throttling to every route, and writes one JSON access-log line per request to a
KMS-encrypted log group. The integrations invoke each function's `live` alias, and API Gateway
may invoke that alias only, and only from this API.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pulumi
import pulumi_aws as aws

from infra.context import Deployment
from infra.functions import Functions, serves_http
from infra.identity import Identity
from stack import access_log
from stack.manifest import Function

STAGE = "$default"
CORS_ALLOW_HEADERS = ("authorization", "content-type", "idempotency-key", "if-match")
CORS_EXPOSE_HEADERS = ("etag", "location", "retry-after")
CORS_MAX_AGE_S = 600


def route_slug(key: str) -> str:
    """A route key as a resource name: `GET /tasks/{taskId}` -> `get-tasks-taskId`."""
    cleaned = key.replace("$", "").replace("{", "").replace("}", "").replace("+", "")
    return "-".join(part for part in cleaned.replace(" ", "/").split("/") if part).lower()


def allowed_methods(functions: Sequence[Function]) -> list[str]:
    return sorted({route.method for f in functions for route in f.routes} | {"OPTIONS"})


@attrs.frozen
class ApiArgs:
    deployment: Deployment
    functions: Functions
    identity: Identity
    key_arn: pulumi.Input[str]


class Api(pulumi.ComponentResource):
    api: aws.apigatewayv2.Api
    stage: aws.apigatewayv2.Stage
    url: pulumi.Output[str]
    routes: dict[str, aws.apigatewayv2.Route]
    permissions: dict[str, aws.lambda_.Permission]  # API Gateway's, by function name

    def __init__(
        self, name: str, args: ApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tasks:api:Api", name, None, opts)
        env, config = args.deployment, args.deployment.config
        child = pulumi.ResourceOptions(parent=self)
        http = [f for f in args.functions.manifest.values() if serves_http(f)]
        if not http:
            raise ValueError("no function in the manifest serves HTTP routes")
        self.api = aws.apigatewayv2.Api(
            f"{name}-http",
            name=f"{env.prefix}-api",
            protocol_type="HTTP",
            cors_configuration=aws.apigatewayv2.ApiCorsConfigurationArgs(
                allow_origins=list(config.cors_allow_origins),
                allow_methods=allowed_methods(http),
                allow_headers=list(CORS_ALLOW_HEADERS),
                expose_headers=list(CORS_EXPOSE_HEADERS),
                max_age=CORS_MAX_AGE_S,
                allow_credentials=False,
            ),
            opts=child,
        )
        authorizer = aws.apigatewayv2.Authorizer(
            f"{name}-jwt",
            api_id=self.api.id,
            name="jwt",
            authorizer_type="JWT",
            identity_sources=["$request.header.Authorization"],
            jwt_configuration=aws.apigatewayv2.AuthorizerJwtConfigurationArgs(
                issuer=args.identity.issuer, audiences=args.identity.audiences
            ),
            opts=child,
        )
        self.routes, self.permissions = {}, {}
        for index, function in enumerate(http):
            target = self._integration(name, function, args)
            routes = [(r.key, r.authorized) for r in function.routes]
            if index == 0:
                routes.append(("$default", True))
            for key, authorized in routes:
                self.routes[key] = aws.apigatewayv2.Route(
                    f"{name}-route-{route_slug(key)}",
                    api_id=self.api.id,
                    route_key=key,
                    target=target,
                    authorization_type="JWT" if authorized else "NONE",
                    authorizer_id=authorizer.id if authorized else None,
                    opts=child,
                )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=f"/aws/apigateway/{env.prefix}-api",
            retention_in_days=config.log_retention_days,
            kms_key_id=args.key_arn,
            opts=child,
        )
        self.stage = aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=self.api.id,
            name=STAGE,
            auto_deploy=True,
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
                detailed_metrics_enabled=True,
            ),
            access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
                destination_arn=access_logs.arn,
                format=access_log.stage_format(),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.routes.values())),
        )
        self.url = self.api.api_endpoint
        if config.domain_name:
            self.url = self._custom_domain(name, env)
        self.register_outputs({"url": self.url, "id": self.api.id})

    def _integration(self, name: str, function: Function, args: ApiArgs) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        target = args.functions.functions[function.name]
        alias = args.functions.aliases[function.name]
        integration = aws.apigatewayv2.Integration(
            f"{name}-{function.name}-integration",
            api_id=self.api.id,
            integration_type="AWS_PROXY",
            integration_uri=alias.invoke_arn,
            payload_format_version="2.0",
            opts=child,
        )
        self.permissions[function.name] = aws.lambda_.Permission(
            f"{name}-{function.name}-invoke",
            action="lambda:InvokeFunction",
            function=target.name,
            qualifier=alias.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(self.api.execution_arn, "/*"),
            opts=child,
        )
        return pulumi.Output.concat("integrations/", integration.id)

    def _custom_domain(self, name: str, env: Deployment) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        domain = aws.apigatewayv2.DomainName(
            f"{name}-domain",
            domain_name=env.config.domain_name,
            domain_name_configuration=aws.apigatewayv2.DomainNameDomainNameConfigurationArgs(
                certificate_arn=env.config.certificate_arn,
                endpoint_type="REGIONAL",
                security_policy="TLS_1_2",
            ),
            opts=child,
        )
        aws.apigatewayv2.ApiMapping(
            f"{name}-mapping",
            api_id=self.api.id,
            domain_name=domain.id,
            stage=self.stage.id,
            opts=child,
        )
        return pulumi.Output.from_input(f"https://{env.config.domain_name}")
