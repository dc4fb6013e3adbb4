"""The consumers' idempotency by event id: `DynamoEventMarkers`.

A marker is `pk = MARKER#<consumer>`, `sk = EVENT#<event id>`, written with a conditional put
and kept 7 days by TTL (longer than EventBridge retries an event): the put that succeeds is the
first delivery, a failed condition is a redelivery.
"""

from __future__ import annotations

from datetime import timedelta

import attrs

from taskcore.adapters.dynamodb.errors import ConditionFailed
from taskcore.adapters.dynamodb.table import TTL_ATTRIBUTE, TableClient, event_sk, marker_pk
from taskcore.ports import Clock
from taskcore.system import SystemClock

MARKER_TTL = timedelta(days=7)


@attrs.define
class DynamoEventMarkers:
    """`EventMarkers` on the table: a conditional put per (consumer, event id), kept 7 days
    (longer than EventBridge retries an event)."""

    table: TableClient
    clock: Clock = attrs.field(factory=SystemClock)

    def first_time(self, consumer: str, event_id: str) -> bool:
        expires = int((self.clock.now() + MARKER_TTL).timestamp())
        try:
            self.table.call(
                "put_item",
                Item={
                    "pk": {"S": marker_pk(consumer)},
                    "sk": {"S": event_sk(event_id)},
                    TTL_ATTRIBUTE: {"N": str(expires)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            return False  # seen before
        return True
