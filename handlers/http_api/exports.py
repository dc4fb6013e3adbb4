"""Exports: request one (202, built by the exports worker) and read one (with its download
link once ready; never cached)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.metrics import MetricUnit

from handlers.http_api.request import Request
from handlers.http_api.responses import JSON, dumps
from handlers.http_api.routing import Endpoint, GetContainer, resource_router
from handlers.http_api.telemetry import metrics
from taskcore import errors
from taskcore.serialization import export_to_json
from taskcore.services import ExportView


def export_response(view: ExportView, status: int = 200, **headers: str) -> Response[str]:
    body = export_to_json(
        view.export,
        download_url=view.download_url,
        download_expires_at=view.download_expires_at,
    )
    # The body may hold a presigned link: no cache should keep it.
    return Response(status, JSON, dumps(body), headers={"Cache-Control": "no-store", **headers})


def request_export(request: Request) -> Response[str]:
    if request.json_body(required=False) != {}:
        raise errors.InvalidInput([errors.FieldError("", "this action takes no body")])
    export = request.exports.request_export(request.principal())
    metrics.add_metric(name="ExportsRequested", unit=MetricUnit.Count, value=1)
    return export_response(ExportView(export=export), 202, Location=f"/exports/{export.id}")


def get_export(request: Request, exportId: str) -> Response[str]:
    return export_response(request.exports.get_export(request.principal(), exportId))


IMPLEMENTATIONS: dict[str, Endpoint] = {
    "POST /exports": request_export,
    "GET /exports/{exportId}": get_export,
}


def router(get_container: GetContainer) -> APIGatewayHttpRouter:
    """This resource's Router: the manifest routes above, adapters from `get_container`."""
    return resource_router(IMPLEMENTATIONS, get_container)
