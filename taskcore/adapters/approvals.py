"""The approval workflow seen from the domain, on DynamoDB and Step Functions.

Per task awaiting approval, one record (`pk = USER#<owner>`, `sk = APPROVAL#<taskId>`) meets
the two halves: the waiting workflow's task token (from `ApprovalTokenIssued`) and the decision
(from `ApprovalDecided`). Each arrival is one atomic UpdateItem returning the whole record;
whichever half completes it sends SendTaskSuccess. Both may send in a race; the second send is
refused by Step Functions as an already-used token, which counts as done. A send that fails for
any other reason raises, and the event is retried.

Also here: the markers that make consumers idempotent by event id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from taskcore.adapters.dynamodb import TTL_ATTRIBUTE, bind_models, user_pk
from taskcore.adapters.stepfunctions import StepFunctionsCallback
from taskcore.errors import Unavailable
from taskcore.model import Task, TaskId, UserId
from taskcore.ports import Clock
from taskcore.services import decision_output
from taskcore.system import SystemClock

RECORD_TTL = timedelta(days=30)
MARKER_TTL = timedelta(days=7)


@attrs.define
class TableClient:
    """The table's low-level client (PynamoDB's connection's), a failed condition raised as
    botocore's `ClientError` and every other failure as `Unavailable`."""

    table_name: str
    endpoint_url: str | None = None
    region: str | None = None

    @property
    def client(self) -> Any:
        return bind_models(self.table_name, self.endpoint_url, self.region).connection.client

    def call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, operation)(TableName=self.table_name, **kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise
            raise Unavailable(f"the task store is unavailable ({error})") from error
        except BotoCoreError as error:
            raise Unavailable(f"the task store is unavailable ({error})") from error


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
            Key={"pk": {"S": user_pk(owner_id)}, "sk": {"S": f"APPROVAL#{task_id}"}},
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


@attrs.define
class DynamoEventMarkers:
    """`EventMarkers` on the table: a conditional put per (consumer, event id), kept 7 days
    (longer than EventBridge retries an event)."""

    table: TableClient
    clock: Clock = attrs.field(factory=SystemClock)

    def first_time(self, consumer: str, event_id: str) -> bool:
        expires = int((self.clock.now() + MARKER_TTL).timestamp())
        try:
            self.table.call(
                "put_item",
                Item={
                    "pk": {"S": f"MARKER#{consumer}"},
                    "sk": {"S": f"EVENT#{event_id}"},
                    TTL_ATTRIBUTE: {"N": str(expires)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError:
            return False  # only a failed condition gets here: seen before
        return True
