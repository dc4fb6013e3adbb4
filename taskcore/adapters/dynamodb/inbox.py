"""The notifications' inboxes on the table: `DynamoInbox`.

A notification is `sk = NOTE#<id>` in its inbox's partition: a user's own under `USER#<sub>`,
beside their tasks (so every item about a user stays in their partition), the approvers' shared
one under `GROUP#approvers`. It carries none of the index keys (no task listing or queue shows
it) and expires by TTL. Ids are ULIDs of the event's time, so a Query in descending key order
is the inbox newest first. A put conditional on the key's absence stores a notification once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import attrs

from taskcore.adapters.dynamodb.errors import ConditionFailed
from taskcore.adapters.dynamodb.table import TTL_ATTRIBUTE, TableClient, from_iso, iso, user_pk
from taskcore.cursors import Position
from taskcore.model import Approval, Priority, TaskId, UserId
from taskcore.notifications import GROUP, USER, Kind, Notification, NotificationId
from taskcore.ports import NotificationPage

NOTE_PREFIX = "NOTE#"
GROUP_PREFIX = "GROUP#"


def inbox_pk(recipient: str) -> str:
    kind, _, name = recipient.partition(":")
    if kind == USER and name:
        return user_pk(name)
    if kind == GROUP and name:
        return f"{GROUP_PREFIX}{name}"
    raise ValueError(f"not an inbox: {recipient!r}")


def note_sk(notification_id: str) -> str:
    return f"{NOTE_PREFIX}{notification_id}"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def notification_to_item(notification: Notification) -> dict[str, Any]:
    n = notification
    item: dict[str, Any] = {
        "pk": _s(inbox_pk(n.recipient)),
        "sk": _s(note_sk(n.id)),
        "recipient": _s(n.recipient),
        "kind": _s(n.kind.value),
        "eventId": _s(n.event_id),
        "taskId": _s(n.task_id),
        "ownerId": _s(n.owner_id),
        "title": _s(n.title),
        "priority": _s(n.priority.value),
        "createdAt": _s(iso(n.created_at)),
        TTL_ATTRIBUTE: {"N": str(int(n.expires_at().timestamp()))},
    }
    optional = {
        "outcome": n.outcome.value if n.outcome else None,
        "decidedBy": n.decided_by,
        "dueDate": n.due_date.isoformat() if n.due_date else None,
        "readAt": iso(n.read_at) if n.read_at else None,
        "sentAt": iso(n.sent_at) if n.sent_at else None,
    }
    item.update({name: _s(value) for name, value in optional.items() if value is not None})
    return item


def notification_from_item(item: Mapping[str, Any]) -> Notification:
    def get(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else str(value["S"])

    def need(name: str) -> str:
        value = get(name)
        if value is None:
            raise KeyError(name)
        return value

    outcome, decided_by, due = get("outcome"), get("decidedBy"), get("dueDate")
    read_at, sent_at = get("readAt"), get("sentAt")
    return Notification(
        id=NotificationId(need("sk").removeprefix(NOTE_PREFIX)),
        recipient=need("recipient"),
        kind=Kind(need("kind")),
        event_id=need("eventId"),
        task_id=TaskId(need("taskId")),
        owner_id=UserId(need("ownerId")),
        title=need("title"),
        priority=Priority(need("priority")),
        created_at=from_iso(need("createdAt")),
        outcome=Approval(outcome) if outcome else None,
        decided_by=decided_by,
        due_date=date.fromisoformat(due) if due else None,
        read_at=from_iso(read_at) if read_at else None,
        sent_at=from_iso(sent_at) if sent_at else None,
    )


@attrs.define
class DynamoInbox:
    """`Inbox` on the table (see the module's docstring for the item)."""

    table: TableClient

    def _key(self, recipient: str, notification_id: str) -> dict[str, Any]:
        return {"pk": _s(inbox_pk(recipient)), "sk": _s(note_sk(notification_id))}

    def add(self, notification: Notification) -> Notification:
        try:
            self.table.call(
                "put_item",
                Item=notification_to_item(notification),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            stored = self.get(notification.recipient, notification.id)
            if stored is None:  # expired and removed between the two requests
                return notification
            return stored
        return notification

    def mark_sent(self, notification: Notification, at: datetime) -> None:
        with contextlib.suppress(ConditionFailed):  # expired meanwhile: nothing to mark
            self.table.call(
                "update_item",
                Key=self._key(notification.recipient, notification.id),
                UpdateExpression="SET sentAt = :at",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":at": _s(iso(at))},
            )

    def get(self, recipient: str, notification_id: NotificationId) -> Notification | None:
        response = self.table.call(
            "get_item", Key=self._key(recipient, notification_id), ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else notification_from_item(item)

    def mark_read(
        self, recipient: str, notification_id: NotificationId, at: datetime
    ) -> Notification | None:
        try:
            response = self.table.call(
                "update_item",
                Key=self._key(recipient, notification_id),
                UpdateExpression="SET readAt = if_not_exists(readAt, :at)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":at": _s(iso(at))},
                ReturnValues="ALL_NEW",
            )
        except ConditionFailed:
            return None
        return notification_from_item(response["Attributes"])

    def list(self, recipient: str, *, limit: int, after: Position | None) -> NotificationPage:
        pk = inbox_pk(recipient)
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :note)",
            "ExpressionAttributeValues": {":pk": _s(pk), ":note": _s(NOTE_PREFIX)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {"pk": _s(pk), "sk": _s(note_sk(after["id"]))}
        response = self.table.call("query", **kwargs)
        items = tuple(notification_from_item(item) for item in response.get("Items", []))
        last = response.get("LastEvaluatedKey")
        position = {"id": str(last["sk"]["S"]).removeprefix(NOTE_PREFIX)} if last else None
        return NotificationPage(items=items, last_position=position)
