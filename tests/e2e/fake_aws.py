"""In-memory stand-ins for the two AWS clients the local bus calls (SQS and Step Functions),
for tests that drive the bus without moto. No test lives here."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError


class FakeSqs:
    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        self.messages = [
            {"Body": json.dumps(b), "ReceiptHandle": str(i)} for i, b in enumerate(bodies)
        ]
        self.deleted: list[str] = []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        batch, self.messages = self.messages[:10], self.messages[10:]
        return {"Messages": batch}

    def delete_message(self, ReceiptHandle: str, **_: Any) -> None:
        self.deleted.append(ReceiptHandle)


class FakeStepFunctions:
    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.names: set[tuple[str, str]] = set()

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> None:
        if (stateMachineArn, name) in self.names:
            error = {"Error": {"Code": "ExecutionAlreadyExists", "Message": name}}
            raise ClientError(error, "StartExecution")  # type: ignore[arg-type]
        self.names.add((stateMachineArn, name))
        self.started.append((stateMachineArn, json.loads(input)))
