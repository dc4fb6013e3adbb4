"""Plain helpers for tests that drive the local platform's API over HTTP: clients, the checks
every response must pass (never a 5xx; problem+json that fits the OpenAPI `Problem` schema, or
API Gateway's own `{"message": ...}`), and small verbs (create, list, snapshot).

Shared by `tests/e2e` and `tests/reliability`; no test lives here.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from local_platform.process import ROOT, Platform

JSON = "application/json"
PROBLEM = "application/problem+json"
ORIGIN = "http://localhost:3000"  # Pulumi.dev.yaml's corsAllowOrigins
OTHER_ALLOWED_ORIGIN = "http://127.0.0.1:3000"
GATEWAY_STATUSES = frozenset({401, 413, 429})  # what API Gateway answers itself, here
SPEC_URI = "urn:tasks:openapi"
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
ETAG = re.compile(r'^"(\d+)"$')
MISSING_ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"  # well-formed; names no task of anyone's


# -- the OpenAPI document, to check bodies against ---------------------------------------------


@functools.cache
def _registry() -> Registry[Any]:
    document = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


def schema_errors(schema: str, instance: Any) -> list[str]:
    """Why `instance` does not fit `components/schemas/<schema>` (empty: it fits)."""
    validator = Draft202012Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/{schema}"},
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def assert_schema(schema: str, instance: Any) -> None:
    errors = schema_errors(schema, instance)
    assert not errors, f"not a {schema}: {errors}\n{json.dumps(instance, indent=1)[:2000]}"


# -- clients -----------------------------------------------------------------------------------


def describe(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url} -> {response.status_code} {response.text[:500]!r}"


def check_response(response: httpx.Response) -> None:
    """Every API response: no 5xx; errors are problem+json (handler) or {"message"} (gateway)."""
    response.read()
    status = response.status_code
    assert status < 500, f"server error: {describe(response)}"
    if status < 400:
        return
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    if content_type == PROBLEM:
        body = response.json()
        assert_schema("Problem", body)
        assert body["status"] == status, describe(response)
    else:
        assert content_type == JSON, (
            f"error with content type {content_type!r}: {describe(response)}"
        )
        assert status in GATEWAY_STATUSES, f"a non-problem error: {describe(response)}"
        body = response.json()
        assert isinstance(body, dict), describe(response)
        assert set(body) == {"message"}, describe(response)
        assert isinstance(body["message"], str), describe(response)


def check_no_server_error(response: httpx.Response) -> None:
    response.read()
    assert response.status_code < 500, f"server error: {describe(response)}"


@contextmanager
def api(platform: Platform, user: str | None = None, *groups: str) -> Iterator[httpx.Client]:
    """A client of the API as `user` (no token if None), every response checked."""
    client = platform.client(user, *groups)
    client.event_hooks = {"request": [], "response": [check_response]}
    with client:
        yield client


@contextmanager
def raw_api(platform: Platform, headers: dict[str, str] | None = None) -> Iterator[httpx.Client]:
    client = httpx.Client(
        base_url=platform.url,
        headers=headers or {},
        timeout=30,
        trust_env=False,
        event_hooks={"request": [], "response": [check_response]},
    )
    with client:
        yield client


@contextmanager
def s3_client() -> Iterator[httpx.Client]:
    """For the presigned URLs (the S3 stand-in); not the API, so only the 5xx check."""
    with httpx.Client(
        timeout=30,
        trust_env=False,
        event_hooks={"request": [], "response": [check_no_server_error]},
    ) as client:
        yield client


def new_user(role: str = "user") -> str:
    return f"{role}-{uuid.uuid4().hex[:12]}"


# -- small helpers -----------------------------------------------------------------------------


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith(PROBLEM), describe(response)
    kind: str = response.json()["type"]
    return kind.removeprefix("urn:tasks:problem:")


def expect_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, describe(response)
    assert problem_type(response) == code, describe(response)
    body: dict[str, Any] = response.json()
    return body


def expect_gateway(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, describe(response)
    assert response.headers["content-type"].split(";")[0] == JSON, describe(response)
    assert response.json() == {"message": message}, describe(response)


def version_of(response: httpx.Response) -> int:
    match = ETAG.match(response.headers.get("etag", ""))
    assert match is not None, f"no strong ETag: {describe(response)}"
    return int(match.group(1))


def expect_task(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """A task response: the status, a Task body, and an ETag that is its version."""
    assert response.status_code == status, describe(response)
    assert response.headers["content-type"].split(";")[0] == JSON, describe(response)
    body: dict[str, Any] = response.json()
    assert_schema("Task", body)
    assert version_of(response) == body["version"], describe(response)
    return body


def create(client: httpx.Client, title: str = "A task", **fields: Any) -> dict[str, Any]:
    response = client.post("/tasks", json={"title": title, **fields})
    body = expect_task(response, 201)
    assert response.headers["location"] == f"/tasks/{body['id']}"
    return body


def list_all(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/tasks", params=query)
        assert response.status_code == 200, describe(response)
        page = response.json()
        items += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ends")


def snapshot(client: httpx.Client, task_id: str) -> tuple[dict[str, Any], str]:
    response = client.get(f"/tasks/{task_id}")
    body = expect_task(response)
    return body, response.headers["etag"]


def run_together(count: int, work: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """`work(0..count-1)` on `count` threads released at once."""
    barrier = threading.Barrier(count)

    def start(index: int) -> httpx.Response:
        barrier.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(start, range(count)))


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
