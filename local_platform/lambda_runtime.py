"""The Lambda runtime's side of an invocation, as the local platform plays it: the context
object a handler receives, and calling the handler the manifest names, in this process.
Shared by the gateway (HTTP functions), the event bus and the stream poller (`__main__.py`).
"""

from __future__ import annotations

import importlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs

from stack.manifest import Function

ACCOUNT_ID = "123456789012"


@attrs.frozen(kw_only=True)
class LambdaContext:
    """The attributes of the Python runtime's context object a handler reads.

    `memory_limit_in_mb` is a string, as the real runtime sets it (from
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE), though type stubs often say int.
    """

    function_name: str
    function_version: str = "$LATEST"
    invoked_function_arn: str
    memory_limit_in_mb: str
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: int  # epoch milliseconds
    identity: None = None
    client_context: None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


Invoke = Callable[[Function, dict[str, Any], LambdaContext], Any]


def invoke_handler(function: Function, event: dict[str, Any], context: LambdaContext) -> Any:
    """Call the function's handler in this process, as the Lambda runtime would."""
    module = importlib.import_module(function.module)
    handler: Callable[[dict[str, Any], LambdaContext], Any] = getattr(module, function.attribute)
    return handler(event, context)


def lambda_context(function: Function, region: str, now_ms: int) -> LambdaContext:
    arn = f"arn:aws:lambda:{region or 'us-east-1'}:{ACCOUNT_ID}:function:{function.name}"
    request_id = str(uuid.uuid4())
    return LambdaContext(
        function_name=function.name,
        invoked_function_arn=arn,
        memory_limit_in_mb=str(function.memory_mb),
        aws_request_id=request_id,
        log_group_name=f"/aws/lambda/{function.name}",
        log_stream_name=f"{time.strftime('%Y/%m/%d')}/[$LATEST]{request_id.replace('-', '')}",
        deadline_ms=now_ms + function.timeout_s * 1000,
    )
