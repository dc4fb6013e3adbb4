"""The Function URLs on the local platform (`python -m local_platform`, over HTTP): the API's
backup URL answers as API Gateway does, and the download streams a user's whole task list,
each verifying the bearer token itself.

The platform here logs at INFO (`LOG_LEVEL`), so the download function's one record per
request (tasks, pages, time to first byte, when the last page was read, whether the client
left) can be read back from its log file: what the stream did is measured where it happened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.exports import seed
from local_platform.dynamodb_local import free_port
from local_platform.platform import TABLE
from local_platform.process import Platform, start_platform
from taskcore.adapters.dynamodb import bind_models, from_item, user_pk
from taskcore.model import UserId
from taskcore.serialization import task_to_json
from tests.e2e.tokens import unauthorized_headers_for

STREAMED = 20_000


@pytest.fixture(scope="module")
def platform() -> Iterator[tuple[Platform, str]]:
    """A platform of its own, logging at INFO; and its DynamoDB Local endpoint. It follows no
    events: 20,000 tasks written at once would keep the stats consumer busy for minutes."""
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOG_LEVEL", "INFO")
        running = start_platform("--no-throttle", "--no-events", dynamodb_port=port)
    yield running, f"http://127.0.0.1:{port}"
    assert running.stop() == 0, "\n".join(running.output)


def url(platform: Platform, name: str) -> str:
    assert name in platform.urls, f"no {name} URL in the banner: {platform.urls}"
    return platform.urls[name]


def auth(platform: Platform, user: str) -> dict[str, str]:
    return {"authorization": f"Bearer {platform.token(user)}"}


def download_records(platform: Platform) -> list[dict[str, Any]]:
    """The download function's per-request records, from its raw log file."""
    path = platform.log_dir / "download.log"
    records = []
    for line in path.read_text().splitlines() if path.exists() else []:
        _, _, text = line.partition("\t")
        if text.startswith("{"):
            document = json.loads(text)
            if document.get("message") == "download":
                records.append(document)
    return records


def next_record(platform: Platform, seen: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        records = download_records(platform)
        if len(records) > seen:
            return records[seen]
        assert time.monotonic() < deadline, "the download logged no record"
        time.sleep(0.05)


def stored_tasks(endpoint: str, owner: str) -> list[dict[str, Any]]:
    """Every task of `owner` as the table holds it, newest first, in the API's shape."""
    models = bind_models(TABLE, endpoint, "us-east-1")
    items = models.task.query(
        user_pk(UserId(owner)), models.task.sk.startswith("TASK#"), scan_index_forward=False
    )
    return [task_to_json(from_item(item)) for item in items]


@pytest.fixture(scope="module")
def many(platform: tuple[Platform, str]) -> str:
    """A user with 20,000 tasks, written straight to the table (BatchWriteItem)."""
    owner = "streamer"
    seed(TABLE, platform[1], owner, STREAMED)
    return owner


def test_twenty_thousand_tasks_stream_back_exactly_as_stored(
    platform: tuple[Platform, str], many: str
) -> None:
    running, endpoint = platform
    seen = len(download_records(running))
    received: list[dict[str, Any]] = []
    with httpx.stream(
        "GET", f"{url(running, 'download')}/tasks.ndjson", headers=auth(running, many), timeout=120
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson; charset=utf-8"
        received = [json.loads(line) for line in response.iter_lines()]
    assert received == stored_tasks(endpoint, many)
    assert len(received) == STREAMED
    record = next_record(running, seen)
    assert record["tasks"] == STREAMED
    assert record["pages"] == STREAMED // 100
    # Measured in the function: its first bytes left before its last page was read.
    assert record["first_byte_ms"] < record["last_page_read_ms"]
    assert not record["client_left"]


def test_a_client_that_disconnects_leaves_nothing_running(
    platform: tuple[Platform, str], many: str
) -> None:
    running, _ = platform
    seen = len(download_records(running))
    with httpx.stream(
        "GET", f"{url(running, 'download')}/tasks.ndjson", headers=auth(running, many), timeout=60
    ) as response:
        first = next(response.iter_lines())
    assert json.loads(first)["ownerId"] == many
    record = next_record(running, seen)
    assert record["client_left"]
    assert record["pages"] < STREAMED // 100
    pages = record["pages"]
    time.sleep(0.5)  # nothing goes on reading for the client that left
    assert download_records(running)[seen]["pages"] == pages
    assert len(download_records(running)) == seen + 1
    # ...and the function serves the next request at once.
    health = httpx.get(f"{url(running, 'download')}/health", timeout=5)
    assert health.status_code == 200


def test_no_user_ever_streams_another_users_tasks(platform: tuple[Platform, str]) -> None:
    running, _ = platform
    with running.client("alice-bola") as alice, running.client("bob-bola") as bob:
        mine = {alice.post("/tasks", json={"title": f"alice {i}"}).json()["id"] for i in range(3)}
        theirs = {bob.post("/tasks", json={"title": f"bob {i}"}).json()["id"] for i in range(2)}
    for user, own, other in (("alice-bola", mine, theirs), ("bob-bola", theirs, mine)):
        response = httpx.get(
            f"{url(running, 'download')}/tasks.ndjson", headers=auth(running, user), timeout=30
        )
        ids = {json.loads(line)["id"] for line in response.text.splitlines()}
        assert ids == own
        assert not ids & other
    # Through the API's URL too: another user's task is not found.
    other_id = next(iter(theirs))
    response = httpx.get(
        f"{url(running, 'api')}/tasks/{other_id}", headers=auth(running, "alice-bola"), timeout=30
    )
    assert response.status_code == 404


@pytest.fixture(scope="module")
def other_issuer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from local_platform.auth import DevIssuer

    return DevIssuer(key_dir=tmp_path_factory.mktemp("other-issuer"))


@pytest.mark.parametrize(("name", "path"), [("api", "/tasks"), ("download", "/tasks.ndjson")])
def test_every_forged_token_is_refused_on_both_urls(
    platform: tuple[Platform, str], other_issuer: Any, name: str, path: str
) -> None:
    running, _ = platform
    for kind, headers in unauthorized_headers_for(running.issuer, other_issuer).items():
        if kind == "bearer-without-token":
            continue  # h11 will not send a header value ending in a space
        response = httpx.get(f"{url(running, name)}{path}", headers=headers, timeout=30)
        assert response.status_code == 401, (name, kind, response.text)
        assert response.headers["content-type"] == "application/problem+json", (name, kind)
        assert response.json()["type"] == "urn:tasks:problem:unauthenticated", (name, kind)


def comparable(response: httpx.Response) -> tuple[int, Any, str | None]:
    body = response.json() if response.content else None
    return response.status_code, body, response.headers.get("etag")


def test_the_apis_url_answers_as_api_gateway_does(platform: tuple[Platform, str]) -> None:
    """The same handler and routes: the same statuses, bodies and ETags either way."""
    running, _ = platform
    backup = url(running, "api")
    headers = auth(running, "carol-url")
    with running.client("carol-url") as gateway:  # (no events: /stats stays empty either way)
        created = gateway.post("/tasks", json={"title": "through the gateway"}).json()
        task = f"/tasks/{created['id']}"
        requests: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", task, {}),
            ("GET", "/tasks", {"params": {"limit": "5"}}),
            ("GET", "/stats", {}),
            ("GET", "/tasks/01JD0000000000000000000000", {}),
            ("POST", "/tasks", {"json": {"title": ""}}),
            ("GET", "/tasks", {"params": {"status": "finished"}}),
            ("PATCH", task, {"json": {"title": "x"}, "headers": {"if-match": '"99"'}}),
            ("DELETE", "/stats", {}),
            ("GET", "/health", {}),
        ]
        for method, path, options in requests:
            extra = options.pop("headers", {})
            through_gateway = gateway.request(method, path, headers=extra, **options)
            through_url = httpx.request(
                method, f"{backup}{path}", headers={**headers, **extra}, timeout=30, **options
            )
            assert through_gateway.status_code != 401, (method, path)
            assert comparable(through_url) == comparable(through_gateway), (method, path)


def test_the_stack_decides_which_urls_the_platform_serves() -> None:
    """`tasks:functionUrls`, as on AWS: dev serves both, prod only the download."""
    from local_platform.function_urls import url_functions
    from stack.config import StackConfig
    from stack.manifest import FUNCTIONS

    served = {
        stack: [f.name for f in url_functions(FUNCTIONS, StackConfig.from_stack_file(stack))]
        for stack in ("dev", "prod")
    }
    assert served == {"dev": ["api", "download"], "prod": ["download"]}
