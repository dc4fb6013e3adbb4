"""Fuzz the running local platform over real HTTP from openapi.yaml, with schemathesis.

Every operation of the document is generated in both modes: positive (data the document
allows) and negative (data it forbids), through schemathesis's examples, coverage and fuzzing
phases, and sent to the session's `platform` (`python -m local_platform`, unthrottled) with a
real token, so the answers come from the gateway's authorizer and the real handler, not from a
401 wall. Each response must pass:

* `not_a_server_error`: no 5xx, ever;
* `status_code_conformance`: the status is one the operation documents;
* `content_type_conformance`: the media type is one documented for that status;
* `response_headers_conformance`: documented required headers (`ETag`, `Location`) are there
  and fit their schemas;
* `response_schema_conformance`: the body fits the documented schema;
* `negative_data_rejection`: a negative case gets a 4xx.

Path ids: a generated `taskId` is any non-empty string (the document says so on purpose: any
non-ULID is 404). To reach the success paths too, most positive cases get a real id instead,
from a small pool of tasks (and attachments, or exports, or archive months) made for the
operation before its first case, in the states the operation acts on; the choice is a hash of
the generated case, so a derandomized run sends the same requests each time. (An archive month
is made by handing the real archiver a `TaskArchived` event for a completed task, through the
platform's EventBridge endpoint: the session's platform archives nothing by itself within a
test run, a completed task expiring a week later.)

`test_awkward_task_ids` sends, with the same checks, a few ids the fuzzer never generates (`%`,
`/`, `?` in them). `test_zz_fuzzing_volume` runs last and checks the volume: at least
`MIN_REQUESTS` requests, both modes, no positive case refused by the authorizer, and every
operation answered with a 2xx at least once.

Scale: `make test` runs `EXAMPLES_PER_OPERATION` = 40 fuzzing cases per operation (about 1,000
requests in all, at least `MIN_REQUESTS` = 500); `make soak` (TASKS_SOAK=1) runs 150 (about
2,700 requests, at least 2,000). Every request counts into the reliability ledger as
"fuzz: schemathesis", its 5xx too.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import httpx
import hypothesis
import pytest
import requests
import schemathesis
from botocore.config import Config
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.core.parameters import ParameterLocation
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local_platform.process import Platform
from stack.manifest import FUNCTIONS
from taskcore.events import EVENT_SOURCE, TaskArchived
from taskcore.serialization import event_to_json, task_from_json
from tests.reliability.ledger import LEDGER, scale

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
OWNER = "fuzz-user"  # owns every task the fuzzer makes or reads
APPROVER = "fuzz-approver"  # a member of `approvers`, for the approvals operations
APPROVERS = "approvers"  # the group
APPROVALS_TAG = "approvals"  # the operations' tag
EXAMPLES_PER_OPERATION = scale(40, 150)  # fuzzing phase; examples and coverage phases add more
MIN_REQUESTS = scale(500, 2000)
LEDGER_PART = "fuzz: schemathesis"
REAL_ID_SHARE = 4  # 3 in 4 positive cases with a path id get a real one

# No check needed relaxing for the gateway: its own answers (401 `{"message": ...}`, and 429/500
# which cannot happen here) are documented on every operation. `positive_data_acceptance` is
# left out on purpose: valid data is refused for reasons no schema can say (a `dueDate` in the
# past is 422, a random `If-Match` 412, a lifecycle move 409, an unknown id 404).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# A negative path value holding `/`, `?` or `%` (what `pattern: ^[^/?%]+$` excludes) never
# reaches its operation: the gateway percent-decodes the path twice, so `/` splits it, `?` ends
# it (the rest becomes the query) and a stray `%` is the gateway's own 400. The answer is another
# route's: `POST .../a?b/complete` is `POST /tasks/a`, a 405; `POST /tasks/?b/approval` is a
# `no-route` 404. Those answers are documented once for the whole API (`NoRoute`,
# `MethodNotAllowed`), not per operation, so such a case is held to what matters, as in
# `test_awkward_task_ids`: refused with a 4xx, never a 5xx. (Found at soak scale.)
ROUTING_CHARACTERS = frozenset("/?%")
REROUTED_CHECKS = [not_a_server_error, negative_data_rejection]
# requests drops a query parameter whose value is None or an empty list or object; schemathesis
# still judges the case it generated. A negative case that lost a parameter on the way may be
# valid as sent (`?cursor=&limit=1`, its extra property gone, and the token it left out added
# back by this test), so it is not held to `negative_data_rejection`. (Found at soak scale.)

schema = schemathesis.openapi.from_path(SPEC)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,  # derandomize: the same cases on every run (CI)
    database="none",
)
# A negative case must be rejected with a 4xx, whatever the reason the API gives. (The default
# list also accepts 5xx, which `not_a_server_error` already rules out.)
schema.config.checks.negative_data_rejection.expected_statuses = ["4XX"]


# -- bookkeeping -------------------------------------------------------------------------------

SENT: Counter[str] = Counter()  # requests per operation label
MODES: Counter[str] = Counter()  # requests per generation mode
STATUSES: Counter[tuple[str, int]] = Counter()  # (operation label, status)
POSITIVE_401: Counter[str] = Counter()  # positive cases the authorizer refused (never, ideally)
REROUTED: Counter[str] = Counter()  # negative cases whose path the gateway routed elsewhere
LOST: Counter[str] = Counter()  # negative cases that lost a query parameter on the way
POOLS: dict[str, list[dict[str, str]]] = {}  # operation label -> real path parameters


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.trust_env = False  # 127.0.0.1 only: no proxy from the environment
        yield http


@pytest.fixture(scope="module")
def tokens(platform: Platform) -> dict[str, str]:
    return {
        OWNER: platform.token(OWNER),
        APPROVER: platform.token(APPROVER, APPROVERS),
    }


def count(response: Response) -> None:
    """Into the reliability ledger: one request, and a 5xx if it was one."""
    LEDGER.part(LEDGER_PART).sent(httpx.Response(response.status_code))


# -- real ids ----------------------------------------------------------------------------------


def _create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post("/tasks", json={"title": "fuzz target", **fields})
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def _start(client: httpx.Client, task: dict[str, Any]) -> dict[str, Any]:
    response = client.patch(f"/tasks/{task['id']}", json={"status": "in_progress"})
    assert response.status_code == 200, response.text
    started: dict[str, Any] = response.json()
    return started


def _archived_month(platform: Platform, owner: httpx.Client) -> str:
    """A month of the owner's archive: a completed task, handed to the archiver as the stream
    publisher hands it a task the table's TTL removed."""
    task = _start(owner, _create(owner))
    done = owner.post(f"/tasks/{task['id']}/complete")
    assert done.status_code == 200, done.text
    events = boto3.client(
        "events",
        endpoint_url=platform.endpoint("EventBridge"),
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(proxies={}),
    )
    event = TaskArchived.make(task_from_json(done.json()), task_from_json(done.json()).updated_at)
    entry: Any = {
        "Source": EVENT_SOURCE,
        "DetailType": TaskArchived.kind,
        "Detail": json.dumps(event_to_json(event)),
        "EventBusName": "tasks-local-bus",
    }
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    month = str(done.json()["completedAt"][:7])
    deadline = time.monotonic() + 30
    while {"month": month} not in owner.get("/archive").json()["items"]:
        assert time.monotonic() < deadline, "the archiver did not archive the task"
        time.sleep(0.1)
    return month


def _notifications(platform: Platform, owner: httpx.Client) -> list[str]:
    """Notifications in the owner's inbox: decisions on three of their tasks, as the
    notifications consumer makes them from the approver's decisions."""
    tasks = [_create(owner, priority="high") for _ in range(3)]
    headers = {"Authorization": f"Bearer {platform.token(APPROVER, APPROVERS)}"}
    with httpx.Client(base_url=platform.url, headers=headers, timeout=30, trust_env=False) as bob:
        for task in tasks:
            decided = bob.post(f"/tasks/{task['id']}/approval", json={"decision": "reject"})
            assert decided.status_code == 200, decided.text
    wanted = {t["id"] for t in tasks}
    deadline = time.monotonic() + 30
    while True:
        items = owner.get("/notifications", params={"limit": "100"}).json()["items"]
        found = [n["id"] for n in items if n["taskId"] in wanted]
        if len(found) == len(wanted):
            return found
        assert time.monotonic() < deadline, "the notifications consumer made no notification"
        time.sleep(0.1)


def _make_pool(
    platform: Platform, operation: schemathesis.APIOperation[Any, Any, Any, Any]
) -> list[dict[str, str]]:
    """Tasks (and attachments) for `operation`, in the states it acts on."""
    headers = {"Authorization": f"Bearer {platform.token(OWNER)}"}
    with httpx.Client(base_url=platform.url, headers=headers, timeout=30, trust_env=False) as owner:
        if "month" in {p.name for p in operation.path_parameters}:
            return [{"month": _archived_month(platform, owner)}]
        if "notificationId" in {p.name for p in operation.path_parameters}:
            return [{"notificationId": n} for n in _notifications(platform, owner)]
        if APPROVALS_TAG in (operation.tags or []):
            # Awaiting approval: decided once (200), then 404; plus one of the approver's own
            # (403: approvers never decide their own tasks).
            tasks = [_create(owner, priority=p) for p in ("high", "critical") * 4]
            approver_headers = {"Authorization": f"Bearer {platform.token(APPROVER, APPROVERS)}"}
            with httpx.Client(
                base_url=platform.url, headers=approver_headers, timeout=30, trust_env=False
            ) as approver:
                tasks.append(_create(approver, priority="high"))
            return [{"taskId": t["id"]} for t in tasks]
        if "exportId" in {p.name for p in operation.path_parameters}:
            exports = [owner.post("/exports") for _ in range(3)]
            assert all(r.status_code == 202 for r in exports), [r.text for r in exports]
            return [{"exportId": r.json()["id"]} for r in exports]
        if "attachmentId" in {p.name for p in operation.path_parameters}:
            pool = []
            for index in range(4):
                task = _create(owner)
                response = owner.post(
                    f"/tasks/{task['id']}/attachments",
                    json={"filename": f"file{index}.txt", "contentType": "text/plain", "size": 5},
                )
                assert response.status_code == 201, response.text
                pool.append(
                    {"taskId": task["id"], "attachmentId": response.json()["attachment"]["id"]}
                )
            return pool
        # Every lifecycle state an owner's task can be in.
        tasks = [
            _create(owner, priority="low"),
            _create(owner, priority="medium", tags=["fuzz"], dueDate=None),
            _start(owner, _create(owner)),
            _start(owner, _create(owner)),
            _create(owner, priority="high"),  # approval pending: cannot start
        ]
        completed = _start(owner, _create(owner))
        response = owner.post(f"/tasks/{completed['id']}/complete")
        assert response.status_code == 200, response.text
        cancelled = _create(owner)
        response = owner.patch(f"/tasks/{cancelled['id']}", json={"status": "cancelled"})
        assert response.status_code == 200, response.text
        return [{"taskId": t["id"]} for t in [*tasks, completed, cancelled]]


def _use_real_ids(case: schemathesis.Case[Any], platform: Platform) -> None:
    """Swap a real id into most positive cases that have path parameters (deterministically)."""
    real = {"taskId", "exportId", "month", "notificationId"}
    if not case.path_parameters or not real & set(case.path_parameters):
        return
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH):
        return
    # Hash the whole case: the coverage phase varies one part at a time around the same id.
    body = None if isinstance(case.body, NotSet) else case.body
    generated = repr((case.path_parameters, case.query, dict(case.headers or {}), body))
    digest = zlib.crc32(generated.encode("utf-8", "surrogatepass"))
    if digest % REAL_ID_SHARE == 0:
        return  # keep the generated (usually unknown or malformed) id
    label = case.operation.label
    if label not in POOLS:
        POOLS[label] = _make_pool(platform, case.operation)
    pool = POOLS[label]
    case.path_parameters.update(pool[(digest // REAL_ID_SHARE) % len(pool)])


def _rerouted(case: schemathesis.Case[Any]) -> bool:
    """A negative case whose path the gateway routes elsewhere (see `ROUTING_CHARACTERS`)."""
    if case.meta is None or not case.meta.is_negative_at(ParameterLocation.PATH):
        return False
    values = (case.path_parameters or {}).values()
    return any(isinstance(v, str) and ROUTING_CHARACTERS & set(v) for v in values)


def _lost_on_the_way(case: schemathesis.Case[Any], response: Response) -> bool:
    """Whether a query parameter of the case is missing from the request as sent."""
    query = urlsplit(str(response.request.url or "")).query
    sent = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    return any(name not in sent for name in (case.query or {}))


# -- the fuzz test -----------------------------------------------------------------------------


def base_url(case: schemathesis.Case[Any], platform: Platform) -> str:
    """Where an operation is served: a Function URL's own route (the download) on that URL,
    as its path-level servers say; every other operation on the API."""
    key = f"{case.operation.method.upper()} {case.operation.path}"
    for function in FUNCTIONS:
        if function.url is not None and key in {route.key for route in function.url.routes}:
            return platform.urls[function.name]
    return platform.url


@schema.parametrize()
@hypothesis.settings(
    deadline=None,
    derandomize=True,
    database=None,
    # A session-scoped fixture only; the schemas are large by design; some operations have
    # few distinct inputs.
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api(
    case: schemathesis.Case[Any],
    platform: Platform,
    session: requests.Session,
    tokens: dict[str, str],
) -> None:
    user = APPROVER if APPROVALS_TAG in (case.operation.tags or []) else OWNER
    _use_real_ids(case, platform)
    headers = {"Authorization": f"Bearer {tokens[user]}"}
    url = base_url(case, platform)
    response = case.call(base_url=url, session=session, headers=headers, timeout=30)
    count(response)
    label = case.operation.label
    SENT[label] += 1
    mode = case.meta.generation.mode if case.meta is not None else GenerationMode.POSITIVE
    MODES[mode.value] += 1
    STATUSES[label, response.status_code] += 1
    if mode.is_positive and response.status_code == 401:
        POSITIVE_401[label] += 1
    checks = list(CHECKS)
    if _rerouted(case):
        REROUTED[label] += 1
        checks = list(REROUTED_CHECKS)
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
    elif mode.is_negative and _lost_on_the_way(case, response):
        LOST[label] += 1
        checks.remove(negative_data_rejection)
    case.validate_response(
        response,
        checks=checks,
        headers=headers,
        transport_kwargs={"base_url": url, "session": session, "headers": headers},
    )


# Ids with `%`, `/` or `?` in them, which the document excludes (`pattern: ^[^/?%]+$`): the
# gateway percent-decodes the path twice and cuts it at a decoded `?`, as HTTP APIs do, so
# they never reach the handler as sent. What matters is that they are refused (4xx, never a
# 5xx) and reach no task. Given as they go on the wire: the ids `50%`, `a/b` and `a?b`.
AWKWARD_IDS = ["50%25", "a%2Fb", "a%3Fb"]


@pytest.mark.parametrize("task_id", AWKWARD_IDS)
@pytest.mark.parametrize("route", ["GET /tasks/{taskId}", "POST /tasks/{taskId}/complete"])
def test_awkward_task_ids(
    platform: Platform,
    session: requests.Session,
    tokens: dict[str, str],
    route: str,
    task_id: str,
) -> None:
    method, path = route.split(" ")
    case = schema[path][method].Case(path_parameters={"taskId": task_id})
    headers = {"Authorization": f"Bearer {tokens[OWNER]}"}
    response = case.call(base_url=platform.url, session=session, headers=headers, timeout=30)
    count(response)
    assert response.status_code in (400, 404, 405), (task_id, response.text)


def test_zz_fuzzing_volume() -> None:
    """Runs after `test_api`: enough requests, both modes, real answers rather than 401s."""
    operations = {op.ok().label for op in schema.get_all_operations() if isinstance(op, Ok)}
    # (tests/e2e/conftest.py deselects this check when test_api is deselected.)
    assert set(SENT) == operations, f"never fuzzed: {sorted(operations - set(SENT))}"
    total = sum(SENT.values())
    rerouted = sum(REROUTED.values())
    lost = sum(LOST.values())
    summary = f"{total} requests ({rerouted} rerouted by the gateway, {lost} negative cases "
    summary += f"that lost a query parameter on the way); {dict(MODES)}; "
    summary += str(dict(sorted(STATUSES.items())))
    print(summary)
    assert total >= MIN_REQUESTS, summary
    assert MODES[GenerationMode.POSITIVE.value] > 0, summary
    assert MODES[GenerationMode.NEGATIVE.value] > 0, summary
    # Valid cases carry a valid token. Negative cases may leave the Authorization header out
    # (for an operation without parameters, such as GET /stats, that is the only way to make
    # one), and the gateway's authorizer answers those; they must stay a minority.
    assert not POSITIVE_401, f"positive cases refused by the authorizer: {dict(POSITIVE_401)}"
    unauthorized = sum(n for (_, status), n in STATUSES.items() if status == 401)
    assert unauthorized < total * 0.25, summary
    succeeded = {label for (label, status) in STATUSES if 200 <= status < 300}
    assert succeeded == operations, f"no 2xx for {sorted(operations - succeeded)}"
