"""openapi.yaml against the manifest and the handlers.

The document must be valid OpenAPI 3.1, list exactly the manifest's routes (the API function's,
on the API's servers, and each Function URL route, on that URL's servers only), and describe
what the handlers really do: every response of a broad scenario (each operation, its success
and its error statuses) is validated against the schema the document gives for that operation,
status and media type, and request bodies and parameters are checked against the documented
request schemas in both directions (what the handler accepts conforms; what the schema rejects,
the handler rejects too). The API's operations are driven through its Lambda handler; the
download's through its ASGI app over HTTP, as the Lambda Web Adapter reaches it, every NDJSON
line checked against the schema the document names for it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import attrs
import httpx
import pytest
import uvicorn
import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from handlers import bootstrap, http_api, settings
from handlers.auth import StaticKeys, Verifier
from handlers.download import Download
from local_platform.__main__ import arguments, url_ports
from local_platform.auth import DevIssuer
from local_platform.dynamodb_local import free_port
from local_platform.function_urls import url_functions
from local_platform.gateway.payload import http_event
from local_platform.lambda_runtime import handler_context
from stack.config import StackConfig
from stack.manifest import API, DOWNLOAD_PATH, FUNCTIONS, Function, Route
from taskcore import services
from taskcore.errors import Unavailable
from taskcore.model import ExportId, UserId
from taskcore.ports import StoredPage
from taskcore.testing import (
    Fakes,
    InMemoryArchiveStore,
    InMemoryExportRepository,
    InMemoryInbox,
    InMemoryObjectSink,
    InMemoryStatsStore,
    InMemoryTaskRepository,
    in_memory_service,
)
from tests.e2e.tokens import unauthorized_headers_for

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
SPEC_URI = "urn:tasks:openapi"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
PROBLEM_MEDIA = "application/problem+json"
NDJSON_MEDIA = "application/x-ndjson"
ITEM_SCHEMA = "x-itemSchema"
"""Where the document names the schema of each item of a sequential media type (NDJSON):
OpenAPI 3.1 has no keyword for it (3.2's is `itemSchema`)."""

TASK = "/tasks/{taskId}"
COMPLETE = "/tasks/{taskId}/complete"
ATTACHMENTS = "/tasks/{taskId}/attachments"
ATTACHMENT = "/tasks/{taskId}/attachments/{attachmentId}"
APPROVAL = "/tasks/{taskId}/approval"
EXPORT = "/exports/{exportId}"
NOTE_READ = "/notifications/{notificationId}/read"
ARCHIVE_MONTH = "/archive/{month}"
JSON_CT = {"content-type": "application/json"}
APPROVER: dict[str, Any] = {"user": "bob", "groups": ("approvers", "staff")}
UNKNOWN_ID = "01JD00000000000000000000AB"  # a well-formed ULID no task has
TOO_BIG = "x" * (settings.DEFAULT_MAX_BODY_BYTES + 1)


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def pointer(*segments: str) -> str:
    return "".join("/" + _escape(s) for s in segments)


Response = tuple[int, dict[str, str], Any]


@attrs.frozen
class Spec:
    """The document, with $ref-following lookups and JSON Schema validation against it."""

    document: dict[str, Any]
    registry: Registry[Any]

    @classmethod
    def load(cls) -> Spec:
        document = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        return cls(document, Registry().with_resource(SPEC_URI, resource))

    def at(self, where: str) -> Any:
        node: Any = self.document
        for raw in where.split("/")[1:]:
            segment = raw.replace("~1", "/").replace("~0", "~")
            node = node[int(segment)] if isinstance(node, list) else node[segment]
        return node

    def follow(self, where: str) -> tuple[Any, str]:
        """The node at `where`, following (non-schema) `$ref`s; and where it really is."""
        node = self.at(where)
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), f"only local references are expected: {ref}"
            where = ref[1:]
            node = self.at(where)
        return node, where

    def schema_errors(self, where: str, instance: Any) -> list[str]:
        """Why `instance` does not conform to the schema at `where` (empty: it conforms)."""
        validator = Draft202012Validator(
            {"$ref": f"{SPEC_URI}#{quote(where, safe='/~')}"},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(instance)
        ]

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, item in self.document["paths"].items():
            for method in HTTP_METHODS:
                if method in item:
                    yield method.upper(), path, item[method]

    def operation_pointer(self, method: str, template: str) -> str:
        where = pointer("paths", template, method.lower())
        item = self.document["paths"].get(template, {})
        assert method.lower() in item, f"{method} {template} is not documented"
        return where

    def parameters(self, method: str, template: str) -> dict[tuple[str, str], str]:
        """(in, lower-case name) -> pointer of each parameter of the operation."""
        found: dict[tuple[str, str], str] = {}
        for base in (pointer("paths", template), self.operation_pointer(method, template)):
            for index, _ in enumerate(self.at(base).get("parameters", [])):
                parameter, where = self.follow(f"{base}/parameters/{index}")
                found[(parameter["in"], parameter["name"].lower())] = where
        return found

    def check_response(
        self, where: str, status: int, headers: Mapping[str, str], body: Any
    ) -> None:
        """Fail unless headers and body conform to the response object at `where`."""
        response, where = self.follow(where)
        for name in response.get("headers", {}):
            header, header_at = self.follow(f"{where}/headers/{_escape(name)}")
            value = headers.get(name.lower())
            if value is None:
                assert not header.get("required"), f"{status}: missing header {name}"
                continue
            errors = self.schema_errors(f"{header_at}/schema", value)
            assert not errors, f"{status}: header {name}={value!r}: {errors}"
        content = response.get("content")
        if not content:
            assert body is None, f"{status}: a body where the document says there is none"
            return
        media = headers.get("content-type", "").split(";")[0].strip()
        assert media in content, f"{status}: {media!r} is not documented ({sorted(content)})"
        at = f"{where}/content/{_escape(media)}"
        if ITEM_SCHEMA in content[media]:  # a sequence (NDJSON): `body` is its items
            assert "schema" not in content[media], f"{status} {media}: schema and items"
            assert isinstance(body, list), f"{status} {media}: expected items, got {body!r}"
            for index, item in enumerate(body):
                errors = self.schema_errors(f"{at}/{ITEM_SCHEMA}", item)
                assert not errors, f"{status} {media} item {index} does not conform: {errors}"
            return
        errors = self.schema_errors(f"{at}/schema", body)
        assert not errors, f"{status} {media} does not conform: {errors}\n{body}"

    def request_errors(
        self,
        method: str,
        template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Why a request does not conform to the document (empty: it conforms)."""
        errors: list[str] = []
        parameters = self.parameters(method, template)
        given = [
            *(("path", k, v) for k, v in (path_params or {}).items()),
            *(("query", k, v) for k, v in (query or {}).items()),
        ]
        for location, name, value in given:
            where = parameters.get((location, name.lower()))
            if where is None:
                errors.append(f"{location} parameter {name} is not documented")
                continue
            schema, _ = self.follow(f"{where}/schema")
            typed: Any = value
            if schema.get("type") == "integer" and re.fullmatch(r"-?[0-9]+", value):
                typed = int(value)
            errors += [f"{name}: {e}" for e in self.schema_errors(f"{where}/schema", typed)]
        for name, value in (headers or {}).items():
            where = parameters.get(("header", name.lower()))
            if where is not None:
                errors += [f"{name}: {e}" for e in self.schema_errors(f"{where}/schema", value)]
        operation = self.operation_pointer(method, template)
        if "requestBody" not in self.at(operation):
            if body is not None:
                errors.append("the operation documents no request body")
            return errors
        request_body, where = self.follow(f"{operation}/requestBody")
        if body is None:
            if request_body.get("required"):
                errors.append("the request body is required")
            return errors
        errors += self.schema_errors(f"{where}/content/application~1json/schema", body)
        return errors


SPEC = Spec.load()

# -- where each route is served ------------------------------------------------------------------

LAMBDA_URL = "https://{urlId}.lambda-url.{region}.on.aws"
API_GATEWAY = "https://{apiId}.execute-api.{region}.amazonaws.com"
LOCAL = arguments([])  # the local platform's defaults (`make dev`)
URL_PORTS = url_ports(
    LOCAL.url_port_base, url_functions(FUNCTIONS, StackConfig.from_stack_file(LOCAL.stack))
)


def url_routes() -> dict[str, Function]:
    """Each route a Function URL serves beside the API's (`FunctionUrl.routes`), by route key,
    with its function: documented on that URL's servers only."""
    return {route.key: f for f in FUNCTIONS if f.url is not None for route in f.url.routes}


def manifest_routes() -> dict[str, Route]:
    """Every route the document must list: the API function's and the Function URLs'."""
    routes = {route.key: route for route in API.routes}
    for function in FUNCTIONS:
        routes |= {route.key: route for route in (function.url.routes if function.url else ())}
    return routes


def url_servers(function: Function) -> list[str]:
    """A function's Function URL: the local platform's port for it, and Lambda's host."""
    return [f"http://127.0.0.1:{URL_PORTS[function.name]}", LAMBDA_URL]


def operation_ids(*, on_url: bool) -> set[str]:
    """The API's operations (on_url=False), or those of the Function URL routes."""
    routes = url_routes()
    return {
        operation["operationId"]
        for method, path, operation in SPEC.operations()
        if (f"{method} {path}" in routes) == on_url
    }


@attrs.define
class Api:
    """Calls the handler like API Gateway would, and checks every exchange against SPEC."""

    invoke: Callable[[dict[str, Any]], dict[str, Any]]
    seen: set[tuple[str, int]] = attrs.field(factory=set)

    def __call__(
        self,
        method: str,
        template: str,
        path_params: Mapping[str, str] | None = None,
        *,
        expect: int,
        **kwargs: Any,
    ) -> Response:
        path = template.format(**(path_params or {}))
        status, headers, body = self._send(method, path, kwargs)
        operation = SPEC.operation_pointer(method, template)
        responses = SPEC.at(f"{operation}/responses")
        assert str(status) in responses, (
            f"{method} {template} answered {status}, which is not documented: {body}"
        )
        SPEC.check_response(f"{operation}/responses/{status}", status, headers, body)
        self.seen.add((SPEC.at(operation)["operationId"], status))
        assert status == expect, f"{method} {path}: expected {expect}, got {status}: {body}"
        if 200 <= status < 300:
            # What the handler accepted must be a request the document allows.
            body_sent = kwargs.get("body")
            if body_sent is None and kwargs.get("raw_body"):
                body_sent = json.loads(kwargs["raw_body"])
            errors = SPEC.request_errors(
                method,
                template,
                path_params=path_params,
                body=body_sent,
                query=kwargs.get("query"),
                headers=kwargs.get("headers"),
            )
            assert not errors, f"{method} {template}: accepted but undocumented: {errors}"
        return status, headers, body

    def unrouted(self, method: str, path: str, *, expect: int, **kwargs: Any) -> Response:
        """A method and path the document does not list: the NoRoute / MethodNotAllowed shapes."""
        assert all((method, path) != (m, p) for m, p, _ in SPEC.operations())
        status, headers, body = self._send(method, path, {"route_key": "$default", **kwargs})
        assert status == expect, f"{method} {path}: expected {expect}, got {status}: {body}"
        name = {404: "NoRoute", 405: "MethodNotAllowed"}[status]
        SPEC.check_response(pointer("components", "responses", name), status, headers, body)
        return status, headers, body

    def _send(self, method: str, path: str, kwargs: dict[str, Any]) -> Response:
        response = self.invoke(http_event(method, path, **kwargs))
        text = response.get("body") or ""
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        return response["statusCode"], headers, json.loads(text) if text else None


@pytest.fixture
def fakes() -> Fakes:
    return in_memory_service()


@pytest.fixture
def containers(fakes: Fakes) -> list[bootstrap.Container]:
    """The handler's container (the last one; a test may push one with other adapters).

    The body limit is the production default, so the largest documented bodies fit.
    """
    return [
        bootstrap.Container(
            service=fakes.service,
            clock=fakes.clock,
            exports=fakes.export_service,
            notifications=fakes.notifications,
            archive=fakes.archive_service,
        )
    ]


@pytest.fixture
def api(containers: list[bootstrap.Container], monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.setattr(http_api, "app", http_api.create_app(lambda: containers[-1]))
    return Api(lambda event: http_api.handler(event, handler_context(API)))


def push_adapters(
    containers: list[bootstrap.Container],
    tasks: Any,
    stats: Any | None = None,
    exports: Any | None = None,
    *,
    inbox: Any | None = None,
    archive: Any | None = None,
) -> None:
    container = containers[-1]
    service = attrs.evolve(container.service, tasks=tasks, stats=stats or container.service.stats)
    assert container.exports is not None
    assert container.notifications is not None
    assert container.archive is not None
    export_service = attrs.evolve(
        container.exports, tasks=tasks, exports=exports or container.exports.exports
    )
    notifications = attrs.evolve(
        container.notifications, inbox=inbox or container.notifications.inbox
    )
    archive_service = attrs.evolve(container.archive, store=archive or container.archive.store)
    containers.append(
        attrs.evolve(
            container,
            service=service,
            exports=export_service,
            notifications=notifications,
            archive=archive_service,
        )
    )


def _failing(error: Callable[[], Exception]) -> tuple[type, type, type, type, type]:
    """A task repository, a stats store, an export repository, an inbox and an archive store
    whose every storage call raises `error()`."""

    def fail(*_: Any, **__: Any) -> Any:
        raise error()

    storage = ("get", "add", "save", "delete", "list_owned")
    queue = ("list_awaiting_approval", "get_awaiting_approval")
    tasks = type("FailingTasks", (InMemoryTaskRepository,), dict.fromkeys(storage + queue, fail))
    stats = type("FailingStats", (InMemoryStatsStore,), dict.fromkeys(("get", "apply"), fail))
    exports = type(
        "FailingExports", (InMemoryExportRepository,), dict.fromkeys(("get", "add", "save"), fail)
    )
    inbox = type(
        "FailingInbox",
        (InMemoryInbox,),
        dict.fromkeys(("add", "get", "list", "mark_read", "mark_sent"), fail),
    )
    archive = type(
        "FailingArchive",
        (InMemoryArchiveStore,),
        dict.fromkeys(("read", "write", "list_keys", "presign_download"), fail),
    )
    return tasks, stats, exports, inbox, archive


def create(api: Api, user: str = "alice", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = api(
        "POST", "/tasks", user=user, body={"title": "A task", **fields}, expect=201
    )[2]
    return body


# -- the scenario ------------------------------------------------------------------------------


def exercise_tasks(api: Api, fakes: Fakes) -> None:
    body = {
        "title": "Write the report",
        "description": "first line\nsecond line\twith a tab",
        "priority": "low",
        "tags": ["finance", "q3"],
        "dueDate": "2030-01-31",
    }
    key = {"Idempotency-Key": "create-1"}
    _, _, task = api("POST", "/tasks", body=body, headers=key, expect=201)
    fakes.clock.advance(timedelta(minutes=1))
    api("POST", "/tasks", body=body, headers=key, expect=200)
    api("POST", "/tasks", body={"title": "Else"}, headers=key, expect=422)
    api("POST", "/tasks", body={"title": "x"}, headers={"Idempotency-Key": "a b"}, expect=400)
    api("POST", "/tasks", body={"title": "", "priority": "urgent", "tags": [1]}, expect=422)
    api("POST", "/tasks", body=["not", "an", "object"], expect=422)
    api(
        "POST",
        "/tasks",
        raw_body='{"title": "x"}',
        headers={"content-type": "text/plain"},
        expect=415,
    )
    api("POST", "/tasks", expect=400)
    api("POST", "/tasks", raw_body="{not json", headers=JSON_CT, expect=400)
    api("POST", "/tasks", raw_body=TOO_BIG, headers=JSON_CT, expect=413)
    api("POST", "/tasks", body={"title": "x"}, user=None, expect=401)
    api(
        "POST",
        "/tasks",
        raw_body=json.dumps({"title": "b64"}).encode(),
        headers=JSON_CT,
        expect=201,
    )

    ids = {"taskId": task["id"]}
    for n in range(3):
        create(api, title=f"t{n}", priority="medium")
    _, _, page = api("GET", "/tasks", query={"limit": "2", "priority": "medium"}, expect=200)
    assert page["nextCursor"]
    last = {"limit": "2", "priority": "medium", "cursor": page["nextCursor"]}
    api("GET", "/tasks", query=last, expect=200)
    api("GET", "/tasks", query={"status": "pending", "limit": "100"}, expect=200)
    api("GET", "/tasks", expect=200)
    api("GET", "/tasks", query={"limit": "101"}, expect=400)
    api("GET", "/tasks", query={"cursor": "forged.cursor"}, expect=400)
    api("GET", "/tasks", query={"sort": "asc"}, expect=400)

    api("GET", TASK, ids, expect=200)
    api("GET", TASK, {"taskId": UNKNOWN_ID}, expect=404)
    api("GET", TASK, {"taskId": "not-a-ulid"}, expect=404)
    api("GET", TASK, ids, user="mallory", expect=404)

    _, headers, task = api(
        "PATCH", TASK, ids, body={"title": "v2"}, headers={"If-Match": '"1"'}, expect=200
    )
    api("PUT", TASK, ids, body={"title": "v3"}, headers={"If-Match": '"1"'}, expect=412)
    api("PATCH", TASK, ids, body={"title": "v3"}, headers={"If-Match": "garbage"}, expect=412)
    api(
        "PUT",
        TASK,
        ids,
        body={"description": ""},
        headers={"If-Match": headers["etag"]},
        expect=200,
    )
    api("PATCH", TASK, ids, body={"tags": []}, headers={"If-Match": "*"}, expect=200)
    api("PATCH", TASK, ids, body={"status": "completed"}, expect=409)
    api("PUT", TASK, ids, body={"status": "completed"}, expect=409)
    api("PATCH", TASK, ids, body={}, expect=422)
    api("PUT", TASK, ids, body={"ownerId": "mallory"}, expect=422)
    api("PATCH", TASK, ids, body={"dueDate": "2020-01-01"}, expect=422)
    api("PUT", TASK, ids, raw_body="{", headers=JSON_CT, expect=400)
    api(
        "PATCH",
        TASK,
        ids,
        raw_body='{"title": "x"}',
        headers={"content-type": "text/csv"},
        expect=415,
    )
    api(
        "PUT",
        TASK,
        ids,
        raw_body='{"title": "x"}',
        headers={"content-type": "text/csv"},
        expect=415,
    )
    api("PATCH", TASK, ids, raw_body="{", headers=JSON_CT, expect=400)
    api("PATCH", TASK, ids, raw_body=TOO_BIG, headers=JSON_CT, expect=413)
    api("PUT", TASK, ids, raw_body=TOO_BIG, headers=JSON_CT, expect=413)
    api("PATCH", TASK, {"taskId": UNKNOWN_ID}, body={"title": "x"}, expect=404)
    api("PUT", TASK, ids, user="mallory", body={"title": "x"}, expect=404)

    api("POST", COMPLETE, ids, expect=409)  # still pending
    api("PATCH", TASK, ids, body={"status": "in_progress", "dueDate": None}, expect=200)
    api("POST", COMPLETE, ids, headers={"If-Match": '"1"'}, expect=412)
    api("POST", COMPLETE, ids, expect=200)
    api("POST", COMPLETE, ids, body={}, expect=200)  # already completed: unchanged
    api("POST", COMPLETE, ids, body={"force": True}, expect=422)
    api("POST", COMPLETE, ids, raw_body="[", headers=JSON_CT, expect=400)
    api("POST", COMPLETE, ids, raw_body="{}", headers={"content-type": "text/plain"}, expect=415)
    api("POST", COMPLETE, ids, raw_body=TOO_BIG, headers=JSON_CT, expect=413)
    api("POST", COMPLETE, {"taskId": UNKNOWN_ID}, expect=404)
    api("PATCH", TASK, ids, body={"status": "in_progress"}, expect=200)  # reopen

    doomed = create(api, title="doomed")
    gone = {"taskId": doomed["id"]}
    api("DELETE", TASK, gone, headers={"If-Match": '"2"'}, expect=412)
    api("DELETE", TASK, gone, headers={"If-Match": '"1"'}, expect=204)
    api("DELETE", TASK, gone, expect=404)
    api("GET", TASK, gone, expect=404)
    api("DELETE", TASK, {"taskId": "nope"}, expect=404)
    api("PATCH", TASK, gone, body={"title": "x"}, expect=404)


def exercise_attachments(api: Api, fakes: Fakes) -> None:
    task = create(api)
    ids = {"taskId": task["id"]}
    request = {"filename": "notes.txt", "contentType": "Text/Plain", "size": 5}
    _, headers, created = api("POST", ATTACHMENTS, ids, body=request, expect=201)
    attachment = {**ids, "attachmentId": created["attachment"]["id"]}
    assert headers["location"] == ATTACHMENT.format(**attachment)
    fakes.attachments.upload(created["upload"]["fields"]["key"], "text/plain", b"hello")
    api("GET", ATTACHMENT, attachment, expect=200)
    api("GET", ATTACHMENT, {**ids, "attachmentId": UNKNOWN_ID}, expect=404)
    api("GET", ATTACHMENT, {**ids, "attachmentId": "not-an-id"}, expect=404)
    api("GET", ATTACHMENT, attachment, user="mallory", expect=404)

    bad = {"filename": "../../etc/passwd", "contentType": "text plain", "size": 0, "x": 1}
    api("POST", ATTACHMENTS, ids, body=bad, expect=422)
    api("POST", ATTACHMENTS, ids, body={"filename": "a.txt"}, expect=422)
    api("POST", ATTACHMENTS, ids, expect=400)
    api("POST", ATTACHMENTS, ids, raw_body="{}", headers={"content-type": "text/plain"}, expect=415)
    api("POST", ATTACHMENTS, ids, raw_body=TOO_BIG, headers=JSON_CT, expect=413)
    api("POST", ATTACHMENTS, ids, body=request, user="mallory", expect=404)
    api("POST", ATTACHMENTS, {"taskId": "nope"}, body=request, expect=404)

    cancelled = create(api, title="to cancel")
    gone = {"taskId": cancelled["id"]}
    api("PATCH", TASK, gone, body={"status": "cancelled"}, expect=200)
    api("POST", ATTACHMENTS, gone, body=request, expect=409)
    api("PATCH", TASK, gone, body={"title": "edit"}, expect=409)

    full = create(api, title="full")
    many = {"taskId": full["id"]}
    for n in range(20):
        api("POST", ATTACHMENTS, many, body={**request, "filename": f"{n}.txt"}, expect=201)
    api("POST", ATTACHMENTS, many, body=request, expect=422)
    api("GET", TASK, many, expect=200)  # a task with 20 attachments conforms


def exercise_approvals(api: Api) -> None:
    critical = create(api, priority="critical", title="Buy a server")
    ids = {"taskId": critical["id"]}
    assert critical["approval"] == "pending"
    api("PATCH", TASK, ids, body={"status": "in_progress"}, expect=409)
    _, _, queue = api("GET", "/approvals", query={"limit": "10"}, **APPROVER, expect=200)
    assert ids["taskId"] in {t["id"] for t in queue["items"]}
    api("GET", "/approvals", **APPROVER, expect=200)
    api("GET", "/approvals", expect=403)
    api("GET", "/approvals", query={"limit": "0"}, **APPROVER, expect=400)
    api("GET", "/approvals", query={"status": "pending"}, **APPROVER, expect=400)
    api("GET", "/approvals", query={"cursor": "forged.cursor"}, **APPROVER, expect=400)

    approve = {"decision": "approve"}
    api("POST", APPROVAL, ids, body=approve, expect=403)  # alice is no approver
    own = create(api, user="bob", priority="high", title="Bob's own")
    api("POST", APPROVAL, {"taskId": own["id"]}, body=approve, **APPROVER, expect=403)
    api("POST", APPROVAL, ids, body={"decision": "maybe"}, **APPROVER, expect=422)
    api("POST", APPROVAL, ids, body={"decision": "approve", "note": "ok"}, **APPROVER, expect=422)
    api("POST", APPROVAL, ids, **APPROVER, expect=400)
    api("POST", APPROVAL, ids, raw_body="{", headers=JSON_CT, **APPROVER, expect=400)
    api(
        "POST",
        APPROVAL,
        ids,
        raw_body="{}",
        headers={"content-type": "text/xml"},
        **APPROVER,
        expect=415,
    )
    api("POST", APPROVAL, ids, raw_body=TOO_BIG, headers=JSON_CT, **APPROVER, expect=413)
    api("POST", APPROVAL, {"taskId": UNKNOWN_ID}, body=approve, **APPROVER, expect=404)
    api("POST", APPROVAL, {"taskId": "nope"}, body=approve, **APPROVER, expect=404)
    _, _, decided = api("POST", APPROVAL, ids, body=approve, **APPROVER, expect=200)
    assert (decided["approval"], decided["approvalDecidedBy"]) == ("approved", "bob")
    api("POST", APPROVAL, ids, body={"decision": "reject"}, **APPROVER, expect=404)
    api("PATCH", TASK, ids, body={"status": "in_progress"}, expect=200)

    rejected = create(api, priority="high", title="Rejected")
    _, _, task = api(
        "POST",
        APPROVAL,
        {"taskId": rejected["id"]},
        body={"decision": "reject"},
        **APPROVER,
        expect=200,
    )
    assert (task["status"], task["approval"]) == ("cancelled", "rejected")


def exercise_meta(api: Api, fakes: Fakes) -> None:
    api("GET", "/health", user=None, expect=200)
    api("GET", "/stats", user="newcomer", expect=200)  # no stats yet: nulls and zeros
    task = create(api, title="timed")
    fakes.clock.advance(timedelta(hours=2))
    api("PATCH", TASK, {"taskId": task["id"]}, body={"status": "in_progress"}, expect=200)
    api("POST", COMPLETE, {"taskId": task["id"]}, expect=200)
    for event in fakes.tasks.events():
        services.record_stats(fakes.stats, event)
    _, _, stats = api("GET", "/stats", expect=200)
    assert stats["completedThisWeek"] >= 1
    assert stats["medianCompletionSeconds"] is not None


class _UnavailableSink(InMemoryObjectSink):
    def upload_part(self, *_: Any, **__: Any) -> Any:
        raise Unavailable("the object store is down")


def exercise_exports(api: Api, fakes: Fakes) -> None:
    create(api, title="to export")
    create(api, title="also to export", priority="critical")
    _, headers, requested = api("POST", "/exports", expect=202)
    ids = {"exportId": requested["id"]}
    assert headers["location"] == EXPORT.format(**ids)
    assert requested["status"] == "requested"
    api("POST", "/exports", body={}, expect=202)
    api("POST", "/exports", body={"status": "pending"}, expect=422)
    api("POST", "/exports", raw_body="[", headers=JSON_CT, expect=400)
    api("POST", "/exports", raw_body="{}", headers={"content-type": "text/plain"}, expect=415)
    api("POST", "/exports", raw_body=TOO_BIG, headers=JSON_CT, expect=413)
    api("POST", "/exports", user=None, expect=401)
    api("GET", EXPORT, ids, user=None, expect=401)

    _, _, shown = api("GET", EXPORT, ids, expect=200)
    assert shown == requested
    api("GET", EXPORT, ids, user="mallory", expect=404)
    api("GET", EXPORT, {"exportId": UNKNOWN_ID}, expect=404)
    api("GET", EXPORT, {"exportId": "not-an-id"}, expect=404)

    # Running, as a worker leaves it between progress writes.
    export = fakes.exports.get(UserId("alice"), ExportId(ids["exportId"]))
    assert export is not None
    running = export.start(fakes.clock.now(), "upload-x")
    fakes.exports.save(running, expected_version=export.version)
    _, _, shown = api("GET", EXPORT, ids, expect=200)
    assert (shown["status"], shown["download"]) == ("running", None)
    fakes.exports.save(export, expected_version=running.version)  # back to requested

    fakes.export_service.run_export(export.owner_id, export.id)
    _, headers, done = api("GET", EXPORT, ids, expect=200)
    owned = [key for key in fakes.tasks.tasks if key[0] == "alice"]
    assert (done["status"], done["itemsWritten"]) == ("completed", len(owned))
    assert done["download"]["url"]
    assert headers["cache-control"] == "no-store"

    _, _, doomed = api("POST", "/exports", expect=202)
    broken = attrs.evolve(fakes.export_service, objects=_UnavailableSink())
    with pytest.raises(Unavailable):
        broken.run_export(export.owner_id, ExportId(doomed["id"]))
    _, _, failed = api("GET", EXPORT, {"exportId": doomed["id"]}, expect=200)
    assert (failed["status"], failed["error"]) == ("failed", "storage was unavailable")


def exercise_notifications(api: Api, fakes: Fakes) -> None:
    task = create(api, priority="high", title="Needs a yes")
    fakes.deliver(*fakes.tasks.events())
    _, headers, page = api(
        "GET", "/notifications", query={"inbox": "approvers"}, **APPROVER, expect=200
    )
    assert headers["cache-control"] == "no-store"
    [request] = [n for n in page["items"] if n["taskId"] == task["id"]]
    assert (request["kind"], request["readAt"]) == ("approval_requested", None)
    api("GET", "/notifications", query={"inbox": "approvers"}, expect=403)  # alice: no approver
    api("GET", "/notifications", query={"inbox": "everyone"}, expect=400)
    api("GET", "/notifications", query={"limit": "0"}, expect=400)
    api("GET", "/notifications", query={"status": "unread"}, expect=400)
    api("GET", "/notifications", query={"cursor": "forged.cursor"}, expect=400)

    api(
        "POST",
        APPROVAL,
        {"taskId": task["id"]},
        body={"decision": "approve"},
        **APPROVER,
        expect=200,
    )
    fakes.deliver(*fakes.tasks.events())
    _, _, mine = api("GET", "/notifications", expect=200)
    [decided] = [n for n in mine["items"] if n["taskId"] == task["id"]]
    assert (decided["kind"], decided["outcome"], decided["decidedBy"]) == (
        "approval_decided",
        "approved",
        "bob",
    )
    ids = {"notificationId": decided["id"]}
    api("POST", NOTE_READ, ids, user="mallory", expect=404)
    api("POST", NOTE_READ, ids, **APPROVER, expect=404)  # bob decided it; it is alice's
    api("POST", NOTE_READ, {"notificationId": UNKNOWN_ID}, expect=404)
    api("POST", NOTE_READ, {"notificationId": "not-an-id"}, expect=404)
    api("POST", NOTE_READ, ids, body={"read": True}, expect=422)
    api("POST", NOTE_READ, ids, raw_body="[", headers=JSON_CT, expect=400)
    api("POST", NOTE_READ, ids, raw_body="{}", headers={"content-type": "text/plain"}, expect=415)
    api("POST", NOTE_READ, ids, raw_body=TOO_BIG, headers=JSON_CT, expect=413)
    _, _, read = api("POST", NOTE_READ, ids, expect=200)
    assert read["readAt"] is not None
    _, _, again = api("POST", NOTE_READ, ids, body={}, expect=200)
    assert again == read
    _, _, request_read = api(
        "POST", NOTE_READ, {"notificationId": request["id"]}, **APPROVER, expect=200
    )
    assert request_read["recipient"] == "group:approvers"


def exercise_archive(api: Api, fakes: Fakes) -> None:
    """Completed tasks made through the API, archived as the archiver does when the table's TTL
    removes them: every line of a month's file is the task `GET /tasks/{taskId}` last showed."""
    _, _, empty = api("GET", "/archive", expect=200)
    assert empty == {"items": []}
    shown = []
    for title in ("first", "second"):
        task = create(api, title=title)
        api("PATCH", TASK, {"taskId": task["id"]}, body={"status": "in_progress"}, expect=200)
        shown.append(api("POST", COMPLETE, {"taskId": task["id"]}, expect=200)[2])
    for body in shown:
        stored = fakes.tasks.get(UserId("alice"), body["id"])
        assert stored is not None
        fakes.archive_service.archive(stored)
    _, headers, months = api("GET", "/archive", expect=200)
    assert months == {"items": [{"month": "2030-01"}]}
    assert headers["cache-control"] == "no-store"
    _, headers, month = api("GET", ARCHIVE_MONTH, {"month": "2030-01"}, expect=200)
    assert (month["month"], headers["cache-control"]) == ("2030-01", "no-store")
    lines = fakes.archive.objects["archive/alice/2030-01.ndjson"].decode().splitlines()
    assert [json.loads(line) for line in lines] == shown
    api("GET", ARCHIVE_MONTH, {"month": "2029-12"}, expect=404)
    for malformed in ("2030-13", "2030-1", "January", "2030-01-01"):
        _, _, problem = api("GET", ARCHIVE_MONTH, {"month": malformed}, expect=400)
        assert problem["errors"] == [
            {"field": "month", "message": "must be a month, YYYY-MM (e.g. 2026-11)"}
        ]
    # Nobody else sees the caller's archive, nor its months.
    assert api("GET", "/archive", user="mallory", expect=200)[2] == {"items": []}
    api("GET", ARCHIVE_MONTH, {"month": "2030-01"}, user="mallory", expect=404)


def exercise_routing(api: Api) -> None:
    api.unrouted("GET", "/nope", expect=404)
    api.unrouted("GET", "/tasks/", expect=404)
    api.unrouted("GET", "/tasks/a/b/c/d", expect=404)
    _, headers, _ = api.unrouted("DELETE", "/tasks", expect=405)
    assert headers["allow"] == "GET, POST"
    _, headers, _ = api.unrouted("GET", f"/tasks/{UNKNOWN_ID}/complete", expect=405)
    assert headers["allow"] == "POST"


# A request for every operation that would succeed if the task existed; failures are injected.
VALID_REQUESTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "getHealth": ("GET", "/health", {}),
    "createTask": ("POST", "/tasks", {"body": {"title": "x"}}),
    "listTasks": ("GET", "/tasks", {}),
    "getTask": ("GET", TASK, {}),
    "putTask": ("PUT", TASK, {"body": {"title": "x"}}),
    "patchTask": ("PATCH", TASK, {"body": {"title": "x"}}),
    "deleteTask": ("DELETE", TASK, {}),
    "completeTask": ("POST", COMPLETE, {}),
    "addAttachment": (
        "POST",
        ATTACHMENTS,
        {"body": {"filename": "a.txt", "contentType": "text/plain", "size": 1}},
    ),
    "getAttachmentDownload": ("GET", ATTACHMENT, {}),
    "listApprovals": ("GET", "/approvals", APPROVER),
    "decideApproval": ("POST", APPROVAL, {"body": {"decision": "approve"}, **APPROVER}),
    "getStats": ("GET", "/stats", {}),
    "createExport": ("POST", "/exports", {}),
    "getExport": ("GET", EXPORT, {}),
    "listNotifications": ("GET", "/notifications", {}),
    "markNotificationRead": ("POST", NOTE_READ, {}),
    "listArchiveMonths": ("GET", "/archive", {}),
    "getArchiveMonth": ("GET", ARCHIVE_MONTH, {}),
}
FAILURE_PARAMS = {
    "taskId": UNKNOWN_ID,
    "attachmentId": UNKNOWN_ID,
    "exportId": UNKNOWN_ID,
    "notificationId": UNKNOWN_ID,
    "month": "2030-01",
}


def exercise_failures(api: Api, containers: list[bootstrap.Container]) -> None:
    """Every operation: no verified subject (401), storage down (503), a bug (500)."""
    for operation, (method, template, kwargs) in VALID_REQUESTS.items():
        if operation != "getHealth":
            api(method, template, FAILURE_PARAMS, **{**kwargs, "user": None}, expect=401)
    for error, status in (
        (lambda: Unavailable("no connection"), 503),
        (lambda: RuntimeError("bug"), 500),
    ):
        tasks, stats, exports, inbox, archive = _failing(error)
        push_adapters(containers, tasks(), stats(), exports(), inbox=inbox(), archive=archive())
        try:
            for operation, (method, template, kwargs) in VALID_REQUESTS.items():
                if operation != "getHealth":
                    _, headers, body = api(
                        method, template, FAILURE_PARAMS, **kwargs, expect=status
                    )
                    assert "bug" not in json.dumps(body)
                    assert status != 503 or headers["retry-after"] == "1"
        finally:
            containers.pop()


# What each operation must be seen answering (the statuses named in the brief of this test).
REQUIRED_STATUSES: dict[str, set[int]] = {
    "getHealth": {200},
    "createTask": {201, 200, 400, 401, 413, 415, 422},
    "listTasks": {200, 400},
    "getTask": {200, 404},
    "putTask": {200, 409, 412, 422},
    "patchTask": {200, 409, 412, 422},
    "deleteTask": {204, 404, 412},
    "completeTask": {200, 409},
    "addAttachment": {201, 422},
    "getAttachmentDownload": {200, 404},
    "listApprovals": {200, 400, 403},
    "decideApproval": {200, 403, 404, 422},
    "getStats": {200},
    "createExport": {202, 400, 401, 413, 415, 422},
    "getExport": {200, 404},
    "listNotifications": {200, 400, 403},
    "markNotificationRead": {200, 404, 413, 415, 422},
    "listArchiveMonths": {200},
    "getArchiveMonth": {200, 400, 404},
}
# Documented statuses the in-memory scenario cannot produce, and why.
NOT_EXERCISED: dict[tuple[str, int], str] = {
    **{(op, 429): "API Gateway stage throttling" for op in VALID_REQUESTS},
    ("getHealth", 500): "the health route has nothing that can fail",
    ("createTask", 409): "a ULID collision on insert",
    ("createExport", 409): "a ULID collision on insert",
    ("deleteTask", 409): "a race between reading and deleting without If-Match",
    ("decideApproval", 409): "a race between two approvers",
    # API Gateway's own 400 for a path that does not decode (tests/e2e/test_schemathesis.py
    # and tests/e2e/test_gateway.py see it from the gateway; the handler never does).
    **{
        (op, 400): "API Gateway path decoding"
        for op in (
            "getTask",
            "deleteTask",
            "getAttachmentDownload",
            "getExport",
            "markNotificationRead",
        )
    },
    ("downloadTasks", 429): "Lambda's throttling in front of the Function URL",
}


def documented_statuses(operations: set[str]) -> dict[str, set[int]]:
    return {
        operation["operationId"]: {int(status) for status in operation["responses"]}
        for _, _, operation in SPEC.operations()
        if operation["operationId"] in operations
    }


# -- the download, on its own Function URL ------------------------------------------------------

DOWNLOAD_KEY = f"GET {DOWNLOAD_PATH}"
# What the download must be seen answering: its stream and each problem before the first byte.
URL_REQUIRED_STATUSES: dict[str, set[int]] = {"downloadTasks": {200, 400, 401, 500, 503}}


@attrs.define
class FlakyTasks(InMemoryTaskRepository):
    """The scenario's tasks (the same dict), whose page reads raise `error()` from the
    `fail_from`-th read on."""

    fail_from: int = 1
    error: Callable[[], Exception] = lambda: Unavailable("the table is throttled")
    reads: int = 0

    def list_owned(self, owner_id: UserId, **kwargs: Any) -> StoredPage:
        self.reads += 1
        if self.reads >= self.fail_from:
            raise self.error()
        return super().list_owned(owner_id, **kwargs)


class UnreachableKeys:
    """An issuer whose JWKS cannot be fetched (as `RemoteKeys` reports it)."""

    def key(self, kid: str) -> Any:
        raise Unavailable("the issuer's keys could not be fetched")


@attrs.define
class DownloadUrl:
    """Calls the download function's app over HTTP, on a real uvicorn on a loopback port (as the
    Lambda Web Adapter reaches it on AWS), and checks every exchange against SPEC: requests for
    its route against its operation, any other against NoRoute / MethodNotAllowed.

    `repositories[-1]` and `verifiers[-1]` are what the app reads per request: a test pushes
    failing ones."""

    base: str
    issuer: DevIssuer
    repositories: list[Any]
    verifiers: list[Any]
    seen: set[tuple[str, int]] = attrs.field(factory=set)

    def __call__(
        self,
        *,
        expect: int,
        query: str = "",
        user: str | None = "alice",
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
    ) -> Response:
        target = DOWNLOAD_PATH + (f"?{query}" if query else "")
        status, response_headers, raw = self._send(method, target, user, headers)
        operation = SPEC.operation_pointer("GET", DOWNLOAD_PATH)  # HEAD: GET without the body
        responses = SPEC.at(f"{operation}/responses")
        assert str(status) in responses, f"{method} {target}: {status} is not documented: {raw!r}"
        body = [] if method == "HEAD" and status == 200 else _parse(response_headers, raw)
        if method == "HEAD":
            assert raw == b"", "HEAD answered a body"
        SPEC.check_response(f"{operation}/responses/{status}", status, response_headers, body)
        self.seen.add((SPEC.at(operation)["operationId"], status))
        assert status == expect, f"{method} {target}: expected {expect}, got {status}: {raw!r}"
        if 200 <= status < 300:
            errors = SPEC.request_errors(
                "GET", DOWNLOAD_PATH, query=dict(parse_qsl(query, keep_blank_values=True))
            )
            assert not errors, f"{target}: accepted but undocumented: {errors}"
        return status, response_headers, body

    def broken(self, *, user: str = "alice") -> tuple[dict[str, str], list[Any]]:
        """A stream that fails after its first byte: a documented `200` whose body ends without
        HTTP's final chunk (httpx reports it), every line received before it a `Task`."""
        received: list[bytes] = []
        headers = {"authorization": f"Bearer {self.issuer.mint(user)}"}
        with httpx.stream("GET", self.base + DOWNLOAD_PATH, headers=headers, timeout=10) as r:
            status, response_headers = r.status_code, {k.lower(): v for k, v in r.headers.items()}
            with pytest.raises(httpx.RemoteProtocolError):
                _keep(r.iter_raw(), received)
        operation = SPEC.operation_pointer("GET", DOWNLOAD_PATH)
        lines = _parse(response_headers, b"".join(received))
        assert lines, "nothing was sent before the failure"
        SPEC.check_response(f"{operation}/responses/{status}", status, response_headers, lines)
        assert status == 200
        self.seen.add((SPEC.at(operation)["operationId"], status))
        return response_headers, lines

    def health(self) -> Response:
        """`GET /health` (the Lambda Web Adapter's readiness check): no token, and the answer
        the document gives for the API's `GET /health`."""
        status, headers, raw = self._send("GET", "/health", None, None)
        body = _parse(headers, raw)
        where = pointer("paths", "/health", "get", "responses", str(status))
        SPEC.check_response(where, status, headers, body)
        assert status == 200
        return status, headers, body

    def unrouted(self, method: str, path: str, *, expect: int) -> Response:
        """Whatever this URL does not serve (the API's routes included: they are on other
        hosts): the NoRoute / MethodNotAllowed shapes."""
        assert f"{method} {path}" not in url_routes()
        status, headers, raw = self._send(method, path, "alice", None)
        assert status == expect, f"{method} {path}: expected {expect}, got {status}: {raw!r}"
        name = {404: "NoRoute", 405: "MethodNotAllowed"}[status]
        body = _parse(headers, raw)
        SPEC.check_response(pointer("components", "responses", name), status, headers, body)
        return status, headers, body

    def _send(
        self, method: str, target: str, user: str | None, headers: Mapping[str, str] | None
    ) -> tuple[int, dict[str, str], bytes]:
        sent = dict(headers or {})
        if user is not None:
            sent["authorization"] = f"Bearer {self.issuer.mint(user)}"
        response = httpx.request(method, self.base + target, headers=sent, timeout=10)
        return (
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )


def _keep(chunks: Iterator[bytes], kept: list[bytes]) -> None:
    """Append each chunk to `kept` as it comes, until the stream ends or breaks."""
    for chunk in chunks:
        kept.append(chunk)


def _parse(headers: Mapping[str, str], raw: bytes) -> Any:
    """The body as the document describes it: NDJSON as its items (each line whole, each
    ending in a newline), JSON as a value, nothing as None."""
    media = headers.get("content-type", "").split(";")[0].strip()
    if media == NDJSON_MEDIA:
        text = raw.decode("utf-8")
        assert text == "" or text.endswith("\n"), f"a line is cut short: {text[-80:]!r}"
        return [json.loads(line) for line in text.split("\n")[:-1]]
    return json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(key_dir=tmp_path_factory.mktemp("issuer"))


@pytest.fixture(scope="module")
def other_issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(key_dir=tmp_path_factory.mktemp("other-issuer"))


@pytest.fixture
def download(fakes: Fakes, issuer: DevIssuer) -> Iterator[DownloadUrl]:
    """The download's app over the scenario's tasks, verifying the issuer's tokens."""
    verifier = Verifier(
        issuer=issuer.issuer, audience=issuer.audience, keys=StaticKeys(issuer.jwks)
    )
    repositories: list[Any] = [fakes.tasks]
    verifiers: list[Any] = [verifier]
    app = Download(repository=lambda: repositories[-1], verifier=lambda: verifiers[-1])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield DownloadUrl(f"http://127.0.0.1:{port}", issuer, repositories, verifiers)
    finally:
        server.should_exit = True
        thread.join(10)


def exercise_download(
    download: DownloadUrl, api: Api, fakes: Fakes, other_issuer: DevIssuer
) -> None:
    """Tasks made through the API, read back through the download: every line is the task
    `GET /tasks/{taskId}` answers, newest first, over more than one page."""
    exercise_approvals(api)  # approved, rejected and pending tasks, of alice and bob
    task = create(api, title="with a file", tags=["a", "b"], dueDate="2030-02-01")
    request = {"filename": "notes.txt", "contentType": "text/plain", "size": 5}
    api("POST", ATTACHMENTS, {"taskId": task["id"]}, body=request, expect=201)
    done = create(api, title="done", description="line one\nline two")
    api("PATCH", TASK, {"taskId": done["id"]}, body={"status": "in_progress"}, expect=200)
    api("POST", COMPLETE, {"taskId": done["id"]}, expect=200)
    for n in range(105):
        create(api, title=f"bulk {n}", priority="low")

    _, headers, lines = download(expect=200)
    assert headers["content-type"] == f"{NDJSON_MEDIA}; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    owned = sorted((t.id for (o, _), t in fakes.tasks.tasks.items() if o == "alice"), reverse=True)
    assert [line["id"] for line in lines] == owned
    assert len(owned) > 100  # more than one page
    for line in lines:
        assert line == api("GET", TASK, {"taskId": line["id"]}, expect=200)[2]

    _, _, completed = download(query="status=completed", expect=200)
    assert [line["id"] for line in completed] == [done["id"]]
    _, _, cancelled = download(query="status=cancelled", expect=200)
    assert {line["approval"] for line in cancelled} == {"rejected"}
    assert download(user="carol", expect=200)[2] == []  # no tasks: an empty body
    download(method="HEAD", expect=200)

    download(query="limit=5", expect=400)
    download(query="status=done", expect=400)
    download(query="status=", expect=400)
    download(query="status=pending&status=completed", expect=400)
    download(query="cursor=abc.def", expect=400)

    for kind, headers_ in unauthorized_headers_for(download.issuer, other_issuer).items():
        if kind == "bearer-without-token":
            continue  # h11 will not send a header value that ends in a space
        _, answered, _ = download(user=None, headers=headers_, expect=401)
        assert answered["www-authenticate"].startswith("Bearer"), kind
    download(user="x" * 256, expect=401)  # verified, but no OpenID Connect `sub`

    download.verifiers.append(
        Verifier(download.issuer.issuer, download.issuer.audience, UnreachableKeys())
    )
    _, answered, _ = download(expect=503)
    assert answered["retry-after"] == "1"
    download.verifiers.pop()

    for error, status in ((lambda: Unavailable("no connection"), 503), (_bug, 500)):
        download.repositories.append(FlakyTasks(tasks=fakes.tasks.tasks, error=error))
        _, _, problem = download(expect=status)
        assert "bug" not in json.dumps(problem)
        download.repositories.pop()

    download.repositories.append(FlakyTasks(tasks=fakes.tasks.tasks, fail_from=2))
    _, partial = download.broken()
    assert [line["id"] for line in partial] == owned[:100]  # the first page, then nothing
    download.repositories.pop()

    download.health()
    download.unrouted("GET", "/tasks", expect=404)
    download.unrouted("GET", "/tasks.ndjson/x", expect=404)
    download.unrouted("GET", "/exports", expect=404)
    _, headers, _ = download.unrouted("POST", DOWNLOAD_PATH, expect=405)
    assert headers["allow"] == "GET, HEAD"
    download.unrouted("DELETE", DOWNLOAD_PATH, expect=405)


def _bug() -> Exception:
    return RuntimeError("bug")


# -- the document itself -------------------------------------------------------------------------


class TestDocument:
    def test_is_openapi_3_1(self) -> None:
        document = SPEC.document
        assert document["openapi"] == "3.1.0"
        assert document["info"]["title"] == "tasks API"
        assert document["info"]["version"] == "1.0.0"
        for phrase in (
            "JWT authorizer",
            "Through a Function URL",
            "`WWW-Authenticate",
            "`tasks:functionUrls`",
            "(`sub`)",
            "`approvers` group",
        ):
            assert phrase in document["info"]["description"]
        assert json.loads(json.dumps(document)) == document  # plain JSON: no YAML dates etc.

    def test_every_schema_is_json_schema_2020_12(self) -> None:
        """Every component schema, and every inline `schema` of a parameter, header or body."""

        def inline(node: Any, where: str) -> Iterator[tuple[str, Any]]:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in ("schema", ITEM_SCHEMA) and isinstance(value, dict):
                        yield f"{where}/{key}", value
                    else:
                        yield from inline(value, f"{where}/{_escape(key)}")
            elif isinstance(node, list):
                for index, value in enumerate(node):
                    yield from inline(value, f"{where}/{index}")

        schemas = dict(inline(SPEC.document, ""))
        for name, schema in SPEC.document["components"]["schemas"].items():
            schemas[pointer("components", "schemas", name)] = schema
        assert len(schemas) > 40
        for where, schema in schemas.items():
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as error:
                pytest.fail(f"{where}: {error.message}")

    def test_passes_openapi_spec_validator(self) -> None:
        validator = pytest.importorskip("openapi_spec_validator")
        from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator

        validator.validate(SPEC.document, cls=OpenAPIV31SpecValidator)

    def test_every_reference_resolves(self) -> None:
        def refs(node: Any) -> Iterator[str]:
            if isinstance(node, dict):
                if isinstance(node.get("$ref"), str):
                    yield node["$ref"]
                for value in node.values():
                    yield from refs(value)
            elif isinstance(node, list):
                for value in node:
                    yield from refs(value)

        for ref in set(refs(SPEC.document)):
            assert ref.startswith("#/")
            SPEC.at(ref[1:])

    def test_routes_are_the_manifests(self) -> None:
        """The API's routes on the API's servers (the document's), each Function URL route on
        its URL's servers only (its path's), and nothing else."""
        documented = {f"{method} {path}" for method, path, _ in SPEC.operations()}
        assert documented == set(manifest_routes())
        assert url_routes(), "the manifest has Function URL routes: this test checks them"
        on_url = url_routes()
        for method, path, operation in SPEC.operations():
            assert "servers" not in operation, f"{method} {path}: servers go on the path"
            servers = [s["url"] for s in SPEC.document["paths"][path].get("servers", [])]
            function = on_url.get(f"{method} {path}")
            if function is None:
                assert not servers, f"{method} {path} is the API's: on the API's servers"
            else:
                assert servers == url_servers(function), f"{method} {path}: {function.name}'s URL"
                assert all(f"{m} {path}" in on_url for m, p, _ in SPEC.operations() if p == path)

    def test_operation_ids_are_unique_and_complete(self) -> None:
        ids = [operation["operationId"] for _, _, operation in SPEC.operations()]
        assert len(ids) == len(set(ids))
        assert operation_ids(on_url=False) == set(VALID_REQUESTS) == set(REQUIRED_STATUSES)
        assert operation_ids(on_url=True) == set(URL_REQUIRED_STATUSES)

    def test_security_follows_the_manifest(self) -> None:
        document = SPEC.document
        scheme = document["components"]["securitySchemes"]["bearerJwt"]
        assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == (
            "http",
            "bearer",
            "JWT",
        )
        assert document["security"] == [{"bearerJwt": []}]
        routes = manifest_routes()
        for method, path, operation in SPEC.operations():
            public = operation.get("security") == []
            assert public == (not routes[f"{method} {path}"].authorized), (method, path)
            statuses = set(operation["responses"])
            assert "500" in statuses
            assert ("401" in statuses) != public, (method, path)

    def test_servers(self) -> None:
        """The API's: API Gateway and the API function's Function URL, each on the local
        platform and on AWS. Each URL server says, in words, what differs from API Gateway."""
        servers = SPEC.document["servers"]
        assert [server["url"] for server in servers] == [
            f"http://127.0.0.1:{LOCAL.port}",
            API_GATEWAY,
            *url_servers(API),
        ]
        assert set(servers[1]["variables"]) == {"apiId", "region"}
        assert set(servers[3]["variables"]) == {"urlId", "region"}
        for server in servers:
            assert server["x-internal"] == server["url"].startswith("http://127.0.0.1:")
        for phrase in ("authorizer", "401", "throttling"):
            assert phrase in servers[2]["description"]
        for phrase in ("`tasks:functionUrls`", "authorizer", "`401`", "throttling"):
            assert phrase in servers[3]["description"]
        for key, function in url_routes().items():
            path = key.split(" ", 1)[1]
            own = SPEC.document["paths"][path]["servers"]
            assert set(own[1]["variables"]) == {"urlId", "region"}
            assert "`tasks:functionUrls`" in own[1]["description"]
            assert [s["x-internal"] for s in own] == [True, False], function.name

    def test_errors_are_problem_json(self) -> None:
        for method, path, operation in SPEC.operations():
            for status in operation["responses"]:
                response, _ = SPEC.follow(
                    pointer("paths", path, method.lower(), "responses", status)
                )
                gateway_only = status == "400" and set(response["content"]) == {"application/json"}
                if int(status) >= 400 and int(status) != 429 and not gateway_only:
                    assert PROBLEM_MEDIA in response["content"], (method, path, status)

    def test_sequences_name_their_items_schema_and_their_examples_conform(self) -> None:
        """NDJSON has no `schema` (the body is no JSON value) but `x-itemSchema`; each line of
        its example is such an item."""
        found = 0
        for method, path, operation in SPEC.operations():
            for status in operation["responses"]:
                response, where = SPEC.follow(
                    pointer("paths", path, method.lower(), "responses", status)
                )
                for media, content in response.get("content", {}).items():
                    sequence = media == NDJSON_MEDIA
                    assert (ITEM_SCHEMA in content) == sequence, (method, path, status, media)
                    assert ("schema" in content) != sequence, (method, path, status, media)
                    if sequence:
                        found += 1
                        assert content["example"].endswith("\n")
                        lines = [json.loads(x) for x in content["example"].splitlines()]
                        assert len(lines) > 1
                        items = f"{where}/content/{_escape(media)}/{ITEM_SCHEMA}"
                        for line in lines:
                            assert not SPEC.schema_errors(items, line), line
        assert found == 1

    def test_request_bodies_reject_unknown_fields(self) -> None:
        for name in ("CreateTask", "UpdateTask", "AttachmentRequest", "Decision", "NoBody"):
            assert SPEC.document["components"]["schemas"][name]["additionalProperties"] is False


# -- responses ---------------------------------------------------------------------------------


class TestResponsesConform:
    def test_tasks(self, api: Api, fakes: Fakes) -> None:
        exercise_tasks(api, fakes)
        self.assert_required(
            api,
            "createTask",
            "listTasks",
            "getTask",
            "putTask",
            "patchTask",
            "deleteTask",
            "completeTask",
        )

    def test_attachments(self, api: Api, fakes: Fakes) -> None:
        exercise_attachments(api, fakes)
        self.assert_required(api, "addAttachment", "getAttachmentDownload")
        assert ("addAttachment", 409) in api.seen

    def test_approvals(self, api: Api) -> None:
        exercise_approvals(api)
        self.assert_required(api, "listApprovals", "decideApproval")

    def test_health_and_stats(self, api: Api, fakes: Fakes) -> None:
        exercise_meta(api, fakes)
        self.assert_required(api, "getHealth", "getStats")

    def test_exports(self, api: Api, fakes: Fakes) -> None:
        exercise_exports(api, fakes)
        self.assert_required(api, "createExport", "getExport")

    def test_notifications(self, api: Api, fakes: Fakes) -> None:
        exercise_notifications(api, fakes)
        self.assert_required(api, "listNotifications", "markNotificationRead")

    def test_archive(self, api: Api, fakes: Fakes) -> None:
        exercise_archive(api, fakes)
        self.assert_required(api, "listArchiveMonths", "getArchiveMonth")

    def test_unrouted_requests(self, api: Api) -> None:
        exercise_routing(api)

    def test_failures(self, api: Api, containers: list[bootstrap.Container]) -> None:
        exercise_failures(api, containers)
        for operation in set(VALID_REQUESTS) - {"getHealth"}:
            assert {(operation, status) for status in (401, 500, 503)} <= api.seen

    def test_every_documented_status_is_produced(
        self, api: Api, fakes: Fakes, containers: list[bootstrap.Container]
    ) -> None:
        """Both ways: each operation is seen, and each documented status is real."""
        exercise_tasks(api, fakes)
        exercise_attachments(api, fakes)
        exercise_approvals(api)
        exercise_meta(api, fakes)
        exercise_exports(api, fakes)
        exercise_notifications(api, fakes)
        exercise_archive(api, fakes)
        exercise_failures(api, containers)
        seen: dict[str, set[int]] = {}
        for operation, status in api.seen:
            seen.setdefault(operation, set()).add(status)
        documented = documented_statuses(operation_ids(on_url=False))
        assert set(seen) == set(documented)
        for operation, statuses in documented.items():
            missing = {s for s in statuses - seen[operation] if (operation, s) not in NOT_EXERCISED}
            assert not missing, f"{operation}: documented but never produced: {sorted(missing)}"
            assert REQUIRED_STATUSES[operation] <= seen[operation]

    @staticmethod
    def assert_required(api: Api, *operations: str) -> None:
        for operation in operations:
            seen = {status for op, status in api.seen if op == operation}
            missing = REQUIRED_STATUSES[operation] - seen
            assert not missing, f"{operation} was not seen answering {sorted(missing)}"


class TestDownloadConforms:
    """GET /tasks.ndjson, driven through the download function's own app."""

    def test_every_documented_status_is_produced(
        self, download: DownloadUrl, api: Api, fakes: Fakes, other_issuer: DevIssuer
    ) -> None:
        exercise_download(download, api, fakes, other_issuer)
        documented = documented_statuses(operation_ids(on_url=True))
        seen: dict[str, set[int]] = {}
        for operation, status in download.seen:
            seen.setdefault(operation, set()).add(status)
        assert set(seen) == set(documented)
        for operation, statuses in documented.items():
            missing = {s for s in statuses - seen[operation] if (operation, s) not in NOT_EXERCISED}
            assert not missing, f"{operation}: documented but never produced: {sorted(missing)}"
            assert URL_REQUIRED_STATUSES[operation] <= seen[operation]
            assert seen[operation] <= statuses

    @pytest.mark.parametrize(
        "query", ["", *(f"status={status}" for status in ("pending", "in_progress", "cancelled"))]
    )
    def test_queries_accepted_by_both(self, download: DownloadUrl, query: str) -> None:
        """`DownloadUrl` checks that what the app accepts is a request the document allows."""
        download(query=query, expect=200)

    @pytest.mark.parametrize(
        "query",
        ["status=done", "status=", "status=PENDING", "limit=5", "sort=asc", "status=pending&x=1"],
    )
    def test_queries_rejected_by_both(self, download: DownloadUrl, query: str) -> None:
        parameters = dict(parse_qsl(query, keep_blank_values=True))
        assert SPEC.request_errors("GET", DOWNLOAD_PATH, query=parameters)
        _, _, problem = download(query=query, expect=400)
        assert problem["type"] == "urn:tasks:problem:invalid-query"


# -- requests: the document and the code agree -------------------------------------------------

TITLE_200 = "T" * 200
TAGS_10 = [f"{n:02d}" + "x" * 30 for n in range(10)]


@pytest.fixture
def ids(api: Api) -> dict[str, str]:
    """A task owned by alice awaiting approval, so every task route has a real target."""
    task = create(api, priority="high")
    return {"taskId": task["id"]}


def _call(
    api: Api, route: str, ids: dict[str, str], kwargs: dict[str, Any], status: int
) -> Response:
    method, template = route.split(" ")
    return api(method, template, ids if "{" in template else None, **kwargs, expect=status)


@pytest.mark.parametrize(
    ("route", "kwargs", "status"),
    [
        pytest.param("POST /tasks", {"body": {"title": TITLE_200}}, 201, id="title-200"),
        pytest.param("POST /tasks", {"body": {"title": "\u00a0x\u00a0"}}, 201, id="title-nbsp"),
        pytest.param("POST /tasks", {"body": {"title": "Ünïcødé ✓"}}, 201, id="title-unicode"),
        pytest.param(
            "POST /tasks",
            {"body": {"title": "x", "description": "d\n\r\t" + "d" * 3996}},
            201,
            id="description-4000",
        ),
        pytest.param(
            "POST /tasks", {"body": {"title": "x", "tags": TAGS_10}}, 201, id="tags-10x32"
        ),
        pytest.param(
            "POST /tasks", {"body": {"title": "x", "dueDate": "2030-01-01"}}, 201, id="due-today"
        ),
        pytest.param("POST /tasks", {"body": {"title": "x", "dueDate": None}}, 201, id="due-null"),
        pytest.param(
            "POST /tasks",
            {"body": {"title": "x"}, "headers": {"Idempotency-Key": "k" * 128}},
            201,
            id="idempotency-key-128",
        ),
        pytest.param("GET /tasks", {"query": {"limit": "100"}}, 200, id="limit-100"),
        pytest.param(
            f"POST {ATTACHMENTS}",
            {"body": {"filename": "a.txt", "contentType": "text/plain", "size": 1.0}},
            201,
            id="size-1.0",
        ),
        pytest.param(
            "GET /tasks", {"query": {"limit": "1", "status": "cancelled"}}, 200, id="limit-1"
        ),
        pytest.param(
            f"PATCH {TASK}",
            {"body": {"priority": "low"}, "headers": {"If-Match": 'W/"1"'}},
            412,
            id="weak-etag",
        ),
        pytest.param(
            f"PUT {TASK}",
            {"body": {"status": "cancelled"}, "headers": {"If-Match": "*"}},
            200,
            id="cancel",
        ),
        pytest.param(
            f"POST {ATTACHMENTS}",
            {
                "body": {
                    "filename": "a b.PDF",
                    "contentType": "Application/PDF",
                    "size": 10 * 1024 * 1024,
                }
            },
            201,
            id="attachment-10MiB",
        ),
        pytest.param(
            f"POST {ATTACHMENTS}",
            {"body": {"filename": "f" * 255, "contentType": "a/b", "size": 1}},
            201,
            id="filename-255",
        ),
        pytest.param(
            f"POST {APPROVAL}", {"body": {"decision": "reject"}, **APPROVER}, 200, id="reject"
        ),
        pytest.param(
            "GET /approvals", {"query": {"limit": "100"}, **APPROVER}, 200, id="approvals-100"
        ),
        pytest.param("POST /exports", {"body": {}}, 202, id="export-empty-body"),
        pytest.param(
            "POST /exports",
            {"raw_body": "{}", "headers": {"content-type": "application/merge-patch+json"}},
            202,
            id="export-plus-json",
        ),
    ],
)
def test_edge_requests_accepted_by_both(
    api: Api, ids: dict[str, str], route: str, kwargs: dict[str, Any], status: int
) -> None:
    """On the boundary: the handler accepts them, and `Api` checks they conform to the document."""
    _call(api, route, ids, kwargs, status)


def _attachment(**fields: Any) -> dict[str, Any]:
    return {"body": {"filename": "a.txt", "contentType": "text/plain", "size": 1, **fields}}


@pytest.mark.parametrize(
    ("route", "kwargs", "status"),
    [
        pytest.param(
            "POST /tasks",
            {"body": {"title": "x", "ownerId": "mallory"}},
            422,
            id="unknown-field",
        ),
        pytest.param("POST /tasks", {"body": {"title": TITLE_200 + "T"}}, 422, id="title-201"),
        pytest.param("POST /tasks", {"body": {"title": " \u00a0 "}}, 422, id="title-blank"),
        pytest.param("POST /tasks", {"body": {"title": "a\u0007b"}}, 422, id="title-control"),
        pytest.param("POST /tasks", {"body": {"title": "a\nb"}}, 422, id="title-newline"),
        pytest.param("POST /tasks", {"body": {"title": "a\u0085b"}}, 422, id="title-c1-control"),
        pytest.param("POST /tasks", {"body": {"title": 5}}, 422, id="title-number"),
        pytest.param("POST /tasks", {"body": {}}, 422, id="title-missing"),
        pytest.param("POST /tasks", {"body": ["a"]}, 422, id="not-an-object"),
        pytest.param(
            "POST /tasks",
            {"body": {"title": "x", "description": "d" * 4001}},
            422,
            id="description-4001",
        ),
        pytest.param(
            "POST /tasks",
            {"body": {"title": "x", "description": "a\u0000"}},
            422,
            id="description-nul",
        ),
        pytest.param(
            "POST /tasks", {"body": {"title": "x", "tags": [*TAGS_10, "z"]}}, 422, id="tags-11"
        ),
        pytest.param(
            "POST /tasks", {"body": {"title": "x", "tags": ["a", "a"]}}, 422, id="tags-duplicate"
        ),
        pytest.param("POST /tasks", {"body": {"title": "x", "tags": ["x" * 33]}}, 422, id="tag-33"),
        pytest.param(
            "POST /tasks", {"body": {"title": "x", "tags": [" a"]}}, 422, id="tag-leading-space"
        ),
        pytest.param("POST /tasks", {"body": {"title": "x", "tags": [""]}}, 422, id="tag-empty"),
        pytest.param("POST /tasks", {"body": {"title": "x", "tags": "a"}}, 422, id="tags-string"),
        pytest.param(
            "POST /tasks", {"body": {"title": "x", "priority": "urgent"}}, 422, id="priority"
        ),
        pytest.param(
            "POST /tasks", {"body": {"title": "x", "dueDate": "2030-1-31"}}, 422, id="date-shape"
        ),
        pytest.param(
            "POST /tasks",
            {"body": {"title": "x", "dueDate": "2030-02-30"}},
            422,
            id="date-unreal",
        ),
        pytest.param(
            "POST /tasks",
            {"body": {"title": "x"}, "headers": {"Idempotency-Key": "k" * 129}},
            400,
            id="idempotency-key-129",
        ),
        pytest.param(
            "POST /tasks",
            {"body": {"title": "x"}, "headers": {"Idempotency-Key": "a/b"}},
            400,
            id="idempotency-key-slash",
        ),
        pytest.param(
            f"PATCH {TASK}",
            {"body": {"title": "x"}, "headers": {"If-Match": '"' + "9" * 13 + '"'}},
            412,
            id="if-match-15",
        ),
        pytest.param(
            f"PUT {TASK}",
            {"body": {"title": "x"}, "headers": {"If-Match": '"1", "2"'}},
            412,
            id="if-match-list",
        ),
        pytest.param(f"PATCH {TASK}", {"body": {}}, 422, id="update-empty"),
        pytest.param(f"PUT {TASK}", {"body": {"version": 3}}, 422, id="update-unknown"),
        pytest.param(f"PATCH {TASK}", {"body": {"status": "done"}}, 422, id="update-status"),
        pytest.param(f"PATCH {TASK}", {"body": {"title": None}}, 422, id="update-title-null"),
        pytest.param(f"POST {COMPLETE}", {"body": {"force": True}}, 422, id="complete-body"),
        pytest.param(f"POST {ATTACHMENTS}", _attachment(filename=".."), 422, id="filename-dotdot"),
        pytest.param(f"POST {ATTACHMENTS}", _attachment(filename="a/b"), 422, id="filename-slash"),
        pytest.param(
            f"POST {ATTACHMENTS}", _attachment(filename="a\\b"), 422, id="filename-backslash"
        ),
        pytest.param(
            f"POST {ATTACHMENTS}", _attachment(filename="f" * 256), 422, id="filename-256"
        ),
        pytest.param(
            f"POST {ATTACHMENTS}", _attachment(contentType="text plain"), 422, id="media-space"
        ),
        pytest.param(
            f"POST {ATTACHMENTS}", _attachment(contentType="text"), 422, id="media-no-slash"
        ),
        pytest.param(f"POST {ATTACHMENTS}", _attachment(size=0), 422, id="size-0"),
        pytest.param(
            f"POST {ATTACHMENTS}", _attachment(size=10 * 1024 * 1024 + 1), 422, id="size-10MiB+1"
        ),
        pytest.param(f"POST {ATTACHMENTS}", _attachment(size=1.5), 422, id="size-float"),
        pytest.param(
            f"POST {ATTACHMENTS}", {"body": {"filename": "a.txt"}}, 422, id="attachment-missing"
        ),
        pytest.param(
            f"POST {APPROVAL}", {"body": {"decision": "maybe"}, **APPROVER}, 422, id="decision"
        ),
        pytest.param(f"POST {APPROVAL}", {"body": {}, **APPROVER}, 422, id="decision-missing"),
        pytest.param("GET /tasks", {"query": {"limit": "101"}}, 400, id="limit-101"),
        pytest.param("GET /tasks", {"query": {"limit": "0"}}, 400, id="limit-0"),
        pytest.param("GET /tasks", {"query": {"limit": "ten"}}, 400, id="limit-ten"),
        pytest.param("GET /tasks", {"query": {"status": "done"}}, 400, id="status-done"),
        pytest.param("GET /tasks", {"query": {"sort": "asc"}}, 400, id="query-unknown"),
        pytest.param("GET /tasks", {"query": {"cursor": "c" * 2049}}, 400, id="cursor-2049"),
        pytest.param("GET /tasks", {"query": {"cursor": "a.b.c"}}, 400, id="cursor-3-parts"),
        pytest.param("GET /tasks", {"query": {"cursor": "a+b.c"}}, 400, id="cursor-not-base64url"),
        pytest.param(
            "GET /approvals", {"query": {"limit": "101"}, **APPROVER}, 400, id="approvals-limit"
        ),
        pytest.param(
            "GET /approvals",
            {"query": {"priority": "high"}, **APPROVER},
            400,
            id="approvals-unknown",
        ),
        pytest.param("POST /exports", {"body": {"status": "pending"}}, 422, id="export-body"),
        pytest.param("POST /exports", {"body": []}, 422, id="export-body-array"),
    ],
)
def test_invalid_requests_rejected_by_both(
    api: Api, ids: dict[str, str], route: str, kwargs: dict[str, Any], status: int
) -> None:
    method, template = route.split(" ")
    errors = SPEC.request_errors(
        method,
        template,
        path_params=ids if "{" in template else None,
        body=kwargs.get("body"),
        query=kwargs.get("query"),
        headers=kwargs.get("headers"),
    )
    assert errors, "the document accepts a request the handler rejects"
    _call(api, route, ids, kwargs, status)


LONG_ID = UNKNOWN_ID + "A"  # 27 characters: longer than any ULID


@pytest.mark.parametrize(
    ("route", "name"),
    [
        pytest.param(f"GET {TASK}", "taskId", id="task"),
        pytest.param(f"POST {COMPLETE}", "taskId", id="complete"),
        pytest.param(f"GET {ATTACHMENT}", "attachmentId", id="attachment"),
        pytest.param(f"GET {EXPORT}", "exportId", id="export"),
    ],
)
def test_ids_longer_than_a_ulid_rejected_by_both(
    api: Api, ids: dict[str, str], route: str, name: str
) -> None:
    """A path id holds at most 26 characters in the document; a longer one names nothing."""
    method, template = route.split(" ")
    given = {**ids, "attachmentId": UNKNOWN_ID, "exportId": UNKNOWN_ID, name: LONG_ID}
    path_params = {k: v for k, v in given.items() if f"{{{k}}}" in template}
    assert SPEC.request_errors(method, template, path_params=path_params)
    api(method, template, path_params, expect=404)


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        pytest.param("POST /tasks", {"title": "x", "dueDate": "2029-12-31"}, "dueDate", id="past"),
        pytest.param("POST /tasks", {"title": "x", "dueDate": "2041-01-01"}, "dueDate", id="far"),
    ],
)
def test_rules_only_in_descriptions(
    api: Api, ids: dict[str, str], route: str, body: dict[str, Any], field: str
) -> None:
    """What JSON Schema cannot say: due dates are relative to today, and to JSON Schema 1.0 is
    an integer. The schema allows these, the descriptions forbid them, the handler answers 422.
    """
    method, template = route.split(" ")
    path_params = ids if "{" in template else None
    assert not SPEC.request_errors(method, template, path_params=path_params, body=body)
    _, _, problem = _call(api, route, ids, {"body": body}, 422)
    assert [e["field"] for e in problem["errors"]] == [field]
