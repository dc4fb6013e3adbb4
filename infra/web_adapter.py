"""AWS's Lambda Web Adapter (LWA), for the functions the manifest marks `web` (the download): the
function is a web app behind the adapter instead of a Python handler.

How a zip-packaged function uses it, as the adapter's README says (awslabs/aws-lambda-web-adapter,
README.md at commit 2194417c51b117167092aceed58807bdc0f569a3, "Zip Packages" and
"Configurations"; the same in its guide, docs/guide/src/getting-started/zip-packages.md):

1. attach the layer AWS publishes for the function's architecture,
   `arn:aws:lambda:${AWS::Region}:753240598075:layer:LambdaAdapterLayerArm64:26` for arm64
   (`LambdaAdapterLayerX86` for x86_64), in the commercial regions (China has its own accounts);
2. set `AWS_LAMBDA_EXEC_WRAPPER` to `/opt/bootstrap` (the layer's): Lambda then runs the adapter,
   which starts the handler as a program, `${LAMBDA_TASK_ROOT}/${_HANDLER}`, and forwards each
   invocation to it over HTTP;
3. set the function's handler to the startup script (`handlers/download.sh`, which the code
   archive keeps executable: `infra.packaging`).

Its settings are environment variables (the README's table): `AWS_LWA_PORT` (the port the app
listens on, default 8080), `AWS_LWA_READINESS_CHECK_PATH` (what the adapter polls before the
first request, default `/`), `AWS_LWA_INVOKE_MODE` (`buffered` or `response_stream`, which
"should match your Lambda Function URL's invoke mode configuration",
docs/guide/src/configuration/response-streaming.md).

A new layer version is a reviewed change here (`LAYER_VERSION`), never a lookup at deploy time.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from infra import packaging
from infra.context import Deployment
from stack.manifest import Function

PUBLISHER_ACCOUNT = "753240598075"  # AWS's account that publishes the layer (commercial regions)
LAYER_NAMES: Mapping[str, str] = {
    "arm64": "LambdaAdapterLayerArm64",
    "x86_64": "LambdaAdapterLayerX86",
}
LAYER_VERSION = 26
EXEC_WRAPPER = "/opt/bootstrap"
PORT = 8080  # the adapter's default, written out so the script and the adapter agree
PARTITION = "aws"  # the README's ARNs; China's (aws-cn) are other accounts, x86_64 only


def layer_arn(
    deployment: Deployment, architecture: str = packaging.ARCHITECTURE
) -> pulumi.Output[str]:
    """The adapter's layer in the stack's region, for `architecture`."""
    layer = LAYER_NAMES[architecture]

    def arn(partition: str, region: str) -> str:
        if partition != PARTITION:
            raise ValueError(
                f"the Lambda Web Adapter layer this program names is published in the {PARTITION} "
                f"partition; this stack deploys to {partition}: see the adapter's README for "
                "that partition's layer"
            )
        return f"arn:{partition}:lambda:{region}:{PUBLISHER_ACCOUNT}:layer:{layer}:{LAYER_VERSION}"

    return pulumi.Output.all(deployment.partition, deployment.region).apply(
        lambda values: arn(str(values[0]), str(values[1]))
    )


def invoke_mode(function: Function) -> str:
    """The adapter's invoke mode, from the function's URL (`buffered` without one)."""
    return function.url.invoke_mode.lower() if function.url is not None else "buffered"


def environment(function: Function) -> dict[str, str]:
    """The adapter's settings for a web function."""
    if function.web is None:
        raise ValueError(f"{function.name} is not a web function")
    return {
        "AWS_LAMBDA_EXEC_WRAPPER": EXEC_WRAPPER,
        "AWS_LWA_PORT": str(PORT),
        "AWS_LWA_READINESS_CHECK_PATH": function.web.readiness_path,
        "AWS_LWA_INVOKE_MODE": invoke_mode(function),
    }
