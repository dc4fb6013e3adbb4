"""The export worker: an `ExportRequested` event off the bus in, one NDJSON object in S3 out.

The event comes from an EventBridge rule (see `stack.manifest.EXPORTS`), which the stream
handler feeds when an export record is inserted; its detail names the export and its owner
(`{"exportId": ..., "ownerId": ...}`), taken from the record's keys. Delivery is at least once,
so `ExportService.run_export` is idempotent: a redelivered event for a running or completed
export does nothing. A failed run is recorded and raised again, so Lambda retries it (from
scratch) until the export is out of attempts.

An event that is not a well-formed `ExportRequested` is logged, counted (`MalformedEvents`)
and dropped: no retry can make it valid.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import attrs
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import bootstrap, snapstart
from taskcore.events import EVENT_SOURCE, EXPORT_REQUESTED
from taskcore.model import ExportId, UserId
from taskcore.services import ExportService, is_ulid

warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)

logger = Logger(service="tasks-exports")
metrics = Metrics(namespace="tasks", service="exports")

snapstart.prepare(__name__, worker=[bootstrap.export_service])


class MalformedEvent(ValueError):
    """Not an `ExportRequested` event this worker can act on."""


@attrs.frozen
class ExportRequest:
    owner_id: UserId
    export_id: ExportId


def parse_event(event: object) -> ExportRequest:
    if not isinstance(event, Mapping):
        raise MalformedEvent("the event is not a JSON object")
    if event.get("source") != EVENT_SOURCE or event.get("detail-type") != EXPORT_REQUESTED:
        raise MalformedEvent(f"not an {EXPORT_REQUESTED} event from source {EVENT_SOURCE!r}")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEvent("the event has no detail object")
    export_id, owner_id = detail.get("exportId"), detail.get("ownerId")
    if not isinstance(export_id, str) or not is_ulid(export_id):
        raise MalformedEvent("detail.exportId must be a ULID")
    if not isinstance(owner_id, str) or not owner_id:
        raise MalformedEvent("detail.ownerId must be a non-empty string")
    return ExportRequest(UserId(owner_id), ExportId(export_id))


def handle(event: object, context: LambdaContext, service: ExportService) -> dict[str, Any]:
    """Parse, run, report. What the function returns is for logs and tests only: an
    asynchronous invocation's result goes nowhere."""
    try:
        request = parse_event(event)
    except MalformedEvent as error:
        logger.error("malformed export event dropped", extra={"reason": str(error)})
        metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1)
        return {"status": "ignored", "reason": str(error)}
    logger.append_keys(export_id=request.export_id)

    def remaining_s() -> float:
        return context.get_remaining_time_in_millis() / 1000

    try:
        export = service.run_export(request.owner_id, request.export_id, remaining_s)
    except Exception:
        logger.exception("export failed; recorded as failed, raised for a retry")
        metrics.add_metric(name="ExportsFailed", unit=MetricUnit.Count, value=1)
        raise
    if export is None:
        logger.info("nothing to do: unknown, completed, running elsewhere or out of retries")
        return {"exportId": request.export_id, "status": "skipped"}
    metrics.add_metric(name="ExportsCompleted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="TasksExported", unit=MetricUnit.Count, value=export.items_written)
    logger.info(
        "export completed",
        extra={"items": export.items_written, "bytes": export.bytes_written},
    )
    return {
        "exportId": export.id,
        "status": export.status.value,
        "itemsWritten": export.items_written,
        "bytesWritten": export.bytes_written,
    }


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)
def worker(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, Mapping):
        logger.set_correlation_id(event.get("id"))  # the EventBridge event id
    return handle(event, context, bootstrap.export_service())
