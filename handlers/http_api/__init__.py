"""The HTTP API Lambda: API Gateway HTTP API (payload 2.0) events in, problem+json errors out.

Each route parses its input into a command, calls the service, and maps the result; domain
errors become HTTP in one table (`handlers.problems.PROBLEMS`). Each resource module (`health`,
`tasks`, `attachments`, `approvals`, `stats`, `exports`, `notifications`, `archive`) names the
manifest routes it implements and builds its own Powertools Router from the manifest
(`routing`); this module includes every router in one resolver, with the not-found/405 and
exception handlers, and is the manifest's entry point (`handlers.http_api:handler`). A route the
manifest lists and no module implements, or one implemented and not listed, fails at import,
not in production. The owner is always the JWT subject the authorizer verified
(`request.Request`), never a query or body field.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import bootstrap, snapstart
from handlers.claims import parse_groups
from handlers.http_api import (
    approvals,
    archive,
    attachments,
    exports,
    health,
    notifications,
    stats,
    tasks,
)
from handlers.http_api.responses import HttpProblem, domain_problem, problem
from handlers.http_api.routing import Endpoint, GetContainer, Resource, template
from handlers.http_api.telemetry import logger, metrics
from stack.manifest import API
from taskcore import errors

__all__ = ["IMPLEMENTATIONS", "RESOURCES", "app", "create_app", "handler", "parse_groups"]

RESOURCES: tuple[Resource, ...] = (
    health,
    tasks,
    attachments,
    approvals,
    stats,
    exports,
    notifications,
    archive,
)
"""The resource modules, in the manifest's order of their routes."""


def _implementations() -> dict[str, Endpoint]:
    """Every resource's routes in one table: route key -> function."""
    merged: dict[str, Endpoint] = {}
    for resource in RESOURCES:
        twice = merged.keys() & resource.IMPLEMENTATIONS.keys()
        if twice:
            raise RuntimeError(f"routes implemented twice: {sorted(twice)}")
        merged.update(resource.IMPLEMENTATIONS)
    return merged


IMPLEMENTATIONS = _implementations()


def create_app(get_container: GetContainer) -> APIGatewayHttpResolver:
    """An HTTP API resolver with every manifest route, reading adapters from `get_container`."""
    listed = {route.key for route in API.routes}
    unimplemented = listed - set(IMPLEMENTATIONS)
    if unimplemented:
        raise RuntimeError(f"routes in the manifest but not implemented: {sorted(unimplemented)}")
    missing = set(IMPLEMENTATIONS) - listed
    if missing:
        raise RuntimeError(f"routes implemented but not in the manifest: {sorted(missing)}")

    app = APIGatewayHttpResolver()
    for resource in RESOURCES:
        app.include_router(resource.router(get_container))
    templates = [(route, template(route.path)) for route in API.routes]

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
snapstart.prepare(
    __name__,
    handler=[bootstrap.container, bootstrap.prepare_cursors, bootstrap.prepare_verifier],
)


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The API Gateway request id, as correlation id (read directly: Powertools'
    # correlation_id_path runs a JMESPath query per request, ~13 us of a ~60 us request).
    # `app` is read from this module on each call: tests and the bench replace it here.
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    return app.resolve(event, context)
