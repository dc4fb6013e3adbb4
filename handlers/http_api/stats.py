"""`GET /stats`: the caller's task statistics, as of the container's clock."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from handlers.http_api.request import Request
from handlers.http_api.responses import json_response
from handlers.http_api.routing import Endpoint, GetContainer, resource_router
from taskcore.serialization import stats_to_json


def get_stats(request: Request) -> Response[str]:
    stats = request.service.get_stats(request.principal())
    return json_response(stats_to_json(stats, request.container.clock.now()))


IMPLEMENTATIONS: dict[str, Endpoint] = {
    "GET /stats": get_stats,
}


def router(get_container: GetContainer) -> APIGatewayHttpRouter:
    """This resource's Router: the manifest routes above, adapters from `get_container`."""
    return resource_router(IMPLEMENTATIONS, get_container)
