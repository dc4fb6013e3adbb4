"""EventBridge: the publisher of domain events, and the workflow's callback (SendTaskSuccess).

Every event goes on the bus with source `tasks`, the event kind as `detail-type` and its JSON as
`detail`. PutEvents takes at most 10 entries and may accept some and refuse others; the
publisher returns the refused ones so the caller (the stream handler) can report exactly those
records for retry. botocore errors never leave this module.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from taskcore.errors import Unavailable
from taskcore.events import EVENT_SOURCE, Envelope

MAX_BATCH = 10


def _client(service: str, endpoint_url: str | None, region: str | None, retries: int) -> Any:
    local = endpoint_url is not None
    dummy = "local" if local else None  # None: the default credential chain (the role)
    return botocore.session.get_session().create_client(
        service,
        endpoint_url=endpoint_url,
        region_name=region or ("us-east-1" if local else None),
        config=Config(
            retries={"mode": "standard", "total_max_attempts": retries + 1},
            connect_timeout=5,
            read_timeout=10,
        ),
        aws_access_key_id=dummy,
        aws_secret_access_key=dummy,
    )


@attrs.define
class _LazyClient:
    service: str
    endpoint_url: str | None
    region: str | None
    retries: int = 3
    _client: Any = None
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = _client(
                        self.service, self.endpoint_url, self.region, self.retries
                    )
        return self._client


def _environment(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        "endpoint_url": environ.get("EVENTS_ENDPOINT") or None,
        "region": environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
    }


@attrs.define
class EventBridgePublisher:
    """`EventPublisher` on an EventBridge bus."""

    bus_name: str
    endpoint_url: str | None = None
    region: str | None = None
    _client: _LazyClient = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._client = _LazyClient("events", self.endpoint_url, self.region)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> EventBridgePublisher:
        return cls(environ["BUS_NAME"], **_environment(environ))

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


@attrs.define
class StepFunctionsCallback:
    """Tells a state machine waiting on a task token that its task is done."""

    endpoint_url: str | None = None
    region: str | None = None
    _client: _LazyClient = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._client = _LazyClient("stepfunctions", self.endpoint_url, self.region)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> StepFunctionsCallback:
        return cls(
            endpoint_url=environ.get("STEPFUNCTIONS_ENDPOINT") or None,
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
        )

    def succeed(self, token: str, output: Mapping[str, Any]) -> bool:
        """Send the task's result; False if the token is no longer valid (already answered,
        timed out, or its execution ended), which for us means there is nothing left to do."""
        try:
            self._client.get().send_task_success(taskToken=token, output=json.dumps(output))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
                return False
            raise Unavailable(f"Step Functions is unavailable ({code})") from error
        except BotoCoreError as error:
            raise Unavailable(f"Step Functions is unavailable ({error})") from error
        return True
