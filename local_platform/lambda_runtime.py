"""The Lambda runtime's side of an invocation, as the local platform plays it: the context
object a handler receives, and calling the handler the manifest names, in this process.
Shared by the gateway (HTTP functions), the event bus and the stream poller (`__main__.py`),
and by the tests and benchmarks that call a handler directly (`handler_context`).
"""

from __future__ import annotations

import importlib
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import attrs

from stack.manifest import Function

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext as PowertoolsContext

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


def lambda_context(
    function: Function, region: str = "", now_ms: int | None = None
) -> LambdaContext:
    """The context for one invocation of `function` starting at `now_ms` (default: now); its
    deadline is the function's timeout later."""
    if now_ms is None:
        now_ms = int(time.time() * 1000)
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


def handler_context(function: Function, *, remaining_ms: int | None = None) -> PowertoolsContext:
    """`lambda_context(function)` as the handlers' annotations name it, for calling a handler
    directly (the tests, the benchmarks). The handlers annotate their context with Powertools'
    `LambdaContext`, a typing aid the runtime's object does not derive from, here or on AWS.
    `remaining_ms` sets how long the invocation has left (default: the function's timeout).
    """
    context = lambda_context(function)
    if remaining_ms is not None:
        context = attrs.evolve(context, deadline_ms=int(time.time() * 1000) + remaining_ms)
    return cast("PowertoolsContext", context)
