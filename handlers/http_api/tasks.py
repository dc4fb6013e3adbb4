"""Tasks: create (Idempotency-Key), list, get, update (PUT and PATCH, If-Match), delete and
complete, the task's version as its ETag."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.metrics import MetricUnit

from handlers.http_api.request import Request
from handlers.http_api.responses import json_response, task_response
from handlers.http_api.routing import Endpoint, GetContainer, resource_router
from handlers.http_api.telemetry import metrics
from taskcore import errors
from taskcore.commands import parse_create, parse_query, parse_update
from taskcore.model import Status
from taskcore.serialization import task_to_json


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


IMPLEMENTATIONS: dict[str, Endpoint] = {
    "POST /tasks": create_task,
    "GET /tasks": list_tasks,
    "GET /tasks/{taskId}": get_task,
    "PUT /tasks/{taskId}": update_task,
    "PATCH /tasks/{taskId}": update_task,
    "DELETE /tasks/{taskId}": delete_task,
    "POST /tasks/{taskId}/complete": complete_task,
}


def router(get_container: GetContainer) -> APIGatewayHttpRouter:
    """This resource's Router: the manifest routes above, adapters from `get_container`."""
    return resource_router(IMPLEMENTATIONS, get_container)
