"""The DynamoDB stream publisher: committed changes in, domain events out to EventBridge.

For each stream record (NEW_AND_OLD_IMAGES), taskcore compares the task's old and new image
and derives the events (`derive_events`); export records yield `ExportRequested`; other items
(idempotency records, stats, markers) yield nothing, and neither do TTL deletions. Events are
published in batches of at most 10. A record whose events were not all accepted, or whose image
cannot be read, is reported in `batchItemFailures`: Lambda then retries from that record (the
mapping bisects a failing batch and sends what still fails to its on-failure queue), and
consumers are idempotent by event id, so redelivery is safe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import bootstrap
from taskcore.adapters.dynamodb import task_from_image
from taskcore.adapters.eventbridge import MAX_BATCH
from taskcore.events import Envelope, derive_events, export_requested
from taskcore.ports import EventPublisher
from taskcore.serialization import envelope

logger = Logger(service="tasks-stream")
metrics = Metrics(namespace="tasks", service="stream")

TTL_PRINCIPAL = "dynamodb.amazonaws.com"


def _key(image: Mapping[str, Any], name: str) -> str:
    return str(image.get(name, {}).get("S", ""))


def envelopes_for(record: Mapping[str, Any]) -> list[Envelope]:
    """The events one stream record means (raises if its images cannot be read)."""
    change = record["dynamodb"]
    identity = record.get("userIdentity") or {}
    if identity.get("type") == "Service" and identity.get("principalId") == TTL_PRINCIPAL:
        return []  # TTL expiry of an idempotency record or marker: not a domain change
    keys = change.get("Keys") or {}
    sort_key = _key(keys, "sk")
    if sort_key.startswith("TASK#"):
        old = task_from_image(change["OldImage"]) if "OldImage" in change else None
        new = task_from_image(change["NewImage"]) if "NewImage" in change else None
        seconds = change.get("ApproximateCreationDateTime")
        occurred = datetime.fromtimestamp(float(seconds), UTC) if seconds else datetime.now(UTC)
        return [envelope(event) for event in derive_events(old, new, occurred)]
    if sort_key.startswith("EXPORT#") and record.get("eventName") == "INSERT":
        owner = _key(keys, "pk").removeprefix("USER#")
        return [export_requested(owner, sort_key.removeprefix("EXPORT#"))]
    return []


def publish_records(records: Sequence[Mapping[str, Any]], publisher: EventPublisher) -> list[str]:
    """Publish every record's events in order, ≤ 10 per call; return the sequence numbers of
    the records that must be retried (their events were refused, or they could not be read)."""
    failed: list[str] = []
    pending: list[tuple[str, Envelope]] = []

    def flush() -> None:
        refused = {e.event_id for e in publisher.publish([e for _, e in pending])}
        failed.extend(dict.fromkeys(seq for seq, e in pending if e.event_id in refused))
        pending.clear()

    for record in records:
        sequence = str(record["dynamodb"]["SequenceNumber"])
        try:
            events = envelopes_for(record)
        except (KeyError, ValueError, TypeError) as error:
            logger.error(
                "unreadable stream record", extra={"sequence": sequence, "error": str(error)}
            )
            failed.append(sequence)
            continue
        for event in events:
            if len(pending) == MAX_BATCH:
                flush()
            pending.append((sequence, event))
    if pending:
        flush()
    return list(dict.fromkeys(failed))


@logger.inject_lambda_context
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    failed = publish_records(records, bootstrap.event_publisher())
    metrics.add_metric(name="StreamRecords", unit=MetricUnit.Count, value=len(records))
    if failed:
        metrics.add_metric(name="StreamRecordsFailed", unit=MetricUnit.Count, value=len(failed))
        logger.warning("records to retry", extra={"sequences": failed})
    # Lambda retries from the lowest reported sequence number: report them all, in order.
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}
