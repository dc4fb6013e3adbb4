"""The API stage's access-log line: its format, written once for infra and the local platform.

Infra gives `FORMAT` to the stage (`infra/api.py`); the local gateway renders a line in it for
each request when it meters (`local_platform.meter`): CloudWatch Logs bills its bytes. API
Gateway writes `-` for a `$context` variable that has no value (API Gateway Developer Guide,
http-api-logging-variables.html).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
}


def stage_format() -> str:
    """The format as the stage's `access_log_settings.format` takes it."""
    return json.dumps(FORMAT, separators=(",", ":"))


def render(context: Mapping[str, object]) -> str:
    """One line, with `context` holding the variables' values by name without `$context.`
    (`{"requestId": ..., "identity.sourceIp": ...}`); a missing or empty one is `-`."""
    line = stage_format()
    for variable in sorted(FORMAT.values(), key=len, reverse=True):  # longest first
        value = context.get(variable.removeprefix("$context."))
        text = "-" if value is None or value == "" else str(value)
        line = line.replace(variable, json.dumps(text)[1:-1])
    return line
