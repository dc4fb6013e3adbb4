"""Test-only manifest entries: every trigger, permission and cold-start kind the components
support, so each code path runs under mocks whatever the real manifest holds today.

`definition` is a sample workflow's ASL (a pure function, as `stack.workflows`'s are): one Lambda
step, then an `events:putEvents`, then a wait bounded by the approval timeout.
"""

from __future__ import annotations

from typing import Any

from stack.cold_start import ColdStart
from stack.manifest import EventRule, Function, Route, StreamTrigger, Workflow
from stack.workflows import RETRY

SAMPLE_HTTP = Function(
    name="sample-http",
    handler="handlers.sample:http",
    description="A second HTTP function: its own integration, not the $default route",
    routes=(Route("GET", "/sample/{sampleId}"), Route("POST", "/sample/open", authorized=False)),
    permissions=frozenset({"table.read"}),
    environment={"TABLE_NAME": "table.name", "STAGE": "stage.name"},
    memory_mb=128,
)
SAMPLE_STREAM = Function(
    name="sample-stream",
    handler="handlers.sample:stream",
    description="A second stream consumer, with its own settings",
    stream=StreamTrigger(
        batch_size=10,
        max_batching_window_s=5,
        max_retries=5,
        max_record_age_s=600,
        bisect_on_error=True,
        starting_position="LATEST",
    ),
    permissions=frozenset({"table.stream", "queue.send"}),
)
SAMPLE_CONSUMER = Function(
    name="sample-consumer",
    handler="handlers.sample:consume",
    description="A rule target with two rules and most of the vocabulary",
    rules=(
        EventRule(name="sample-created", pattern={"source": ["tasks"], "detail-type": ["X"]}),
        EventRule(
            name="sample-nested",
            pattern={"source": ["tasks"], "detail": {"priority": ["high", "critical"]}},
            max_retries=2,
            max_event_age_s=120,
        ),
    ),
    permissions=frozenset(
        {"bucket.delete", "bucket.write", "bucket.presign", "bus.publish", "workflow.respond"}
    ),
    environment={"BUS_NAME": "bus.name", "TIMEOUT": "approval.timeout"},
    timeout_s=30,
    cold_start=ColdStart("provisioned", 2),
)
SAMPLE_STEP = Function(
    name="sample-step",
    handler="handlers.sample:step",
    description="A workflow step (invoked synchronously by Step Functions)",
    invoked_by_workflow=True,
    permissions=frozenset({"table.write"}),
    environment={"TABLE_NAME": "table.name", "CURSOR_SECRET_ARN": "cursor.secret_arn"},
    cold_start=ColdStart("snapstart"),
)
SAMPLE_FUNCTIONS = (SAMPLE_HTTP, SAMPLE_STREAM, SAMPLE_CONSUMER, SAMPLE_STEP)

SAMPLE_WORKFLOW = Workflow(
    name="sample",
    description="A sample workflow with a Lambda step and service integrations",
    definition="tests.infra.sample_manifest:definition",
    started_by=EventRule(
        name="sample-started", pattern={"source": ["tasks"], "detail-type": ["Sample"]}
    ),
    steps={"step_arn": "sample-step"},
    arguments={"bus_name": "bus.name", "timeout_seconds": "approval.timeout"},
    permissions=frozenset({"bus.publish", "table.write"}),
)


def definition(*, step_arn: str, bus_name: str, timeout_seconds: int) -> dict[str, Any]:
    return {
        "StartAt": "Step",
        "States": {
            "Step": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": step_arn, "Payload.$": "$"},
                "Retry": RETRY,
                "Next": "Announce",
            },
            "Announce": {
                "Type": "Task",
                "Resource": "arn:aws:states:::events:putEvents",
                "Parameters": {
                    "Entries": [{"EventBusName": bus_name, "Source": "s", "DetailType": "d"}]
                },
                "TimeoutSeconds": timeout_seconds,
                "Retry": RETRY,
                "End": True,
            },
        },
    }
