"""The reminder sweep: EventBridge's scheduled event in, `TaskDueSoon` events out to the bus.

The manifest's schedule (every 15 minutes, `stack/manifest.py`) invokes `sweep` with a
`Scheduled Event` whose `time` is when the rule fired: the run looks for the reminders that
became due before then (`taskcore.services.send_reminders`), so a retried or redriven run sees
what the original would have, and the local platform moves a run in time by giving it another
`time`. A run that fails is retried by Lambda, then goes to the function's failure queue; a
redriven run made on or after the due day sends nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import bootstrap, snapstart
from taskcore import services

logger = Logger(service="tasks-reminders")
metrics = Metrics(namespace="tasks", service="reminders")

snapstart.prepare(__name__, sweep=[bootstrap.due_tasks, bootstrap.event_publisher])


def scheduled_time(event: EventBridgeEvent) -> datetime:
    """When the run was scheduled: the event's `time` (ISO-8601, UTC, `Z`)."""
    moment = datetime.fromisoformat(event.time)
    if moment.utcoffset() is None:
        raise ValueError(f"the scheduled event's time {event.time!r} has no time zone")
    return moment


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_source(data_class=EventBridgeEvent)
def sweep(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    scheduled = scheduled_time(event)
    result = services.send_reminders(
        bootstrap.due_tasks(),
        bootstrap.event_publisher(),
        scheduled,
        received=bootstrap.clock().now(),
    )
    metrics.add_metric(name="RemindersSent", unit=MetricUnit.Count, value=result.published)
    summary = {
        "scheduledFor": event.time,
        "dueDate": result.due_date.isoformat(),
        "published": result.published,
        "late": result.late,
    }
    if result.late:
        logger.warning("a run made on its reminders' due day sends nothing", extra=summary)
    else:
        logger.info("reminders sent", extra=summary)
    return summary
