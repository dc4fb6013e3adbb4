"""The approval state machine's real definition, executed by moto's Step Functions executor,
wired to the real adapters (DynamoDB approval record, SendTaskSuccess) and the real handlers.

The bus is moto's EventBridge with a rule that copies every workflow event to an SQS queue the
test reads, as the local platform does. moto's executor (moto 5.2) runs every state the
definition uses: Choice with IsPresent, IsString, StringMatches, And and Or; Pass with
Parameters; Fail; Succeed; and the EventBridge integrations.
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
from taskcore.adapters.dynamodb.table import approval_sk, user_pk
from taskcore.adapters.stepfunctions import StepFunctionsCallback
from taskcore.auto_approval import AutoApprovalRule
from taskcore.commands import CreateTask, UpdateTask
from taskcore.cursors import CursorCodec
from taskcore.errors import Forbidden, NotFound
from taskcore.events import ApprovalRequested, derive_events
from taskcore.model import Decision, Priority, Task
from taskcore.serialization import envelope, task_to_json
from taskcore.services import TaskService, decision_output
from taskcore.system import SystemClock
from taskcore.testing import InMemoryAttachmentStore, SequentialIds, principal
from tests.handlers.bus import bus_event

ALICE, BOB = principal("alice"), principal("bob", "approvers")
LEE = principal("lee", "leads")
LEADS = AutoApprovalRule(name="leads", priorities=["high"], groups=["leads"])
ROLE = "arn:aws:iam::123456789012:role/approval"


@attrs.define
class Rig:
    service: TaskService
    sfn: Any
    sqs: Any
    queue: str
    approvals: DynamoApprovalWorkflow

    def start(self, task: Task, timeout_seconds: int, before: Task | None = None) -> str:
        """The workflow the change `before` -> `task` starts (`before` None: a creation)."""
        (requested,) = [
            e
            for e in derive_events(before, task, task.updated_at)
            if isinstance(e, ApprovalRequested)
        ]
        return self.start_with(bus_event(envelope(requested)), timeout_seconds)

    def start_with(self, event: dict[str, Any], timeout_seconds: int = 300) -> str:
        definition = approval_definition(bus_name="bus", timeout_seconds=timeout_seconds)
        machine = self.sfn.create_state_machine(
            name=f"approval-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
        )["stateMachineArn"]
        started = self.sfn.start_execution(stateMachineArn=machine, input=json.dumps(event))
        return str(started["executionArn"])

    def states_entered(self, execution: str) -> list[str]:
        """The states the execution entered, in order (its history)."""
        history = self.sfn.get_execution_history(executionArn=execution)["events"]
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in history
            if "stateEnteredEventDetails" in e
        ]

    def no_event(self, detail_type: str, wait_s: float = 2) -> bool:
        try:
            self.next_event(detail_type, wait_s)
        except AssertionError:
            return True
        return False

    def approval_record(self, task: Task) -> dict[str, Any] | None:
        item = self.approvals.table.call(
            "get_item",
            Key={"pk": {"S": user_pk(task.owner_id)}, "sk": {"S": approval_sk(task.id)}},
        )
        return item.get("Item")

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

    def deliver_stream_events(self, before: Task | None, after: Task) -> list[dict[str, Any]]:
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
            "decidedAt": task_to_json(decided)["approvalDecidedAt"],
        }
        assert rig.states_entered(execution) == [
            "Validate",
            "CheckPriority",
            "AskApprovers",
            "RecordDecision",
            "Complete",
        ]

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


class TestAutoApprovedWorkflow:
    """A task an auto-approval rule approved runs the same workflow, down its auto path."""

    @pytest.fixture
    def service(self, rig: Rig) -> TaskService:
        return attrs.evolve(rig.service, auto_approval=(LEADS,))

    def test_a_task_approved_at_creation_takes_the_auto_path(
        self, rig: Rig, service: TaskService
    ) -> None:
        task = service.create_task(LEE, CreateTask(title="ship", priority=Priority.HIGH)).task
        assert task.approval_decided_by == "auto:leads"
        execution = rig.start(task, timeout_seconds=300)
        finished = rig.finished(execution)
        assert finished["status"] == "SUCCEEDED"
        assert rig.states_entered(execution) == [
            "Validate",
            "CheckPriority",
            "AutoApproved",
            "RecordDecision",
            "Complete",
        ]
        # The decision the manual path records, in the same shape, from the event's task.
        assert json.loads(finished["output"])["decision"] == decision_output(task)
        assert rig.no_event("ApprovalTokenIssued")  # nobody is asked

    def test_an_edit_that_raises_the_priority_takes_the_auto_path(
        self, rig: Rig, service: TaskService
    ) -> None:
        before = service.create_task(LEE, CreateTask(title="later", priority=Priority.LOW)).task
        after = service.update_task(LEE, before.id, UpdateTask(priority=Priority.HIGH))
        assert (after.approval, after.approval_decided_by) == ("approved", "auto:leads")
        execution = rig.start(after, timeout_seconds=300, before=before)
        finished = rig.finished(execution)
        assert finished["status"] == "SUCCEEDED"
        assert "AutoApproved" in rig.states_entered(execution)
        assert (
            json.loads(finished["output"])["decision"]["decidedAt"]
            == (task_to_json(after)["approvalDecidedAt"])
        )

    def test_its_approval_decided_releases_nothing_and_writes_nothing(
        self, rig: Rig, service: TaskService
    ) -> None:
        """No workflow waits on an auto-approved task (no token is ever issued): the consumer
        of its ApprovalDecided leaves no approval record behind, however often it is
        delivered, and the workflow still ends as it should."""
        task = service.create_task(LEE, CreateTask(title="ship", priority=Priority.HIGH)).task
        execution = rig.start(task, timeout_seconds=300)
        for _ in range(2):  # a redelivery changes nothing
            assert rig.deliver_stream_events(None, task) == [{"taskId": task.id, "released": False}]
        assert rig.approval_record(task) is None
        assert rig.finished(execution)["status"] == "SUCCEEDED"

    def test_a_person_approved_task_still_meets_its_token_on_the_record(self, rig: Rig) -> None:
        """The same consumer, for a task a person decided: the record holds the outcome until
        the token arrives (what skipping auto-approved tasks must not break)."""
        task = high_task(rig)
        decided = rig.service.decide_approval(BOB, task.id, Decision.APPROVE)
        assert rig.deliver_stream_events(task, decided) == [{"taskId": task.id, "released": False}]
        record = rig.approval_record(decided)
        assert record is not None
        assert json.loads(record["outcome"]["S"]) == decision_output(decided)


class TestWorkflowInput:
    def requested(self, rig: Rig) -> dict[str, Any]:
        task = high_task(rig)
        (requested,) = [
            e for e in derive_events(None, task, task.created_at) if e.kind == "ApprovalRequested"
        ]
        return bus_event(envelope(requested))

    @pytest.mark.parametrize(
        "path",
        [("taskId",), ("ownerId",), ("task", "priority"), ("task", "approvalDecidedBy")],
        ids="/".join,
    )
    def test_an_event_missing_a_field_fails_with_a_reason(
        self, rig: Rig, path: tuple[str, ...]
    ) -> None:
        event = self.requested(rig)
        holder = event["detail"]
        for key in path[:-1]:
            holder = holder[key]
        del holder[path[-1]]
        execution = rig.start_with(event)
        finished = rig.finished(execution)
        assert (finished["status"], finished["error"]) == ("FAILED", "Approval.InvalidEvent")
        assert "lacks a field the workflow reads" in finished["cause"]
        assert rig.states_entered(execution) == ["Validate", "InvalidEvent"]

    def test_a_request_with_nothing_to_approve_succeeds_at_once(self, rig: Rig) -> None:
        event = self.requested(rig)
        event["detail"]["task"].update(priority="medium", approval="not_required")
        execution = rig.start_with(event)
        assert rig.finished(execution)["status"] == "SUCCEEDED"
        assert rig.states_entered(execution) == ["Validate", "CheckPriority", "NoApprovalNeeded"]
        assert rig.no_event("ApprovalTokenIssued")
