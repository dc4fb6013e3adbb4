"""Lambda handlers for the sandbox tests: module state, environment, slowness, crashes."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

IMPORTED_AT = time.time()
_invocations = [0]


def state(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """What this sandbox is: its process, its own invocation count, its environment."""
    _invocations[0] += 1
    time.sleep(float(event.get("sleep_s", 0)))
    return {
        "pid": os.getpid(),
        "invocations": _invocations[0],
        "imported_at": IMPORTED_AT,
        "table": os.environ.get("TABLE_NAME"),
        "request_id": context.aws_request_id,
    }


def fail(event: dict[str, Any], context: Any) -> None:
    raise ValueError(f"refused {event['n']}")


def crash(event: dict[str, Any], context: Any) -> None:
    os._exit(3)


def sleep(event: dict[str, Any], context: Any) -> None:
    time.sleep(5)


def talk(event: dict[str, Any], context: Any) -> None:
    """Write each of `say` in turn, to stdout and stderr alternately."""
    for n, text in enumerate(event["say"]):
        print(text, file=sys.stderr if n % 2 else sys.stdout)


def talk_then_hang(event: dict[str, Any], context: Any) -> None:
    print("about to hang", flush=False)
    time.sleep(5)


def list_tables(event: dict[str, Any], context: Any) -> list[str]:
    """One DynamoDB request of the sandbox's own making, and one line of log."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "dynamodb",
        endpoint_url=event["endpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(proxies={}),
    )
    print("listing")
    return list(client.list_tables()["TableNames"])
