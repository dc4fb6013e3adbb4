"""Watch what reaches a running local platform's event bus: a rule on moto's EventBridge (the
bus the handlers publish to, through the platform's relay) copying the events of some detail
types to an SQS queue of the test's own. Shared by e2e tests; no test lives here."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import attrs

from local_platform.process import Platform

BUS = "tasks-local-bus"  # local_platform.platform's `bus.name`


def moto_client(platform: Platform, service: str) -> Any:
    """A client of the platform's moto server (`Platform.moto_client`)."""
    return platform.moto_client(service)


@attrs.define
class BusTap:
    """Every event of `detail_types` put on the bus from now on, as rules receive them."""

    platform: Platform
    detail_types: tuple[str, ...]
    _sqs: Any = None
    _queue: str = ""

    def __attrs_post_init__(self) -> None:
        name = f"tap-{uuid.uuid4().hex[:8]}"
        events, self._sqs = moto_client(self.platform, "events"), moto_client(self.platform, "sqs")
        self._queue = self._sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._queue, AttributeNames=["QueueArn"])
        pattern = {"source": ["tasks"], "detail-type": list(self.detail_types)}
        events.put_rule(Name=name, EventBusName=BUS, EventPattern=json.dumps(pattern))
        events.put_targets(
            Rule=name,
            EventBusName=BUS,
            Targets=[{"Id": name, "Arn": arn["Attributes"]["QueueArn"]}],
        )

    def received(self, at_least: int = 0, seconds: float = 10) -> list[dict[str, Any]]:
        """What the tap holds now (waiting up to `seconds` for `at_least` events), taken."""
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while True:
            batch = self._sqs.receive_message(
                QueueUrl=self._queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in batch:
                events.append(json.loads(message["Body"]))
                self._sqs.delete_message(
                    QueueUrl=self._queue, ReceiptHandle=message["ReceiptHandle"]
                )
            if not batch and (len(events) >= at_least or time.monotonic() > deadline):
                return events
            if not batch:
                time.sleep(0.1)
