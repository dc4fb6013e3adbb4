"""`GET /health`: the one route without a principal (the manifest marks it unauthorized)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from handlers.http_api.request import Request
from handlers.http_api.responses import json_response
from handlers.http_api.routing import Endpoint, GetContainer, resource_router


def health(_: Request) -> Response[str]:
    return json_response({"status": "ok"})


IMPLEMENTATIONS: dict[str, Endpoint] = {
    "GET /health": health,
}


def router(get_container: GetContainer) -> APIGatewayHttpRouter:
    """This resource's Router: the manifest routes above, adapters from `get_container`."""
    return resource_router(IMPLEMENTATIONS, get_container)
