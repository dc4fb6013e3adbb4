"""FunctionUrls: a Lambda Function URL for each manifest function with a `url` that the stack's
`tasks:functionUrls` turns on: the API's backup path beside API Gateway, and the streaming
download, which has no other path.

Each URL is on the function's `live` alias (like every other trigger: a deploy and a rollback
move it), with authorization type NONE: a Function URL has no authorizer, and the callers are
people with bearer tokens, not IAM principals. So the function verifies every request's token
itself (`handlers.auth`, against the same issuer and audience as API Gateway's authorizer: its
environment's `JWT_ISSUER` and `JWT_AUDIENCE`); the policy pack refuses a NONE URL on a function
without them. Its invoke mode is the manifest's (`RESPONSE_STREAM` for the download, which the
Web Adapter must match), and its CORS allows the stack's `tasks:corsAllowOrigins`, the methods
the function serves and the headers its clients send (Lambda answers the preflight itself).

With auth type NONE, the function's resource-based policy must still let anyone invoke through
the URL. Since October 2025 that takes two statements ("new function URLs will require both
lambda:InvokeFunctionUrl and lambda:InvokeFunction permissions", AWS Lambda Developer Guide,
"Control access to Lambda function URLs"; infra/README.md has the sources):
`lambda:InvokeFunctionUrl` for principal `*` with the URL's auth type NONE as its condition, and
`lambda:InvokeFunction` for principal `*` only when invoked through a function URL
(AddPermission's `InvokedViaFunctionUrl`, the `lambda:InvokedViaFunctionUrl` condition key).
Both are on `live`, as the URL is; neither lets anyone invoke the function any other way.

What abuse of a URL costs at most is bounded by its function's reserved concurrency
(`StackConfig.reserved_for`): requests beyond it are throttled, not run.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pulumi
import pulumi_aws as aws

from infra.api import CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS, CORS_MAX_AGE_S
from infra.context import Deployment
from infra.functions import Functions, serves_http
from stack.manifest import Function

AUTH_TYPE = "NONE"
# What a browser sends the download: its bearer token (and a content type, harmless on a GET).
WEB_ALLOW_HEADERS = ("authorization", "content-type")


def url_methods(function: Function) -> list[str]:
    """The methods CORS allows on `function`'s URL: those of the routes it serves through it
    (its API routes, and the URL's own: the download's `GET /tasks.ndjson`). Never OPTIONS:
    Lambda answers the preflight itself (and refuses a method name over six characters:
    botocore's `Cors.AllowMethods`)."""
    routes = (*function.routes, *(function.url.routes if function.url is not None else ()))
    if not routes:
        raise ValueError(f"{function.name}: a Function URL that serves no route (manifest)")
    return sorted({route.method for route in routes})


def cors(function: Function, origins: Sequence[str]) -> aws.lambda_.FunctionUrlCorsArgs:
    """The API's own CORS for the backup path of an HTTP function (same routes, same clients);
    the token and content type for a web function."""
    http = serves_http(function)
    return aws.lambda_.FunctionUrlCorsArgs(
        allow_origins=list(origins),
        allow_methods=url_methods(function),
        allow_headers=list(CORS_ALLOW_HEADERS if http else WEB_ALLOW_HEADERS),
        expose_headers=list(CORS_EXPOSE_HEADERS) if http else None,
        max_age=CORS_MAX_AGE_S,
        allow_credentials=False,
    )


@attrs.frozen
class FunctionUrlsArgs:
    deployment: Deployment
    functions: Functions
    # What else writes these functions' resource policies (API Gateway's permissions, not the
    # whole API: the backup URL must deploy when the API does not): a URL waits for it.
    # pulumi-aws writes two statements of its own when it creates a URL of auth type NONE
    # (infra/README.md), which nothing else orders, and concurrent writes to one function's
    # policy have been reported to fail with ResourceConflictException (infra/README.md).
    after: Sequence[pulumi.Resource] = ()


class FunctionUrls(pulumi.ComponentResource):
    urls: dict[str, aws.lambda_.FunctionUrl]

    def __init__(
        self, name: str, args: FunctionUrlsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tasks:urls:FunctionUrls", name, None, opts)
        config = args.deployment.config
        self.urls = {}
        for function_name in config.function_urls:
            function = args.functions.manifest[function_name]
            if function.url is None:  # StackConfig refuses it; the manifest may have changed
                raise ValueError(f"tasks:functionUrls names {function_name}, which has no URL")
            self.urls[function_name] = self._url(name, function, args)
        self.register_outputs({"urls": self.url_outputs})

    @property
    def url_outputs(self) -> dict[str, pulumi.Output[str]]:
        """Each URL by its function's name: what the stack exports."""
        return {name: url.function_url for name, url in self.urls.items()}

    def _url(
        self, name: str, function: Function, args: FunctionUrlsArgs
    ) -> aws.lambda_.FunctionUrl:
        assert function.url is not None
        base = f"{name}-{function.name}"
        target = args.functions.functions[function.name]
        alias = args.functions.aliases[function.name]
        child = pulumi.ResourceOptions(parent=self)
        # Anyone may call the URL (auth type NONE)...
        through_url = aws.lambda_.Permission(
            f"{base}-public-url",
            action="lambda:InvokeFunctionUrl",
            function=target.name,
            qualifier=alias.name,
            principal="*",
            function_url_auth_type=AUTH_TYPE,
            opts=child,
        )
        # ...and so invoke the function, but only through a function URL. One policy write at
        # a time (see `FunctionUrlsArgs.after`).
        via_url = aws.lambda_.Permission(
            f"{base}-invoke-via-url",
            action="lambda:InvokeFunction",
            function=target.name,
            qualifier=alias.name,
            principal="*",
            invoked_via_function_url=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[through_url]),
        )
        return aws.lambda_.FunctionUrl(
            base,
            function_name=target.name,
            qualifier=alias.name,
            authorization_type=AUTH_TYPE,
            invoke_mode=function.url.invoke_mode,
            cors=cors(function, args.deployment.config.cors_allow_origins),
            # After its grants (a URL answering 403 meanwhile helps no one) and every other
            # write to the function's policy: pulumi-aws adds its own two when it creates it.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[through_url, via_url, *args.after]
            ),
        )
