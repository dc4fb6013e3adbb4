"""The approval handlers: the Lambda steps of the approval state machine, each triggered by an
event on the bus.

The state machine (stack/workflows.py) asks for a decision with a task token and waits; these
functions connect it to the domain: remember the token, release the workflow once the decision
is known (the token and the decision may arrive in either order), and expire the approval when
the workflow's timeout fires. Every state change goes through taskcore's rules, as conditional
writes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from handlers import bootstrap, snapstart
from handlers.bus_events import domain_event
from taskcore import services
from taskcore.model import TaskId, UserId

logger = Logger(service="tasks-approvals")

snapstart.prepare(
    __name__,
    token_issued=[bootstrap.approval_workflow],
    decided=[bootstrap.approval_workflow],
    timed_out=[bootstrap.task_repository, bootstrap.clock],
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@event_source(data_class=EventBridgeEvent)
def token_issued(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """`ApprovalTokenIssued`, put on the bus by the state machine's waiting step."""
    detail = event.detail
    released = bootstrap.approval_workflow().token_issued(
        UserId(detail["ownerId"]), TaskId(detail["taskId"]), detail["taskToken"]
    )
    return {"taskId": detail["taskId"], "released": released}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@event_source(data_class=EventBridgeEvent)
def decided(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """`ApprovalDecided` (from the stream): release the workflow waiting on that task."""
    domain = domain_event(event)
    released = services.resume_workflow(bootstrap.approval_workflow(), domain)
    return {"taskId": domain.task_id, "released": released}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@event_source(data_class=EventBridgeEvent)
def timed_out(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    """`ApprovalTimedOut`, put on the bus by the state machine when its wait times out."""
    detail = event.detail
    expired = services.expire_approval(
        bootstrap.task_repository(),
        bootstrap.clock(),
        UserId(detail["ownerId"]),
        TaskId(detail["taskId"]),
    )
    return {"taskId": detail["taskId"], "expired": expired is not None}
