"""What the HTTP API answers: JSON and task responses (with their strong ETag), and
problem+json errors, domain errors mapped to HTTP in one table (`PROBLEMS`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit

from handlers.http_api.telemetry import logger, metrics
from taskcore import errors
from taskcore.model import Task
from taskcore.serialization import task_to_json

JSON = "application/json"
PROBLEM = "application/problem+json"
PROBLEM_BASE = "urn:tasks:problem:"


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


def dumps(body: Any) -> str:
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
    return Response(status, PROBLEM, dumps(body), headers=dict(headers or {}))


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


def etag(task: Task) -> str:
    return f'"{task.version}"'


def task_response(
    task: Task, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response[str]:
    return Response(
        status, JSON, dumps(task_to_json(task)), headers={"ETag": etag(task), **(headers or {})}
    )


def json_response(body: Any, status: int = 200) -> Response[str]:
    return Response(status, JSON, dumps(body))
