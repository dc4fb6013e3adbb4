"""The HTTP API Lambda: API Gateway HTTP API (payload 2.0) events in, problem+json errors out.

Each route parses its input into a command, calls the service, and maps the result; domain
errors become HTTP in one table (`PROBLEMS`). Routes are registered from the manifest, so a
route the manifest lists and this module does not implement fails at import, not in production.
The owner is always the JWT subject the authorizer verified, never a query or body field.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import bootstrap
from stack.manifest import API, Route
from taskcore import errors
from taskcore.commands import (
    parse_attachment,
    parse_create,
    parse_decision,
    parse_query,
    parse_update,
)
from taskcore.model import Principal, Status, Task, UserId
from taskcore.serialization import converter, export_to_json, stats_to_json, task_to_json
from taskcore.services import ExportService, ExportView, TaskService

JSON = "application/json"
PROBLEM = "application/problem+json"
PROBLEM_BASE = "urn:tasks:problem:"
ETAG = re.compile(r'^"(\d{1,12})"$')  # strong tags only: If-Match compares strongly

# Requests that add no metric are normal; Powertools would warn about each one.
warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)

logger = Logger(service="tasks-api")
metrics = Metrics(namespace="tasks", service="api")


class HttpProblem(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.headers = dict(headers or {})


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def problem(
    status: int,
    code: str,
    title: str,
    detail: str = "",
    *,
    field_errors: tuple[errors.FieldError, ...] = (),
    headers: Mapping[str, str] | None = None,
) -> Response[str]:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if field_errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in field_errors]
    return Response(status, PROBLEM, _dumps(body), headers=dict(headers or {}))


# Domain error -> (status, title). Ordered: the first matching class wins.
PROBLEMS: tuple[tuple[type[errors.DomainError], int, str], ...] = (
    (errors.InvalidCursor, 400, "Invalid cursor"),
    (errors.InvalidQuery, 400, "Invalid query parameters"),
    (errors.InvalidHeader, 400, "Invalid header"),
    (errors.InvalidInput, 422, "Validation failed"),
    (errors.NotFound, 404, "Not found"),
    (errors.Forbidden, 403, "Forbidden"),
    (errors.IdempotencyKeyReused, 422, "Idempotency-Key reused with another request"),
    (errors.PreconditionFailed, 412, "Precondition failed"),
    (errors.InvalidTransition, 409, "Transition not allowed"),
    (errors.ConcurrentModification, 409, "Concurrent modification"),
    (errors.Conflict, 409, "Conflict"),
    (errors.Unavailable, 503, "Service unavailable"),
    (errors.StorageRejected, 500, "Internal error"),
)


def domain_problem(error: errors.DomainError) -> Response[str]:
    if isinstance(error, errors.StorageRejected):
        logger.error("storage rejected a request", extra={"error": error.message})
        metrics.add_metric(name="UnhandledErrors", unit=MetricUnit.Count, value=1)
        return problem(500, "internal", "Internal error", "the error was logged")
    for kind, status, title in PROBLEMS:
        if isinstance(error, kind):
            field_errors = error.errors if isinstance(error, errors.InvalidInput) else ()
            headers = {"Retry-After": "1"} if status == 503 else None
            return problem(
                status,
                error.code,
                title,
                error.message,
                field_errors=field_errors,
                headers=headers,
            )
    return problem(500, "internal", "Internal error")  # a DomainError we forgot to map


@attrs.define
class Request:
    """What a route reads from the event: the principal, the body, headers, parameters."""

    event: Any  # APIGatewayProxyEventV2
    container: bootstrap.Container
    _principal: Principal | None = None

    @property
    def service(self) -> TaskService:
        return self.container.service

    @property
    def exports(self) -> ExportService:
        if self.container.exports is None:
            raise RuntimeError("this container was built without the export service")
        return self.container.exports

    def principal(self) -> Principal:
        """The verified JWT subject and groups (read from the raw event: it is the hot path)."""
        if self._principal is None:
            context = self.event.raw_event.get("requestContext") or {}
            claims = ((context.get("authorizer") or {}).get("jwt") or {}).get("claims") or {}
            subject = claims.get("sub")
            if not isinstance(subject, str) or not subject:
                raise HttpProblem(401, "unauthenticated", "Unauthenticated", "no verified subject")
            groups = parse_groups(claims.get("cognito:groups"))
            self._principal = Principal(user_id=UserId(subject), groups=groups)
        return self._principal

    def header(self, name: str) -> str | None:
        headers: Mapping[str, str] = self.event.headers or {}
        return headers.get(name.lower())

    def query(self) -> dict[str, str]:
        return dict(self.event.query_string_parameters or {})

    def json_body(self, *, required: bool = True) -> Any:
        raw = self.event.body
        if raw is None or raw == "":
            if required:
                raise HttpProblem(400, "missing-body", "Missing body", "a JSON body is required")
            return {}
        if self.event.is_base64_encoded:
            try:
                raw = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise HttpProblem(400, "malformed-body", "Malformed body") from None
        size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
        if size > self.container.max_body_bytes:
            raise HttpProblem(
                413,
                "body-too-large",
                "Body too large",
                f"the body is {size} bytes; the limit is {self.container.max_body_bytes}",
            )
        content_type = (self.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != JSON and not content_type.endswith("+json"):
            raise HttpProblem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as application/json",
            )
        try:
            # JSON between systems is UTF-8 (RFC 8259 section 8.1): no UTF-16, no CESU-8.
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise HttpProblem(
                400, "malformed-json", "Malformed JSON", "the body is not UTF-8"
            ) from None
        try:
            document = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as error:
            raise HttpProblem(400, "malformed-json", "Malformed JSON", str(error)[:200]) from None
        if (not text.isascii() or "\\u" in text) and _holds_lone_surrogate(document):
            # `"\ud800"` is JSON grammar but not Unicode (RFC 8259 section 8.2; I-JSON forbids
            # it): no UTF-8 response could echo it, and no string may be stored with it.
            raise HttpProblem(
                400, "malformed-json", "Malformed JSON", "a string holds a lone surrogate"
            )
        return document

    def expected_version(self) -> int | None:
        value = self.header("if-match")
        if value is None or value.strip() == "*":
            return None
        match = ETAG.match(value.strip())
        if match is None:
            raise HttpProblem(
                412, "precondition-failed", "Precondition failed", "If-Match matches no version"
            )
        return int(match.group(1))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _holds_lone_surrogate(document: Any) -> bool:
    """Whether a string of a decoded JSON document, key or value, holds a lone surrogate
    (json.loads joins escaped pairs, so any surrogate left is alone). Iterative: documents
    nest as deep as the parser allows."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            pending += value.keys()
            pending += value.values()
        elif isinstance(value, list):
            pending += value
    return False


def parse_groups(value: object) -> frozenset[str]:
    """Groups as API Gateway passes them: a list, or a string like "[approvers admins]"."""
    if isinstance(value, list):
        return frozenset(str(v) for v in value)
    if isinstance(value, str):
        return frozenset(re.split(r"[\s,]+", value.strip().strip("[]").strip())) - {""}
    return frozenset()


def etag(task: Task) -> str:
    return f'"{task.version}"'


def task_response(
    task: Task, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response[str]:
    return Response(
        status, JSON, _dumps(task_to_json(task)), headers={"ETag": etag(task), **(headers or {})}
    )


def json_response(body: Any, status: int = 200) -> Response[str]:
    return Response(status, JSON, _dumps(body))


# -- routes ------------------------------------------------------------------------------------


def health(_: Request) -> Response[str]:
    return json_response({"status": "ok"})


def create_task(request: Request) -> Response[str]:
    command = parse_create(request.json_body())
    key = request.header("idempotency-key")
    result = request.service.create_task(request.principal(), command, idempotency_key=key)
    if result.created:
        metrics.add_metric(name="TasksCreated", unit=MetricUnit.Count, value=1)
        return task_response(result.task, 201, {"Location": f"/tasks/{result.task.id}"})
    return task_response(result.task, 200, {"Location": f"/tasks/{result.task.id}"})


def list_tasks(request: Request) -> Response[str]:
    page = request.service.list_tasks(request.principal(), parse_query(request.query()))
    return json_response(
        {"items": [task_to_json(t) for t in page.items], "nextCursor": page.next_cursor}
    )


def get_task(request: Request, taskId: str) -> Response[str]:
    return task_response(request.service.get_task(request.principal(), taskId))


def update_task(request: Request, taskId: str) -> Response[str]:
    command = parse_update(request.json_body())
    task = request.service.update_task(
        request.principal(), taskId, command, request.expected_version()
    )
    return task_response(task)


def delete_task(request: Request, taskId: str) -> Response[str]:
    request.service.delete_task(request.principal(), taskId, request.expected_version())
    return Response(204, None, "")


def complete_task(request: Request, taskId: str) -> Response[str]:
    body = request.json_body(required=False)
    if body != {}:
        raise errors.InvalidTask([errors.FieldError("", "this action takes no body")])
    task = request.service.transition(
        request.principal(), taskId, Status.COMPLETED, request.expected_version()
    )
    return task_response(task)


def add_attachment(request: Request, taskId: str) -> Response[str]:
    command = parse_attachment(request.json_body())
    new = request.service.add_attachment(request.principal(), taskId, command)
    body = {
        "attachment": converter.unstructure(new.attachment),
        "upload": {
            "url": new.upload.url,
            "fields": new.upload.fields,
            "expiresAt": converter.unstructure(new.upload.expires_at),
        },
    }
    location = f"/tasks/{taskId}/attachments/{new.attachment.id}"
    return Response(201, JSON, _dumps(body), headers={"Location": location, "ETag": etag(new.task)})


def download_attachment(request: Request, taskId: str, attachmentId: str) -> Response[str]:
    url = request.service.attachment_download(request.principal(), taskId, attachmentId)
    return json_response({"url": url})


def list_approvals(request: Request) -> Response[str]:
    params = request.query()
    unknown = sorted(set(params) - {"limit", "cursor"})
    if unknown:
        raise errors.InvalidQuery(
            [errors.FieldError(name, "is not a known field") for name in unknown]
        )
    query = parse_query({k: v for k, v in params.items() if k == "limit"})
    page = request.service.list_awaiting_approval(
        request.principal(), query.limit, params.get("cursor") or None
    )
    return json_response(
        {"items": [task_to_json(t) for t in page.items], "nextCursor": page.next_cursor}
    )


def decide_approval(request: Request, taskId: str) -> Response[str]:
    decision = parse_decision(request.json_body())
    task = request.service.decide_approval(request.principal(), taskId, decision.decision)
    return task_response(task)


def get_stats(request: Request) -> Response[str]:
    stats = request.service.get_stats(request.principal())
    return json_response(stats_to_json(stats, request.container.clock.now()))


def export_response(view: ExportView, status: int = 200, **headers: str) -> Response[str]:
    body = export_to_json(
        view.export,
        download_url=view.download_url,
        download_expires_at=view.download_expires_at,
    )
    # The body may hold a presigned link: no cache should keep it.
    return Response(status, JSON, _dumps(body), headers={"Cache-Control": "no-store", **headers})


def request_export(request: Request) -> Response[str]:
    if request.json_body(required=False) != {}:
        raise errors.InvalidInput([errors.FieldError("", "this action takes no body")])
    export = request.exports.request_export(request.principal())
    metrics.add_metric(name="ExportsRequested", unit=MetricUnit.Count, value=1)
    return export_response(ExportView(export=export), 202, Location=f"/exports/{export.id}")


def get_export(request: Request, exportId: str) -> Response[str]:
    return export_response(request.exports.get_export(request.principal(), exportId))


IMPLEMENTATIONS: dict[str, Callable[..., Response[str]]] = {
    "GET /health": health,
    "POST /tasks": create_task,
    "GET /tasks": list_tasks,
    "GET /tasks/{taskId}": get_task,
    "PUT /tasks/{taskId}": update_task,
    "PATCH /tasks/{taskId}": update_task,
    "DELETE /tasks/{taskId}": delete_task,
    "POST /tasks/{taskId}/complete": complete_task,
    "POST /tasks/{taskId}/attachments": add_attachment,
    "GET /tasks/{taskId}/attachments/{attachmentId}": download_attachment,
    "GET /approvals": list_approvals,
    "POST /tasks/{taskId}/approval": decide_approval,
    "GET /stats": get_stats,
    "POST /exports": request_export,
    "GET /exports/{exportId}": get_export,
}


def _rule(path: str) -> str:
    """API Gateway `/tasks/{taskId}` -> Powertools `/tasks/<taskId>`."""
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")


def create_app(get_container: Callable[[], bootstrap.Container]) -> APIGatewayHttpResolver:
    """An HTTP API resolver with every manifest route, reading adapters from `get_container`."""
    app = APIGatewayHttpResolver()
    templates = [(route, _template(route.path)) for route in API.routes]

    def register(route: Route) -> None:
        implementation = IMPLEMENTATIONS[route.key]

        def endpoint(**path: str) -> Response[str]:
            request = Request(app.current_event, get_container())
            if route.authorized:
                request.principal()  # 401 before anything about the request is judged
            return implementation(request, **path)

        app.route(_rule(route.path), method=route.method)(endpoint)

    for route in API.routes:
        register(route)
    missing = set(IMPLEMENTATIONS) - {route.key for route in API.routes}
    if missing:
        raise RuntimeError(f"routes implemented but not in the manifest: {sorted(missing)}")

    @app.not_found
    def not_found(_: Exception) -> Response[str]:
        path, method = app.current_event.path, app.current_event.http_method
        allowed = sorted({r.method for r, pattern in templates if pattern.match(path)})
        if method in allowed:
            # The route exists, but its path parameter holds characters the resolver's route
            # patterns do not match (control characters, `#`, `¦`...): such an id names nothing.
            return problem(404, "not-found", "Not found", f"nothing found at {path}")
        if allowed:
            return problem(
                405,
                "method-not-allowed",
                "Method not allowed",
                f"{method} is not allowed on {path}",
                headers={"Allow": ", ".join(allowed)},
            )
        return problem(404, "no-route", "Not found", f"no route for {method} {path}")

    @app.exception_handler(HttpProblem)  # type: ignore[untyped-decorator]
    def http_problem(error: HttpProblem) -> Response[str]:
        return problem(error.status, error.code, error.title, error.detail, headers=error.headers)

    @app.exception_handler(errors.DomainError)  # type: ignore[untyped-decorator]
    def domain_error(error: errors.DomainError) -> Response[str]:
        return domain_problem(error)

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def unexpected(_: Exception) -> Response[str]:
        logger.exception("unhandled error")
        metrics.add_metric(name="UnhandledErrors", unit=MetricUnit.Count, value=1)
        return problem(500, "internal", "Internal error", "the error was logged")

    return app


app = create_app(bootstrap.container)


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The API Gateway request id, as correlation id (read directly: Powertools'
    # correlation_id_path runs a JMESPath query per request, ~13 us of a ~60 us request).
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    return app.resolve(event, context)
