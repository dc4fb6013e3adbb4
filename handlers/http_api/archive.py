"""The archive: the months the caller has archived (completed) tasks in, and a month as a
presigned download of its NDJSON (each line a task as `GET /tasks/{taskId}` last showed it)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from handlers.http_api.request import Request
from handlers.http_api.responses import JSON, dumps
from handlers.http_api.routing import Endpoint, GetContainer, resource_router
from taskcore.serialization import converter
from taskcore.services import ArchiveService


def _archive(request: Request) -> ArchiveService:
    if request.container.archive is None:
        raise RuntimeError("this container was built without the archive service")
    return request.container.archive


def _private(body: Any) -> Response[str]:
    # The caller's own archive, or a presigned link: no cache should keep either.
    return Response(200, JSON, dumps(body), headers={"Cache-Control": "no-store"})


def list_months(request: Request) -> Response[str]:
    months = _archive(request).months(request.principal())
    return _private({"items": [{"month": month} for month in months]})


def get_month(request: Request, month: str) -> Response[str]:
    download = _archive(request).month_download(request.principal(), month)
    return _private(
        {
            "month": download.month,
            "url": download.url,
            "expiresAt": converter.unstructure(download.expires_at),
        }
    )


IMPLEMENTATIONS: dict[str, Endpoint] = {
    "GET /archive": list_months,
    "GET /archive/{month}": get_month,
}


def router(get_container: GetContainer) -> APIGatewayHttpRouter:
    """This resource's Router: the manifest routes above, adapters from `get_container`."""
    return resource_router(IMPLEMENTATIONS, get_container)
