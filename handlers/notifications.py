"""The notifications consumer: EventBridge delivers one event per invocation (an approval
requested or decided, a task due tomorrow); each notification it means is stored in its
recipient's inbox and published to the topic, once however often the event comes
(`taskcore.services.deliver_notifications`). A failure raises: EventBridge and Lambda retry,
then the event goes to the rule's dead-letter queue, where nothing is lost.
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

logger = Logger(service="tasks-notifications")
metrics = Metrics(namespace="tasks", service="notifications")

snapstart.prepare(__name__, notify=[bootstrap.inbox, bootstrap.notification_channel])


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics(raise_on_empty_metrics=False)
@event_source(data_class=EventBridgeEvent)
def notify(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    domain = domain_event(event)
    deliveries = services.deliver_notifications(
        bootstrap.inbox(), bootstrap.notification_channel(), bootstrap.clock(), domain
    )
    published = sum(d.published for d in deliveries)
    if published:
        metrics.add_metric(name="NotificationsSent", unit=MetricUnit.Count, value=published)
    for delivery in deliveries:
        note = delivery.notification
        logger.info(
            "notification",
            extra={
                "notificationId": note.id,
                "recipient": note.recipient,
                "kind": note.kind.value,
                "published": delivery.published,
            },
        )
    return {
        "eventId": domain.event_id,
        "notifications": [d.notification.id for d in deliveries],
        "published": published,
    }
