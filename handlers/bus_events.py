"""What a consumer reads from the bus: the domain event inside an EventBridge event.

A module of its own, with no handler's Logger, Metrics or SnapStart declarations: the
notifications and approval functions use it without importing the consumers' module (and,
with it, the archiver's imports) in their cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taskcore.events import Event
from taskcore.serialization import event_from_json

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

__all__ = ["domain_event"]


def domain_event(bus_event: EventBridgeEvent) -> Event:
    """The domain event inside an EventBridge event (detail-type = kind, detail = JSON)."""
    return event_from_json({**bus_event.detail, "type": bus_event.detail_type})
