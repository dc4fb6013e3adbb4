"""The approval workflow's definition (Amazon States Language), built in Python.

Started by the `ApprovalRequested` event (the whole EventBridge event is the input), in the
seed's shape - validate, check priority, auto-approve or wait for a person, record, complete::

    Validate ─(a field missing)─> InvalidEvent (Fail)
    └─> CheckPriority ─(auto:<rule>)─> AutoApproved ─────────┐
        ├─(high/critical, pending)─> AskApprovers ─(decided)─┴─> RecordDecision ─> Complete
        │                            └─(timeout)─> AnnounceTimeout ─> TimedOut
        └─(otherwise)─> NoApprovalNeeded

1. `Validate` checks the event carries every field the workflow reads (`detail.taskId`,
   `detail.ownerId` and the task's `priority`, `approval`, `approvalDecidedBy`,
   `approvalDecidedAt`), else fails with `Approval.InvalidEvent`: a Choice on a missing path
   would fail the execution with a bare `States.Runtime` instead;
2. `CheckPriority`: a task an auto-approval rule approved (`approvalDecidedBy` `auto:<rule>`,
   `taskcore.auto_approval`) takes the auto path: nobody is asked, nothing waits; a high or
   critical task awaiting approval is asked for; anything else (a request that no longer
   holds) succeeds as `NoApprovalNeeded`;
3. `AskApprovers` puts `ApprovalTokenIssued` on the bus with its task token
   (`events:putEvents.waitForTaskToken`) and waits, at most the stack's approval timeout; a
   failed PutEvents is retried with backoff (a retry puts a new token, which the consumer
   keeps in place of the old). On a decision (SendTaskSuccess, sent once the API has recorded
   it, with `taskcore.services.decision_output`), it goes on to `RecordDecision`;
4. `AutoApproved` takes the decision from the event's task, in the same shape;
5. `RecordDecision` keeps `$.decision` as `{approval, decidedBy, decidedAt}` whichever path
   led there, and `Complete` ends the execution with it;
6. on timeout, `AnnounceTimeout` puts `ApprovalTimedOut` on the bus and the execution succeeds
   as `TimedOut`: a consumer expires the approval through taskcore, which cancels the task.

It holds no decision rules: who may decide, which rules approve, and what a decision or an
expiry does to the task, live in taskcore and are applied by the API and the consumers as
conditional writes; the workflow reads the outcome from the event. Only service integrations,
Choice, Pass, Succeed and Fail states are used, so the state machine needs no Lambda of its own,
and moto's Step Functions executor runs this exact definition in tests and on the local
platform.

No Pulumi import here: infra components and the local platform both call this function.
"""

from __future__ import annotations

from typing import Any

from taskcore.auto_approval import AUTO_PREFIX

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


TASK = "$.detail.task"
# Every path a later state reads: a Choice rule on a path the input lacks fails the execution
# with States.Runtime, so Validate checks them first and fails with a reason of its own.
REQUIRED = (
    "$.detail.taskId",
    "$.detail.ownerId",
    f"{TASK}.priority",
    f"{TASK}.approval",
    f"{TASK}.approvalDecidedBy",
    f"{TASK}.approvalDecidedAt",
)
INVALID_EVENT = "Approval.InvalidEvent"
AUTO_DECIDED_BY = f"{AUTO_PREFIX}*"  # what a rule's approval shows, as a StringMatches pattern


def _equals(path: str, value: str) -> dict[str, Any]:
    return {"Variable": path, "StringEquals": value}


def approval_definition(*, bus_name: str, timeout_seconds: int) -> dict[str, Any]:
    if timeout_seconds < 1:
        raise ValueError("the approval timeout must be at least one second")
    task = {"taskId.$": "$.detail.taskId", "ownerId.$": "$.detail.ownerId"}
    return {
        "Comment": "Approve a high or critical task by an auto-approval rule, or ask approvers "
        "for a decision; record it; expire the approval on timeout.",
        "StartAt": "Validate",
        "States": {
            "Validate": {
                "Type": "Choice",
                "Choices": [
                    {
                        "And": [{"Variable": path, "IsPresent": True} for path in REQUIRED],
                        "Next": "CheckPriority",
                    }
                ],
                "Default": "InvalidEvent",
            },
            "InvalidEvent": {
                "Type": "Fail",
                "Error": INVALID_EVENT,
                "Cause": "The ApprovalRequested event lacks a field the workflow reads: "
                + ", ".join(REQUIRED)
                + " (taskcore.serialization writes them all).",
            },
            "CheckPriority": {
                "Type": "Choice",
                "Choices": [
                    {
                        "And": [
                            _equals(f"{TASK}.approval", "approved"),
                            {"Variable": f"{TASK}.approvalDecidedBy", "IsString": True},
                            {
                                "Variable": f"{TASK}.approvalDecidedBy",
                                "StringMatches": AUTO_DECIDED_BY,
                            },
                        ],
                        "Next": "AutoApproved",
                    },
                    {
                        "And": [
                            _equals(f"{TASK}.approval", "pending"),
                            {
                                "Or": [
                                    _equals(f"{TASK}.priority", "high"),
                                    _equals(f"{TASK}.priority", "critical"),
                                ]
                            },
                        ],
                        "Next": "AskApprovers",
                    },
                ],
                "Default": "NoApprovalNeeded",
            },
            "NoApprovalNeeded": {"Type": "Succeed"},
            "AutoApproved": {
                "Type": "Pass",
                "Parameters": {
                    "approval.$": f"{TASK}.approval",
                    "decidedBy.$": f"{TASK}.approvalDecidedBy",
                    "decidedAt.$": f"{TASK}.approvalDecidedAt",
                },
                "ResultPath": "$.decision",
                "Next": "RecordDecision",
            },
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
                "Next": "RecordDecision",
            },
            # The decision's one shape, whichever path: what `decision_output` sends.
            "RecordDecision": {
                "Type": "Pass",
                "Parameters": {
                    "approval.$": "$.decision.approval",
                    "decidedBy.$": "$.decision.decidedBy",
                    "decidedAt.$": "$.decision.decidedAt",
                },
                "ResultPath": "$.decision",
                "Next": "Complete",
            },
            "Complete": {"Type": "Succeed"},
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
