"""Notifications: delivering what an event means (the notifications consumer) and reading an
inbox (the HTTP API).

Delivery stores each notification in its inbox first (once per id), then publishes it to the
topic and records that it did. A redelivered event finds the notification stored and sent, and
does nothing; one whose earlier delivery failed between the two steps publishes it then. The
topic therefore sees a notification once, unless a delivery fails after the publish and before
its record, a window of one request (SNS standard topics are at-least-once anyway).
"""

from __future__ import annotations

import attrs

from taskcore.errors import FieldError, Forbidden, InvalidQuery, NotFound
from taskcore.events import Event
from taskcore.model import Principal
from taskcore.notifications import (
    APPROVERS_INBOX,
    Notification,
    NotificationId,
    inboxes_of,
    notifications_for,
    user_inbox,
)
from taskcore.ports import Clock, Cursors, Inbox, NotificationChannel
from taskcore.services.ids import is_ulid

INBOXES = {"me": None, "approvers": APPROVERS_INBOX}
"""The `inbox` a reader names: their own (`me`, the default) or the approvers' shared one."""


@attrs.frozen(kw_only=True)
class Delivery:
    notification: Notification
    published: bool  # False: a redelivery found it published already


def deliver_notifications(
    inbox: Inbox, channel: NotificationChannel, clock: Clock, event: Event
) -> list[Delivery]:
    """Store and publish what `event` means, once per recipient however often it comes."""
    deliveries = []
    for notification in notifications_for(event):
        stored = inbox.add(notification)
        if stored.sent_at is not None:
            deliveries.append(Delivery(notification=stored, published=False))
            continue
        channel.publish(stored)
        inbox.mark_sent(stored, clock.now())
        deliveries.append(Delivery(notification=stored, published=True))
    return deliveries


@attrs.frozen(kw_only=True)
class NotificationPage:
    items: tuple[Notification, ...]
    next_cursor: str | None


@attrs.frozen(kw_only=True)
class NotificationService:
    inbox: Inbox
    clock: Clock
    cursors: Cursors

    def list_notifications(
        self, principal: Principal, inbox: str, limit: int, cursor: str | None = None
    ) -> NotificationPage:
        """An inbox the principal reads, newest first; expired notifications are hidden
        (DynamoDB's TTL deletes them within days, not at once)."""
        recipient = self._recipient(principal, inbox)
        if not 1 <= limit <= 100:
            raise InvalidQuery([FieldError("limit", "must be an integer from 1 to 100")])
        scope = f"notifications|{principal.user_id}|{recipient}"
        now = self.clock.now()
        after = self.cursors.decode(scope, cursor, now) if cursor else None
        stored = self.inbox.list(recipient, limit=limit, after=after)
        last = stored.last_position
        return NotificationPage(
            items=tuple(
                n
                for n in stored.items
                if n.expires_at() > now and not self._own_request(principal, n)
            ),
            next_cursor=self.cursors.encode(scope, last, now) if last is not None else None,
        )

    def mark_read(self, principal: Principal, notification_id: str) -> Notification:
        """Mark one of the principal's notifications read (idempotent: the first time counts).
        A notification in the approvers' inbox is read for all of them: it is a shared one."""
        if is_ulid(notification_id):
            now = self.clock.now()
            for recipient in inboxes_of(principal):
                found = self.inbox.get(recipient, NotificationId(notification_id))
                if (
                    found is None
                    or found.expires_at() <= now
                    or self._own_request(principal, found)
                ):
                    continue
                marked = self.inbox.mark_read(recipient, found.id, now)
                if marked is not None:
                    return marked
        raise NotFound(f"notification {notification_id} not found")

    @staticmethod
    def _recipient(principal: Principal, inbox: str) -> str:
        if inbox not in INBOXES:
            raise InvalidQuery([FieldError("inbox", f"must be one of {', '.join(INBOXES)}")])
        shared = INBOXES[inbox]
        if shared is None:
            return user_inbox(principal.user_id)
        if shared not in inboxes_of(principal):
            raise Forbidden(f"only members of the '{Principal.APPROVERS}' group can do this")
        return shared

    @staticmethod
    def _own_request(principal: Principal, notification: Notification) -> bool:
        """An approver's own task in the approvers' inbox: they cannot decide it (the queue
        hides it from them too)."""
        return notification.recipient == APPROVERS_INBOX and notification.owner_id == (
            principal.user_id
        )
