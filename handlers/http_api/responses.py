"""What the HTTP API answers: JSON and task responses (with their strong ETag), and
problem+json errors, domain errors mapped to HTTP in one table (`handlers.problems.PROBLEMS`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit

from handlers import problems
from handlers.http_api.telemetry import logger, metrics
from handlers.problems import PROBLEM, Problem
from taskcore import errors
from taskcore.model import Task
from taskcore.serialization import task_to_json

JSON = "application/json"


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
    document = Problem(
        status=status, code=code, title=title, detail=detail, field_errors=field_errors
    ).document()
    return Response(status, PROBLEM, dumps(document), headers=dict(headers or {}))


def domain_problem(error: errors.DomainError) -> Response[str]:
    if isinstance(error, errors.StorageRejected):
        logger.error("storage rejected a request", extra={"error": error.message})
        metrics.add_metric(name="UnhandledErrors", unit=MetricUnit.Count, value=1)
    found = problems.domain_problem(error)
    return Response(found.status, PROBLEM, dumps(found.document()), headers=found.headers)


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
