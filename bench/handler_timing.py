"""Cold init and warm request time of the HTTP API handler, each against its reference.

Cold: a fresh interpreter per sample imports the handler module and builds the composition
root (no network), against the floor every Python Lambda that talks to DynamoDB pays: importing
botocore, a session and a DynamoDB client.

Warm: `GET /tasks/{id}` through the real handler (logging and metrics on) with in-memory
adapters, against a FastAPI + Mangum handler and a bare Powertools resolver doing the same
lookup and returning the same JSON, all in this process, interleaved.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import attrs

from local_platform.gateway.payload import http_event
from local_platform.lambda_runtime import handler_context
from stack.manifest import API

COLD_ENV = {
    "TABLE_NAME": "tasks",
    "BUCKET_NAME": "attachments",
    "CURSOR_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cursor-AbCdEf",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "tasks",
}

FLOOR = """
import time
started = time.perf_counter()
import botocore.session
client = botocore.session.get_session().create_client("dynamodb", region_name="eu-west-1")
print(time.perf_counter() - started)
"""

HANDLER = """
import time
started = time.perf_counter()
import {module}
from handlers import bootstrap
bootstrap.container()
print(time.perf_counter() - started)
"""

# The event-driven functions build their adapters on first use (cached per container), so their
# init phase is the module import: what Lambda runs before the first event.
MODULE = """
import time
started = time.perf_counter()
import {module}
print(time.perf_counter() - started)
"""

HTTP_MODULE = "handlers.http_api"


@attrs.frozen
class Cold:
    name: str
    seconds: float
    floor: float

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor


def _sample(code: str) -> float:
    env = {**os.environ, **COLD_ENV, "PYTHONDONTWRITEBYTECODE": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def cold_init(modules: list[str], samples: int = 11) -> list[Cold]:
    """Median of `samples` fresh processes each, floor and handlers interleaved."""
    codes = {"floor": FLOOR} | {
        m: (HANDLER if m == HTTP_MODULE else MODULE).format(module=m) for m in modules
    }
    for code in codes.values():
        _sample(code)  # warm the file system cache and .pyc files
    times: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(samples):
        for name, code in codes.items():
            times[name].append(_sample(code))
    floor = statistics.median(times["floor"])
    return [Cold(m, statistics.median(times[m]), floor) for m in modules]


def _timed(call: Callable[[], Any], rounds: int, batch: int) -> float:
    """Best-of-`rounds` mean seconds per call over `batch` calls (the least noisy estimate)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(batch):
            call()
        best = min(best, (time.perf_counter() - started) / batch)
    return best


def warm_request(rounds: int = 7, batch: int = 2000) -> dict[str, float]:
    """Seconds per warm `GET /tasks/{id}` for ours, FastAPI + Mangum, and bare Powertools."""
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
    from fastapi import FastAPI, HTTPException
    from mangum import Mangum

    from handlers import bootstrap, http_api
    from taskcore.commands import CreateTask
    from taskcore.model import TaskId, UserId
    from taskcore.serialization import task_to_json
    from taskcore.testing import in_memory_service, principal

    fakes = in_memory_service()
    task = fakes.service.create_task(principal("alice"), CreateTask(title="Benchmark")).task
    container = bootstrap.Container(service=fakes.service, clock=fakes.clock)
    http_api.app = http_api.create_app(lambda: container)
    event = http_event("GET", f"/tasks/{task.id}", route_key="GET /tasks/{taskId}")
    event["pathParameters"] = {"taskId": task.id}
    context = handler_context(API)

    fastapi_app = FastAPI()

    @fastapi_app.get("/tasks/{task_id}")
    def fastapi_get(task_id: str) -> dict[str, Any]:
        found = fakes.tasks.get(UserId("alice"), TaskId(task_id))
        if found is None:
            raise HTTPException(404)
        return task_to_json(found)

    mangum = Mangum(fastapi_app, lifespan="off")

    bare = APIGatewayHttpResolver()

    @bare.get("/tasks/<task_id>")
    def bare_get(task_id: str) -> Response[str]:
        found = fakes.tasks.get(UserId("alice"), TaskId(task_id))
        if found is None:
            return Response(404, "application/json", "{}")
        return Response(200, "application/json", json.dumps(task_to_json(found)))

    calls: dict[str, Callable[[], Any]] = {
        "handler": lambda: http_api.handler(event, context),
        "fastapi+mangum": lambda: mangum(event, context),  # type: ignore[arg-type]
        "powertools (bare)": lambda: bare.resolve(event, context),
    }
    for name, call in calls.items():
        response = call()
        assert response["statusCode"] == 200, (name, response)
        assert json.loads(response["body"])["id"] == task.id, name
    # Interleave so drift on a shared machine hits every contender alike.
    results: dict[str, list[float]] = {name: [] for name in calls}
    stdout = sys.stdout
    with open(os.devnull, "w") as sink:  # the handler's EMF lines are not the benchmark
        sys.stdout = sink
        try:
            for _ in range(rounds):
                for name, call in calls.items():
                    results[name].append(_timed(call, 1, batch))
        finally:
            sys.stdout = stdout
    return {name: min(values) for name, values in results.items()}
