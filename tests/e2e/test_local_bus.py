"""The local bus routes events with the manifest's own patterns, retries, then dead-letters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from handlers.manifest import FUNCTIONS, WORKFLOWS, EventRule, Function
from local_platform.bus import LocalBus, check_pattern, matches

TASK_COMPLETED = {"source": "tasks", "detail-type": "TaskCompleted", "detail": {"taskId": "t"}}


class TestMatches:
    @pytest.mark.parametrize(
        ("pattern", "expected"),
        [
            ({"source": ["tasks"]}, True),
            ({"source": ["other"]}, False),
            ({"source": ["tasks"], "detail-type": ["TaskCreated", "TaskCompleted"]}, True),
            ({"detail": {"taskId": ["t"]}}, True),
            ({"detail": {"taskId": ["u"]}}, False),
            ({"detail": {"missing": ["x"]}}, False),
            ({"source": {"nested": ["x"]}}, False),
        ],
    )
    def test_exact_value_patterns(self, pattern: dict[str, Any], expected: bool) -> None:
        assert matches(pattern, TASK_COMPLETED) is expected

    def test_array_values_match_any_element(self) -> None:
        assert matches({"resources": ["b"]}, {"resources": ["a", "b"]})

    def test_unsupported_forms_are_refused(self) -> None:
        with pytest.raises(ValueError, match="unsupported"):
            check_pattern({"source": [{"prefix": "ta"}]})
        with pytest.raises(ValueError, match="unsupported"):
            check_pattern({"source": "tasks"})

    def test_every_manifest_pattern_is_supported(self) -> None:
        for function in FUNCTIONS:
            for rule in function.rules:
                check_pattern(rule.pattern)
        for workflow in WORKFLOWS:
            check_pattern(workflow.started_by.pattern)


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

    def start_execution(self, stateMachineArn: str, input: str) -> None:
        self.started.append((stateMachineArn, json.loads(input)))


def consumer(name: str, *detail_types: str) -> Function:
    rule = EventRule(
        name=f"{name}-rule", pattern={"source": ["tasks"], "detail-type": list(detail_types)}
    )
    return Function(name=name, handler="x:y", description="", rules=(rule,))


class TestDispatch:
    def test_delivers_to_matching_functions_and_workflows(self) -> None:
        calls: list[tuple[str, str]] = []
        sqs, sfn = (
            FakeSqs([TASK_COMPLETED, {**TASK_COMPLETED, "detail-type": "ApprovalRequested"}]),
            FakeStepFunctions(),
        )
        (approval,) = WORKFLOWS
        bus = LocalBus(
            sqs=sqs,
            stepfunctions=sfn,
            queue_url="q",
            functions=[
                consumer("metrics", "TaskCompleted"),
                consumer("stats", "TaskCompleted", "TaskCreated"),
            ],
            workflows={"approval": (approval, "arn:sm")},
            invoke=lambda f, e: calls.append((f.name, e["detail-type"])),
        )
        assert bus.drain_once()
        assert calls == [("metrics", "TaskCompleted"), ("stats", "TaskCompleted")]
        assert [(arn, e["detail-type"]) for arn, e in sfn.started] == [
            ("arn:sm", "ApprovalRequested")
        ]
        assert sqs.deleted == ["0", "1"]
        assert not bus.drain_once()

    def test_retries_then_dead_letters(self) -> None:
        attempts: list[int] = []

        def failing(function: Function, event: dict[str, Any]) -> None:
            attempts.append(1)
            raise RuntimeError("consumer down")

        bus = LocalBus(
            sqs=FakeSqs([TASK_COMPLETED]),
            stepfunctions=FakeStepFunctions(),
            queue_url="q",
            functions=[consumer("metrics", "TaskCompleted")],
            workflows={},
            invoke=failing,
            retry_base_s=0,
        )
        bus.drain_once()
        assert len(attempts) == 4
        assert bus.dead_letters == [("metrics-rule", TASK_COMPLETED)]

    def test_a_transient_failure_is_retried_and_delivered(self) -> None:
        attempts: list[int] = []

        def flaky(function: Function, event: dict[str, Any]) -> None:
            attempts.append(1)
            if len(attempts) < 3:
                raise RuntimeError("blip")

        bus = LocalBus(
            sqs=FakeSqs([TASK_COMPLETED]),
            stepfunctions=FakeStepFunctions(),
            queue_url="q",
            functions=[consumer("metrics", "TaskCompleted")],
            workflows={},
            invoke=flaky,
            retry_base_s=0,
        )
        bus.drain_once()
        assert (len(attempts), bus.dead_letters) == (3, [])
