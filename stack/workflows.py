"""The approval workflow's definition (Amazon States Language), built in Python.

Started by the `ApprovalRequested` event (the whole EventBridge event is the input), it:

1. asks: puts `ApprovalTokenIssued` on the bus with its task token
   (`events:putEvents.waitForTaskToken`) and waits, at most the stack's approval timeout; a
   failed PutEvents is retried with backoff (a retry puts a new token, which the consumer
   keeps in place of the old);
2. on a decision (SendTaskSuccess, sent once the API has recorded it), succeeds with it;
3. on timeout, puts `ApprovalTimedOut` on the bus and succeeds: a consumer expires the approval
   through taskcore, which cancels the task.

It holds no decision rules: who may decide, and what a decision or an expiry does to the task,
live in taskcore and are applied by the API and the consumers as conditional writes. Only
service integrations are used, so the state machine needs no Lambda of its own, and moto's
Step Functions executor runs this exact definition in tests and on the local platform.

No Pulumi import here: infra components and the local platform both call this function.
"""

from __future__ import annotations

from typing import Any

WORKFLOW_SOURCE = "tasks.workflow"
TOKEN_ISSUED = "ApprovalTokenIssued"
TIMED_OUT = "ApprovalTimedOut"


def _put(bus_name: str, detail_type: str, detail: dict[str, str]) -> dict[str, Any]:
    return {
        "Entries": [
            {
                "EventBusName": bus_name,
                "Source": WORKFLOW_SOURCE,
                "DetailType": detail_type,
                "Detail": detail,
            }
        ]
    }


# Every Task state retries a failed PutEvents: throttling and service errors reach the state
# machine as task failures (`EventBridge.FailedEntry` when EventBridge refused an entry), and
# `States.TaskFailed` matches them all but `States.Timeout`, which the waiting step catches.
# Nothing sends SendTaskFailure, so a retry never repeats a refusal. Backoff: 2, 4, 8, 16, 32 s
# (capped at 60, with full jitter so throttled executions do not retry in step).
RETRY = [
    {
        "ErrorEquals": ["States.TaskFailed"],
        "IntervalSeconds": 2,
        "MaxAttempts": 6,
        "BackoffRate": 2.0,
        "MaxDelaySeconds": 60,
        "JitterStrategy": "FULL",
    }
]


def approval_definition(*, bus_name: str, timeout_seconds: int) -> dict[str, Any]:
    if timeout_seconds < 1:
        raise ValueError("the approval timeout must be at least one second")
    task = {"taskId.$": "$.detail.taskId", "ownerId.$": "$.detail.ownerId"}
    return {
        "Comment": "Ask approvers for a decision on a high or critical task; expire it on timeout.",
        "StartAt": "AskApprovers",
        "States": {
            "AskApprovers": {
                "Type": "Task",
                "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
                "Parameters": _put(
                    bus_name, TOKEN_ISSUED, {**task, "taskToken.$": "$$.Task.Token"}
                ),
                "TimeoutSeconds": timeout_seconds,
                "Retry": RETRY,
                "ResultPath": "$.decision",
                "Catch": [
                    {
                        "ErrorEquals": ["States.Timeout"],
                        "ResultPath": "$.timeout",
                        "Next": "AnnounceTimeout",
                    }
                ],
                "Next": "Decided",
            },
            "Decided": {"Type": "Succeed"},
            "AnnounceTimeout": {
                "Type": "Task",
                "Resource": "arn:aws:states:::events:putEvents",
                "Parameters": _put(bus_name, TIMED_OUT, task),
                "Retry": RETRY,
                "ResultPath": "$.announced",
                "Next": "TimedOut",
            },
            "TimedOut": {"Type": "Succeed"},
        },
    }
