"""A cold start to its first page of tasks: the HTTP API function against the floor.

The cold-init figure stops at the end of init; the HTTP function builds its clients and reads
the cursor secret on first use, so part of a cold start happens in the first request. This
figure follows a fresh interpreter to its first answered `GET /tasks?limit=20` (a user with 30
tasks: the answer has a next cursor, so the cursor secret is read), against DynamoDB Local and
moto's Secrets Manager, each in its own process:

- **HTTP function**: import the handler module, build the composition root (init), answer the
  request through the real handler (payload 2.0, logging and metrics on): the DynamoDB client,
  the Secrets Manager client, the secret's read (Powertools Parameters, boto3 imported on
  first use) and the Query all happen here. The secret's first read (imports, client,
  `GetSecretValue`) is timed on its own, inside the request. A second, warm request follows.
- **Floor**: import botocore, build a session and a DynamoDB client (the cold-init floor), then
  the same Query (20 of the user's tasks, strongly consistent), then once more, warm.

Both are timed in the child from its first line (so the interpreter's own start is not in
either) with CLOCK_MONOTONIC; medians of `samples`, interleaved. The ratio of the cold starts
includes the local engines' round trips, which are a few milliseconds here and more on AWS.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import attrs

from bench.exports import s3_server, seed
from bench.handler_timing import HTTP_MODULE
from local_platform.dynamodb_local import DynamoDBLocal
from stack.manifest import API

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
OWNER = "bench-first-request"
TASKS = 30
"""More than a page of 20: the first answer carries a signed next cursor."""

HANDLER = """
import time
began = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
import json, os, sys
event = json.loads(sys.argv[1])
import {module} as module
from handlers import bootstrap
bootstrap.container()
initialised = time.clock_gettime_ns(time.CLOCK_MONOTONIC)

from handlers import secrets
secret_ns = []
codec = secrets.SecretCursors.codec
def timed(self):
    started = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    try:
        return codec(self)
    finally:
        secret_ns.append(time.clock_gettime_ns(time.CLOCK_MONOTONIC) - started)
secrets.SecretCursors.codec = timed

from local_platform.lambda_runtime import handler_context
from stack.manifest import API
out, sys.stdout = sys.stdout, open(os.devnull, "w")  # the handler's EMF lines
first = module.handler(event, handler_context(API))
answered = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
second = module.handler(event, handler_context(API))
again = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
sys.stdout = out
tasks = len(json.loads(first["body"])["items"])
print(json.dumps({{"status": [first["statusCode"], second["statusCode"]], "tasks": tasks,
                  "began": began, "initialised": initialised, "answered": answered,
                  "again": again, "secret": secret_ns[0] if secret_ns else None}}))
"""

FLOOR = """
import time
began = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
import json, os
import botocore.session
client = botocore.session.get_session().create_client(
    "dynamodb", endpoint_url=os.environ["DYNAMODB_ENDPOINT"], region_name="{region}",
    aws_access_key_id="local", aws_secret_access_key="local")
initialised = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
def query():
    return client.query(
        TableName=os.environ["TABLE_NAME"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :task)",
        ExpressionAttributeValues={{":pk": {{"S": "USER#{owner}"}}, ":task": {{"S": "TASK#"}}}},
        Limit=20, ConsistentRead=True, ScanIndexForward=False)
tasks = len(query()["Items"])
answered = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
query()
again = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
print(json.dumps({{"status": [200, 200], "tasks": tasks, "began": began,
                  "initialised": initialised, "answered": answered, "again": again,
                  "secret": None}}))
"""


@attrs.frozen
class Start:
    """Medians, in seconds, of one kind of cold start."""

    init: float
    """From the child's first line to the end of init."""
    first: float
    """...and on to the first answered page."""
    warm: float
    """The second, warm request alone."""
    secret: float | None
    """The cursor secret's first read (imports, client, GetSecretValue), within `first`."""


@attrs.frozen
class FirstRequest:
    samples: int
    handler: Start
    floor: Start

    @property
    def ratio(self) -> float:
        return self.handler.first / self.floor.first


def _event() -> dict[str, Any]:
    from local_platform.gateway.payload import http_event

    return http_event("GET", "/tasks", user=OWNER, query={"limit": "20"}, route_key="GET /tasks")


def _run(code: str, event: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code, event],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    sample: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if sample["status"] != [200, 200] or sample["tasks"] != 20:
        raise RuntimeError(f"a cold start answered {sample}")
    return sample


def _start(samples: list[dict[str, Any]]) -> Start:
    def median(key: str, since: str) -> float:
        return float(statistics.median(s[key] - s[since] for s in samples)) / 1e9

    secrets = [s["secret"] for s in samples if s["secret"] is not None]
    return Start(
        init=median("initialised", "began"),
        first=median("answered", "began"),
        warm=median("again", "answered"),
        secret=statistics.median(secrets) / 1e9 if secrets else None,
    )


def measure(samples: int = 11) -> FirstRequest:
    from local_platform.platform import ensure_cursor_secret
    from taskcore.adapters.dynamodb import create_table

    table = f"bench-first-{uuid.uuid4().hex[:8]}"
    with DynamoDBLocal() as engine, s3_server() as moto:
        create_table(engine.client(), table)
        seed(table, engine.endpoint_url, OWNER, TASKS)
        secret = ensure_cursor_secret(moto, "k" * 48)
        env = {
            **os.environ,
            "_HANDLER": f"{API.module}.{API.attribute}",
            "TABLE_NAME": table,
            "BUCKET_NAME": "bench-first-request",
            "CURSOR_SECRET_ARN": secret,
            "DYNAMODB_ENDPOINT": engine.endpoint_url,
            "S3_ENDPOINT": moto,
            "SECRETSMANAGER_ENDPOINT": moto,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "POWERTOOLS_METRICS_NAMESPACE": "tasks",
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONDONTWRITEBYTECODE": "0",
        }
        event = json.dumps(_event())
        codes = {
            "handler": HANDLER.format(module=HTTP_MODULE),
            "floor": FLOOR.format(region=REGION, owner=OWNER),
        }
        for code in codes.values():
            _run(code, event, env)  # warm the file system cache and .pyc files
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
        for _ in range(samples):
            for name, code in codes.items():
                runs[name].append(_run(code, event, env))
    return FirstRequest(samples, _start(runs["handler"]), _start(runs["floor"]))


def render(result: FirstRequest) -> str:
    ours, floor = result.handler, result.floor
    secret = f"{ours.secret * 1e3:.1f} ms" if ours.secret is not None else "not read"
    return "\n".join(
        [
            f"{'':<38} {'HTTP function':>14} {'floor':>9}",
            f"{'init':<38} {ours.init * 1e3:11.1f} ms {floor.init * 1e3:6.1f} ms",
            f"{'first page (clients, secret, Query)':<38} "
            f"{(ours.first - ours.init) * 1e3:11.1f} ms {(floor.first - floor.init) * 1e3:6.1f} ms",
            f"{'  of which the secret first read':<38} {secret:>14}",
            f"{'cold start to the first page':<38} {ours.first * 1e3:11.1f} ms "
            f"{floor.first * 1e3:6.1f} ms",
            f"{'the next page, warm':<38} {ours.warm * 1e3:11.1f} ms {floor.warm * 1e3:6.1f} ms",
            f"medians of {result.samples} fresh interpreters each, interleaved",
        ]
    )


def data(result: FirstRequest) -> dict[str, Any]:
    def start(s: Start) -> dict[str, float | None]:
        return {
            "init_ms": s.init * 1e3,
            "first_page_ms": s.first * 1e3,
            "warm_ms": s.warm * 1e3,
            "secret_first_read_ms": None if s.secret is None else s.secret * 1e3,
        }

    return {
        "samples": result.samples,
        "handler": start(result.handler),
        "floor": start(result.floor),
        "ratio": result.ratio,
    }
