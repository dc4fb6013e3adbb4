"""EventBridge: the publisher of domain events.

Every event goes on the bus with source `tasks`, the event kind as `detail-type` and its JSON as
`detail`. PutEvents takes at most 10 entries and may accept some and refuse others; the
publisher returns the refused ones so the caller (the stream handler) can report exactly those
records for retry. botocore errors never leave this module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from taskcore.adapters import clients
from taskcore.errors import Unavailable
from taskcore.events import EVENT_SOURCE, Envelope

MAX_BATCH = 10


@attrs.define
class EventBridgePublisher:
    """`EventPublisher` on an EventBridge bus."""

    bus_name: str
    endpoint_url: str | None = None
    region: str | None = None
    _client: clients.LazyClient = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._client = clients.LazyClient("events", self.endpoint_url, self.region)

    @property
    def client(self) -> Any:
        return self._client.get()

    def entry(self, envelope: Envelope) -> dict[str, Any]:
        return {
            "EventBusName": self.bus_name,
            "Source": EVENT_SOURCE,
            "DetailType": envelope.detail_type,
            "Detail": json.dumps(envelope.detail, separators=(",", ":")),
        }

    def publish(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        if len(envelopes) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} events, not {len(envelopes)}")
        if not envelopes:
            return []
        try:
            response = self.client.put_events(Entries=[self.entry(e) for e in envelopes])
        except (ClientError, BotoCoreError) as error:
            raise Unavailable(f"the event bus is unavailable ({error})") from error
        if not response.get("FailedEntryCount"):
            return []
        # Entries answer in request order; a failed one carries an ErrorCode.
        return [
            e for e, r in zip(envelopes, response["Entries"], strict=True) if r.get("ErrorCode")
        ]
