"""A task's attachments: add one (a presigned upload) and fetch one (a presigned download)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from handlers.http_api.request import Request
from handlers.http_api.responses import JSON, dumps, etag, json_response
from handlers.http_api.routing import Endpoint, GetContainer, resource_router
from taskcore.commands import parse_attachment
from taskcore.serialization import converter


def add_attachment(request: Request, taskId: str) -> Response[str]:
    command = parse_attachment(request.json_body())
    new = request.service.add_attachment(request.principal(), taskId, command)
    body = {
        "attachment": converter.unstructure(new.attachment),
        "upload": {
            "url": new.upload.url,
            "fields": new.upload.fields,
            "expiresAt": converter.unstructure(new.upload.expires_at),
        },
    }
    location = f"/tasks/{taskId}/attachments/{new.attachment.id}"
    return Response(201, JSON, dumps(body), headers={"Location": location, "ETag": etag(new.task)})


def download_attachment(request: Request, taskId: str, attachmentId: str) -> Response[str]:
    url = request.service.attachment_download(request.principal(), taskId, attachmentId)
    return json_response({"url": url})


IMPLEMENTATIONS: dict[str, Endpoint] = {
    "POST /tasks/{taskId}/attachments": add_attachment,
    "GET /tasks/{taskId}/attachments/{attachmentId}": download_attachment,
}


def router(get_container: GetContainer) -> APIGatewayHttpRouter:
    """This resource's Router: the manifest routes above, adapters from `get_container`."""
    return resource_router(IMPLEMENTATIONS, get_container)
