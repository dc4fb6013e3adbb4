"""Approvals: the tasks awaiting the caller's approval, and an approver's decision on one."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from handlers.http_api.request import Request
from handlers.http_api.responses import json_response, task_response
from handlers.http_api.routing import Endpoint, GetContainer, resource_router
from taskcore import errors
from taskcore.commands import parse_decision, parse_query
from taskcore.serialization import task_to_json


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


IMPLEMENTATIONS: dict[str, Endpoint] = {
    "GET /approvals": list_approvals,
    "POST /tasks/{taskId}/approval": decide_approval,
}


def router(get_container: GetContainer) -> APIGatewayHttpRouter:
    """This resource's Router: the manifest routes above, adapters from `get_container`."""
    return resource_router(IMPLEMENTATIONS, get_container)
