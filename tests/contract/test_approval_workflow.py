"""The approval state machine's real definition, executed by moto's Step Functions executor,
wired to the real adapters (DynamoDB approval record, SendTaskSuccess) and the real handlers.

The bus is moto's EventBridge with a rule that copies every workflow event to an SQS queue the
test reads, as the local platform does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import boto3
import pytest
from moto import mock_aws

from handlers import approvals, bootstrap
from local_platform.lambda_runtime import handler_context
from stack.manifest import APPROVAL_DECIDED, APPROVAL_TIMEOUT, APPROVAL_TOKEN
from stack.workflows import WORKFLOW_SOURCE, approval_definition
from taskcore.adapters.approvals import DynamoApprovalWorkflow
from taskcore.adapters.dynamodb import (
    DynamoStatsStore,
    DynamoTaskRepository,
    TableClient,
    create_table,
)
from taskcore.adapters.stepfunctions import StepFunctionsCallback
from taskcore.commands import CreateTask
from taskcore.cursors import CursorCodec
from taskcore.errors import Forbidden, NotFound
from taskcore.events import ApprovalRequested, derive_events
from taskcore.model import Decision, Priority, Task
from taskcore.serialization import envelope
from taskcore.services import TaskService
from taskcore.system import SystemClock
from taskcore.testing import InMemoryAttachmentStore, SequentialIds, principal
from tests.handlers.bus import bus_event

ALICE, BOB = principal("alice"), principal("bob", "approvers")
ROLE = "arn:aws:iam::123456789012:role/approval"


@attrs.define
class Rig:
    service: TaskService
    sfn: Any
    sqs: Any
    queue: str
    approvals: DynamoApprovalWorkflow

    def start(self, task: Task, timeout_seconds: int) -> str:
        definition = approval_definition(bus_name="bus", timeout_seconds=timeout_seconds)
        machine = self.sfn.create_state_machine(
            name=f"approval-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
        )["stateMachineArn"]
        (requested,) = [
            e
            for e in derive_events(None, task, task.created_at)
            if isinstance(e, ApprovalRequested)
        ]
        started = self.sfn.start_execution(
            stateMachineArn=machine, input=json.dumps(bus_event(envelope(requested)))
        )
        return str(started["executionArn"])

    def next_event(self, detail_type: str, wait_s: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for message in self.sqs.receive_message(
                QueueUrl=self.queue, MaxNumberOfMessages=10
            ).get("Messages", []):
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
                body = json.loads(message["Body"])
                if body["detail-type"] == detail_type:
                    return dict(body)
            time.sleep(0.1)
        raise AssertionError(f"no {detail_type} event within {wait_s} s")

    def finished(self, execution: str, wait_s: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            described = self.sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                return dict(described)
            time.sleep(0.1)
        raise AssertionError("the execution is still running")

    def deliver_stream_events(self, before: Task, after: Task) -> list[dict[str, Any]]:
        """What the stream handler would publish for this change, run through the consumer."""
        return [
            approvals.decided(bus_event(envelope(e)), handler_context(APPROVAL_DECIDED))
            for e in derive_events(before, after, after.updated_at)
            if e.kind == "ApprovalDecided"
        ]


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        table = f"approvals-{uuid.uuid4().hex[:8]}"
        create_table(boto3.client("dynamodb"), table)
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name="bus")
        queue = sqs.create_queue(QueueName="workflow-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="workflow",
            EventBusName="bus",
            EventPattern=json.dumps({"source": [WORKFLOW_SOURCE]}),
        )
        events.put_targets(Rule="workflow", EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}])
        repository = DynamoTaskRepository(table, region="us-east-1")
        approvals = DynamoApprovalWorkflow(
            TableClient(table, region="us-east-1"), StepFunctionsCallback(region="us-east-1")
        )
        service = TaskService(
            tasks=repository,
            stats=DynamoStatsStore(table, region="us-east-1"),
            attachments=InMemoryAttachmentStore(),
            clock=SystemClock(),
            ids=SequentialIds(),
            cursors=CursorCodec(b"k" * 32),
        )
        monkeypatch.setattr(bootstrap, "approval_workflow", lambda: approvals)
        monkeypatch.setattr(bootstrap, "task_repository", lambda: repository)
        monkeypatch.setattr(bootstrap, "clock", SystemClock)
        yield Rig(service, boto3.client("stepfunctions"), sqs, queue, approvals)


def high_task(rig: Rig) -> Task:
    return rig.service.create_task(ALICE, CreateTask(title="ship", priority=Priority.CRITICAL)).task


class TestApprovalWorkflow:
    @pytest.mark.parametrize(
        ("decision", "outcome"), [(Decision.APPROVE, "approved"), (Decision.REJECT, "rejected")]
    )
    def test_decision_releases_the_workflow(
        self, rig: Rig, decision: Decision, outcome: str
    ) -> None:
        task = high_task(rig)
        execution = rig.start(task, timeout_seconds=300)
        token_event = rig.next_event("ApprovalTokenIssued")
        assert (
            approvals.token_issued(token_event, handler_context(APPROVAL_TOKEN))["released"]
            is False
        )
        decided = rig.service.decide_approval(BOB, task.id, decision)
        assert rig.deliver_stream_events(task, decided) == [{"taskId": task.id, "released": True}]
        finished = rig.finished(execution)
        assert finished["status"] == "SUCCEEDED"
        assert json.loads(finished["output"])["decision"] == {
            "approval": outcome,
            "decidedBy": "bob",
            "decidedAt": decided.approval_decided_at.isoformat()
            if decided.approval_decided_at
            else "",
        }

    def test_decision_before_the_token_still_releases(self, rig: Rig) -> None:
        task = high_task(rig)
        decided = rig.service.decide_approval(BOB, task.id, Decision.APPROVE)
        execution = rig.start(task, timeout_seconds=300)
        assert rig.deliver_stream_events(task, decided) == [{"taskId": task.id, "released": False}]
        token_event = rig.next_event("ApprovalTokenIssued")
        issued = approvals.token_issued(token_event, handler_context(APPROVAL_TOKEN))
        assert issued["released"] is True
        assert rig.finished(execution)["status"] == "SUCCEEDED"

    def test_timeout_expires_the_approval_and_cancels_the_task(self, rig: Rig) -> None:
        task = high_task(rig)
        execution = rig.start(task, timeout_seconds=1)
        timed_out = rig.next_event("ApprovalTimedOut")
        assert approvals.timed_out(timed_out, handler_context(APPROVAL_TIMEOUT))["expired"] is True
        stored = rig.service.tasks.get(task.owner_id, task.id)
        assert stored is not None
        assert (stored.approval, stored.status) == ("expired", "cancelled")
        finished = rig.finished(execution)
        assert (finished["status"], json.loads(finished["output"])["timeout"]["Error"]) == (
            "SUCCEEDED",
            "States.Timeout",
        )
        with pytest.raises(NotFound):  # too late to decide
            rig.service.decide_approval(BOB, task.id, Decision.APPROVE)

    def test_owner_cannot_approve_and_the_workflow_keeps_waiting(self, rig: Rig) -> None:
        task = rig.service.create_task(BOB, CreateTask(title="mine", priority=Priority.HIGH)).task
        execution = rig.start(task, timeout_seconds=300)
        approvals.token_issued(
            rig.next_event("ApprovalTokenIssued"), handler_context(APPROVAL_TOKEN)
        )
        with pytest.raises(Forbidden):
            rig.service.decide_approval(BOB, task.id, Decision.APPROVE)
        assert rig.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"

    def test_a_second_decision_is_refused_and_releases_nothing(self, rig: Rig) -> None:
        task = high_task(rig)
        execution = rig.start(task, timeout_seconds=300)
        approvals.token_issued(
            rig.next_event("ApprovalTokenIssued"), handler_context(APPROVAL_TOKEN)
        )
        decided = rig.service.decide_approval(BOB, task.id, Decision.APPROVE)
        rig.deliver_stream_events(task, decided)
        assert rig.finished(execution)["status"] == "SUCCEEDED"
        with pytest.raises(NotFound):
            rig.service.decide_approval(principal("carol", "approvers"), task.id, Decision.REJECT)
        # A redelivered ApprovalDecided finds the token already used: nothing more to release.
        assert rig.deliver_stream_events(task, decided) == [{"taskId": task.id, "released": False}]
