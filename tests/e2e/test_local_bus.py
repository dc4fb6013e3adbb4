"""The local bus routes events with the manifest's own patterns, retries, then dead-letters;
the EventBridge relay hands it the events moto accepted."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_platform.bus import LocalBus, check_pattern, matches
from local_platform.dynamodb_local import free_port
from local_platform.events_relay import EventsRelay, delivered_events
from local_platform.platform import start_moto
from stack.manifest import FUNCTIONS, WORKFLOWS, EventRule, Function
from tests.e2e.fake_aws import FakeSqs, FakeStepFunctions

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

    @pytest.mark.parametrize(
        ("pattern", "expected"),
        [
            ({"source": [{"prefix": "ta"}]}, True),
            ({"source": [{"prefix": "tasks"}]}, True),
            ({"source": [{"prefix": "tasksx"}]}, False),
            ({"source": [{"prefix": "x"}, "tasks"]}, True),
            ({"detail": {"taskId": [{"prefix": ""}]}}, True),
            ({"detail": {"missing": [{"prefix": ""}]}}, False),
            ({"detail": {"taskId": [{"exists": True}]}}, True),
            ({"detail": {"taskId": [{"exists": False}]}}, False),
            ({"detail": {"missing": [{"exists": False}]}}, True),
            ({"detail": {"missing": [{"exists": True}]}}, False),
            # A missing parent: its leaves are absent too.
            ({"absent": {"leaf": [{"exists": False}]}}, True),
            ({"absent": {"leaf": [{"exists": True}]}}, False),
            # exists applies to leaves: an object is not one.
            ({"detail": [{"exists": True}]}, False),
        ],
    )
    def test_prefix_and_exists(self, pattern: dict[str, Any], expected: bool) -> None:
        check_pattern(pattern)
        assert matches(pattern, TASK_COMPLETED) is expected

    def test_prefix_matches_strings_only(self) -> None:
        assert matches({"n": [{"prefix": "1"}]}, {"n": "12"})
        assert not matches({"n": [{"prefix": "1"}]}, {"n": 12})

    def test_unsupported_forms_are_refused(self) -> None:
        with pytest.raises(ValueError, match="unsupported"):
            check_pattern({"source": [{"numeric": [">", 1]}]})
        with pytest.raises(ValueError, match="unsupported"):
            check_pattern({"source": [{"prefix": 1}]})
        with pytest.raises(ValueError, match="unsupported"):
            check_pattern({"source": [{"suffix": "s"}]})
        with pytest.raises(ValueError, match="unsupported"):
            check_pattern({"source": "tasks"})

    def test_every_manifest_pattern_is_supported(self) -> None:
        for function in FUNCTIONS:
            for rule in function.rules:
                check_pattern(rule.pattern)
        for workflow in WORKFLOWS:
            check_pattern(workflow.started_by.pattern)
        for function in FUNCTIONS:
            for pattern in function.stream.filters if function.stream else ():
                check_pattern(pattern)


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
            retry_delays_s=(0, 0),
        )
        bus.drain_once()
        assert (len(attempts), bus.pending_retries) == (1, 1)
        while bus.retry_due():
            pass
        assert len(attempts) == 3  # Lambda's async invocation: the first try and 2 retries
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
            retry_delays_s=(0, 0),
        )
        bus.drain_once()
        while bus.retry_due():
            pass
        assert (len(attempts), bus.dead_letters) == (3, [])

    def test_retries_wait_their_delay_and_do_not_hold_up_other_events(self) -> None:
        calls: list[str] = []

        def invoke(function: Function, event: dict[str, Any]) -> None:
            calls.append(event["detail"]["taskId"])
            if event["detail"]["taskId"] == "poison":
                raise RuntimeError("consumer bug")

        poison = {**TASK_COMPLETED, "detail": {"taskId": "poison"}}
        bus = LocalBus(
            sqs=FakeSqs([poison, TASK_COMPLETED]),
            stepfunctions=FakeStepFunctions(),
            queue_url="q",
            functions=[consumer("metrics", "TaskCompleted")],
            workflows={},
            invoke=invoke,
        )
        bus.drain_once()
        assert sorted(calls) == ["poison", "t"]  # the good event was not held up
        assert bus.retry_due() == 0  # Lambda waits a minute before the first retry
        assert bus.retry_due(now=time.monotonic() + 61) == 1
        # ... and two minutes after that one before the second.
        assert bus.retry_due(now=time.monotonic() + 119) == 0
        assert bus.retry_due(now=time.monotonic() + 121) == 1
        assert (calls.count("poison"), bus.dead_letters) == (3, [("metrics-rule", poison)])

    def test_a_redelivered_event_does_not_start_its_workflow_twice(self) -> None:
        (approval,) = WORKFLOWS
        requested = {**TASK_COMPLETED, "id": "event-1", "detail-type": "ApprovalRequested"}
        sfn = FakeStepFunctions()
        bus = LocalBus(
            sqs=FakeSqs([requested, requested, {**requested, "id": "event-2"}]),
            stepfunctions=sfn,
            queue_url="q",
            functions=[],
            workflows={"approval": (approval, "arn:sm")},
            invoke=lambda f, e: None,
        )
        bus.drain_once()
        assert sorted(sfn.names) == [("arn:sm", "event-1"), ("arn:sm", "event-2")]


class TestInbox:
    def test_events_handed_over_are_delivered_like_tapped_ones(self) -> None:
        calls: list[tuple[str, str]] = []
        bus = LocalBus(
            sqs=FakeSqs([]),
            stepfunctions=FakeStepFunctions(),
            queue_url="q",
            functions=[consumer("metrics", "TaskCompleted")],
            workflows={},
            invoke=lambda f, e: calls.append((f.name, e["detail-type"])),
        )
        for _ in range(3):
            bus.inbox.put(TASK_COMPLETED)
        assert bus.backlog == 3
        assert bus.drain_inbox(limit=2) == 2
        assert bus.drain_inbox(wait_s=0.01) == 1
        assert bus.drain_inbox(wait_s=0.01) == 0
        assert (calls, bus.delivered, bus.backlog) == ([("metrics", "TaskCompleted")] * 3, 3, 0)


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    port = free_port()
    server = start_moto(port)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(timeout=10)


class TestEventsRelay:
    """The relay in front of moto's EventBridge: moto answers, accepted events reach the inbox."""

    def test_put_events_is_relayed_and_accepted_entries_are_handed_over(self, moto: str) -> None:
        bus_name = f"bus-{uuid.uuid4().hex[:6]}"
        events_client(moto).create_event_bus(Name=bus_name)
        relay = EventsRelay(upstream=moto, bus_name=bus_name, region="us-east-1").start()
        try:
            client = events_client(relay.url)
            detail = {"taskId": "t1", "owner": "alice"}
            response = client.put_events(
                Entries=[
                    entry(bus_name, detail),
                    entry("default", {"taskId": "elsewhere"}),  # another bus: not ours
                    entry(f"arn:aws:events:us-east-1:123456789012:event-bus/{bus_name}", detail),
                ]
            )
            assert response["FailedEntryCount"] == 0
            ids = [e["EventId"] for e in response["Entries"]]
            delivered = [relay.inbox.get_nowait() for _ in range(relay.inbox.qsize())]
            assert [e["id"] for e in delivered] == [ids[0], ids[2]]
            assert delivered[0] | {"time": "t"} == {
                "version": "0",
                "id": ids[0],
                "detail-type": "TaskCompleted",
                "source": "tasks",
                "account": "123456789012",
                "time": "t",
                "region": "us-east-1",
                "resources": [],
                "detail": detail,
            }
            assert relay.relayed == 2
            # Any other call is relayed unchanged (here: moto's answer to DescribeEventBus).
            assert client.describe_event_bus(Name=bus_name)["Name"] == bus_name
        finally:
            relay.stop()

    def test_refused_entries_are_not_handed_over(self) -> None:
        request = {"Entries": [{"EventBusName": "b", "Detail": "{}"}] * 2}
        answer = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "X"}, {"EventId": "e2"}]}
        events = delivered_events(request, answer, "b", "us-east-1")
        assert [e["id"] for e in events] == ["e2"]

    def test_moto_down_is_an_error_the_publisher_sees(self) -> None:
        relay = EventsRelay(
            upstream=f"http://127.0.0.1:{free_port()}", bus_name="b", region="us-east-1"
        ).start()
        try:
            with pytest.raises(ClientError):
                events_client(relay.url, retries=0).put_events(Entries=[entry("b", {})])
            assert relay.inbox.empty()
        finally:
            relay.stop()


def entry(bus_name: str, detail: dict[str, Any]) -> Any:
    return {
        "EventBusName": bus_name,
        "Source": "tasks",
        "DetailType": "TaskCompleted",
        "Detail": json.dumps(detail),
    }


def events_client(endpoint: str, retries: int = 2) -> Any:
    return boto3.client(
        "events",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(proxies={}, retries={"total_max_attempts": retries + 1}),
    )
