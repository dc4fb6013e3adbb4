"""Event consumers: EventBridge delivers one domain event per invocation.

Each is idempotent by `event_id`: stats apply an event once (a marker item written in the same
transaction as the counters); attachment clean-up finds nothing the second time; completion
metrics are emitted once per event (a marker item); the archiver finds the task already in its
month's object and writes nothing. A consumer that raises is retried by EventBridge and Lambda,
then its event goes to the rule's dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import bootstrap, snapstart
from handlers.bus_events import domain_event
from taskcore import services
from taskcore.events import TaskArchived, TaskCompleted

logger = Logger(service="tasks-consumers")
metrics = Metrics(namespace="tasks", service="consumers")

# Four functions serve from this module, each with the one adapter it uses.
snapstart.prepare(
    __name__,
    record_stats=[bootstrap.stats_store],
    remove_attachments=[bootstrap.attachment_store],
    completion_metrics=[bootstrap.event_markers],
    archive_task=[bootstrap.archive_service],
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@event_source(data_class=EventBridgeEvent)
def record_stats(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    domain = domain_event(event)
    applied = services.record_stats(bootstrap.stats_store(), domain)
    return {"eventId": domain.event_id, "applied": applied}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@event_source(data_class=EventBridgeEvent)
def remove_attachments(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    domain = domain_event(event)
    removed = services.remove_attachments(bootstrap.attachment_store(), domain)
    logger.info("attachments removed", extra={"taskId": domain.task_id, "removed": removed})
    return {"eventId": domain.event_id, "removed": removed}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_source(data_class=EventBridgeEvent)
def completion_metrics(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    domain = domain_event(event)
    completed_at = domain.task.completed_at
    if not isinstance(domain, TaskCompleted) or completed_at is None:
        return {"eventId": domain.event_id, "emitted": False}
    if not bootstrap.event_markers().first_time("completion-metrics", domain.event_id):
        return {"eventId": domain.event_id, "emitted": False}
    seconds = (completed_at - domain.task.created_at).total_seconds()
    metrics.add_dimension(name="priority", value=domain.task.priority.value)
    metrics.add_metric(name="TasksCompleted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="TimeToComplete", unit=MetricUnit.Seconds, value=seconds)
    return {"eventId": domain.event_id, "emitted": True}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_source(data_class=EventBridgeEvent)
def archive_task(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """A task the table's TTL removed goes to its owner's month in the archive, once: a
    redelivered event finds it there. A failure (S3 down, too many writers of one month at
    once) raises: Lambda retries, then the rule's dead-letter queue keeps the event."""
    domain = domain_event(event)
    if not isinstance(domain, TaskArchived):
        return {"eventId": domain.event_id, "archived": False}
    archived = bootstrap.archive_service().archive(domain.task)
    if archived:
        metrics.add_metric(name="TasksArchived", unit=MetricUnit.Count, value=1)
    logger.info("task archived", extra={"taskId": domain.task_id, "written": archived})
    return {"eventId": domain.event_id, "archived": archived}
