"""EventBridge events as the bus delivers them to a Lambda target."""

from __future__ import annotations

import uuid
from typing import Any

from taskcore.events import Envelope


def bus_event(envelope: Envelope, source: str = "tasks") -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": envelope.detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2030-01-01T09:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": dict(envelope.detail),
    }
