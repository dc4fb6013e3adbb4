"""The DynamoDB stream publisher: committed changes in, domain events out to EventBridge.

For each stream record (NEW_AND_OLD_IMAGES), the table's adapter says what changed
(`taskcore.adapters.dynamodb.stream.decode_record`): for a task, taskcore compares its old and
new image and derives the events (`derive_events`); a new export record yields
`ExportRequested`; other items (idempotency records, stats, markers) yield nothing. A task the
table's TTL removed (its `userIdentity` says so) was archived, not deleted: `TaskArchived`,
carrying the task from the old image; TTL removals of any other item yield nothing either.
Records are read with Powertools' `DynamoDBRecord`. Events are
published in batches of at most 10. A record whose events were not all accepted, or whose image
cannot be read, is reported in `batchItemFailures`: Lambda then retries from that record (the
mapping bisects a failing batch and sends what still fails to its on-failure queue), and
consumers are idempotent by event id, so redelivery is safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import bootstrap, snapstart
from taskcore.adapters.dynamodb.stream import ExportRequest, TaskChange, decode_record
from taskcore.adapters.eventbridge import MAX_BATCH
from taskcore.events import Envelope, derive_events, export_requested
from taskcore.ports import EventPublisher
from taskcore.serialization import envelope

logger = Logger(service="tasks-stream")
metrics = Metrics(namespace="tasks", service="stream")

snapstart.prepare(__name__, handler=[bootstrap.event_publisher])


def envelopes_for(record: dict[str, Any]) -> list[Envelope]:
    """The events one stream record means (raises if its images cannot be read)."""
    return _envelopes(DynamoDBRecord(record))


def _envelopes(record: DynamoDBRecord) -> list[Envelope]:
    change = decode_record(record)
    if isinstance(change, TaskChange):
        events = derive_events(change.old, change.new, _occurred(record), expired=change.expired)
        return [envelope(event) for event in events]
    if isinstance(change, ExportRequest):
        return [export_requested(change.owner_id, change.export_id)]
    return []


def _occurred(record: DynamoDBRecord) -> datetime:
    """When the change was made. Read raw: Powertools' `approximate_creation_date_time` drops
    the fraction of a second."""
    seconds = record["dynamodb"].get("ApproximateCreationDateTime")
    return datetime.fromtimestamp(float(seconds), UTC) if seconds else datetime.now(UTC)


def _sequence(record: DynamoDBRecord) -> str:
    """The record's sequence number, what `batchItemFailures` reports."""
    change = record.dynamodb
    if change is None or change.sequence_number is None:
        raise KeyError("SequenceNumber")  # not a stream record: the whole batch fails
    return str(change.sequence_number)


def publish_records(records: Sequence[dict[str, Any]], publisher: EventPublisher) -> list[str]:
    """Publish every record's events in order, ≤ 10 per call; return the sequence numbers of
    the records that must be retried (their events were refused, or they could not be read)."""
    failed: list[str] = []
    pending: list[tuple[str, Envelope]] = []

    def flush() -> None:
        refused = {e.event_id for e in publisher.publish([e for _, e in pending])}
        failed.extend(dict.fromkeys(seq for seq, e in pending if e.event_id in refused))
        pending.clear()

    for raw in records:
        record = DynamoDBRecord(raw)
        sequence = _sequence(record)
        try:
            events = _envelopes(record)
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
