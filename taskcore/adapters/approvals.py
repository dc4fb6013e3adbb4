"""The approval workflow seen from the domain, on DynamoDB and Step Functions.

Per task awaiting approval, one record (`pk = USER#<owner>`, `sk = APPROVAL#<taskId>`) meets
the two halves: the waiting workflow's task token (from `ApprovalTokenIssued`) and the decision
(from `ApprovalDecided`). Each arrival is one atomic UpdateItem returning the whole record;
whichever half completes it sends SendTaskSuccess. Both may send in a race; the second send is
refused by Step Functions as an already-used token, which counts as done. A send that fails for
any other reason raises, and the event is retried.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from taskcore.adapters.dynamodb.table import TTL_ATTRIBUTE, TableClient, approval_sk, user_pk
from taskcore.adapters.stepfunctions import StepFunctionsCallback
from taskcore.model import Task, TaskId, UserId
from taskcore.ports import Clock
from taskcore.services import decision_output
from taskcore.system import SystemClock

RECORD_TTL = timedelta(days=30)


@attrs.define
class DynamoApprovalWorkflow:
    """`ApprovalWorkflow` on the table, releasing the state machine through Step Functions."""

    table: TableClient
    callback: StepFunctionsCallback
    clock: Clock = attrs.field(factory=SystemClock)

    def _set(self, owner_id: str, task_id: str, name: str, value: str) -> dict[str, Any]:
        expires = int((self.clock.now() + RECORD_TTL).timestamp())
        response = self.table.call(
            "update_item",
            Key={"pk": {"S": user_pk(owner_id)}, "sk": {"S": approval_sk(task_id)}},
            UpdateExpression="SET #value = :value, #ttl = :ttl",
            ExpressionAttributeNames={"#value": name, "#ttl": TTL_ATTRIBUTE},
            ExpressionAttributeValues={":value": {"S": value}, ":ttl": {"N": str(expires)}},
            ReturnValues="ALL_NEW",
        )
        return dict(response["Attributes"])

    def _release(self, record: Mapping[str, Any]) -> bool:
        token = record.get("token", {}).get("S")
        outcome = record.get("outcome", {}).get("S")
        if token is None or outcome is None:
            return False  # the other half has not arrived: it will release
        return self.callback.succeed(token, json.loads(outcome))

    def token_issued(self, owner_id: UserId, task_id: TaskId, token: str) -> bool:
        return self._release(self._set(owner_id, task_id, "token", token))

    def decided(self, task: Task) -> bool:
        outcome = json.dumps(decision_output(task))
        return self._release(self._set(task.owner_id, task.id, "outcome", outcome))
