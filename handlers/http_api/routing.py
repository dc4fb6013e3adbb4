"""How a resource module's Powertools Router gets its routes: from the manifest (`API.routes`),
exactly the route keys the module implements, each path turned into a Powertools rule, each
call given a `Request` on the router's current event and the container of the moment."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Protocol

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from handlers import bootstrap
from handlers.http_api.request import Request
from stack.manifest import API, Route

Endpoint = Callable[..., Response[str]]
"""A route: the `Request`, then the path parameters by name."""
GetContainer = Callable[[], bootstrap.Container]


def rule(path: str) -> str:
    """API Gateway `/tasks/{taskId}` -> Powertools `/tasks/<taskId>`."""
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")


def resource_router(
    implementations: Mapping[str, Endpoint], get_container: GetContainer
) -> APIGatewayHttpRouter:
    """A Router with the manifest's routes whose keys `implementations` holds, in manifest order
    (a key the manifest lacks registers nothing: the app refuses it)."""
    router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

    def register(route: Route, implementation: Endpoint) -> None:
        def endpoint(**path: str) -> Response[str]:
            request = Request(router.current_event, get_container())
            if route.authorized:
                request.principal()  # 401 before anything about the request is judged
            return implementation(request, **path)

        router.route(rule(route.path), method=route.method)(endpoint)

    for route in API.routes:
        if route.key in implementations:
            register(route, implementations[route.key])
    return router


class Resource(Protocol):
    """A resource module: the manifest route keys it implements, and its Router."""

    IMPLEMENTATIONS: dict[str, Endpoint]

    def router(self, get_container: GetContainer) -> APIGatewayHttpRouter: ...
