"""Notifications: the caller's inbox (or the approvers' shared one), newest first, and marking
one read."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from handlers.http_api.request import Request
from handlers.http_api.responses import JSON, dumps
from handlers.http_api.routing import Endpoint, GetContainer, resource_router
from taskcore import errors
from taskcore.commands import parse_notification_query
from taskcore.serialization import notification_to_json

PRIVATE = {"Cache-Control": "no-store"}  # an inbox changes as events arrive, per reader


def list_notifications(request: Request) -> Response[str]:
    query = parse_notification_query(request.query())
    page = request.notifications.list_notifications(
        request.principal(), query.inbox.value, query.limit, query.cursor
    )
    body = {
        "items": [notification_to_json(n) for n in page.items],
        "nextCursor": page.next_cursor,
    }
    return Response(200, JSON, dumps(body), headers=PRIVATE)


def mark_read(request: Request, notificationId: str) -> Response[str]:
    if request.json_body(required=False) != {}:
        raise errors.InvalidInput([errors.FieldError("", "this action takes no body")])
    notification = request.notifications.mark_read(request.principal(), notificationId)
    return Response(200, JSON, dumps(notification_to_json(notification)), headers=PRIVATE)


IMPLEMENTATIONS: dict[str, Endpoint] = {
    "GET /notifications": list_notifications,
    "POST /notifications/{notificationId}/read": mark_read,
}


def router(get_container: GetContainer) -> APIGatewayHttpRouter:
    """This resource's Router: the manifest routes above, adapters from `get_container`."""
    return resource_router(IMPLEMENTATIONS, get_container)
