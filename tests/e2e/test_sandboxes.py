"""The local platform's sandboxes are processes, as Lambda's execution environments are: each
imports its handler once (a cold start), keeps its module state, runs one invocation at a time,
is killed when it runs past the function's timeout and replaced when it dies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from local_platform.auth import DevIssuer
from local_platform.dynamodb_local import DynamoDBLocal
from local_platform.gateway import build_app
from local_platform.lambda_runtime import lambda_context
from local_platform.meter import Meter, read_records
from local_platform.sandboxes import SandboxDied, SandboxError, Sandboxes, SandboxTimeout
from stack.config import StackConfig
from stack.manifest import Function, Route


def function(name: str, attribute: str, timeout_s: int = 10) -> Function:
    module = "tests.e2e.sandbox_handlers" if attribute != "missing" else "tests.e2e.no_such"
    return Function(
        name=name,
        handler=f"{module}:{attribute}",
        description="a sandbox test",
        environment={"TABLE_NAME": "table.name"},
        timeout_s=timeout_s,
    )


STATE, SLOW = function("state", "state"), function("slow", "state", timeout_s=1)
SLOW_SLEEP = function("slow-sleep", "sleep", timeout_s=1)


@pytest.fixture
def sandboxes() -> Iterator[Sandboxes]:
    running = Sandboxes(lambda f: {"TABLE_NAME": f"table-of-{f.name}"}, concurrency=2)
    yield running
    running.stop()


def invoke(sandboxes: Sandboxes, fn: Function, event: dict[str, Any] | None = None) -> Any:
    return sandboxes(fn, event or {}, lambda_context(fn, "us-east-1", int(time.time() * 1000)))


def test_a_sandbox_keeps_its_module_state_and_gets_the_functions_environment(
    sandboxes: Sandboxes,
) -> None:
    first, second = invoke(sandboxes, STATE), invoke(sandboxes, STATE)
    assert first["pid"] == second["pid"]
    assert (first["invocations"], second["invocations"]) == (1, 2)
    assert first["imported_at"] == second["imported_at"]  # one cold start
    assert first["table"] == "table-of-state"
    assert first["request_id"] != second["request_id"]


def test_concurrent_invocations_get_sandboxes_of_their_own_up_to_the_limit(
    sandboxes: Sandboxes,
) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: invoke(sandboxes, STATE, {"sleep_s": 0.5}), range(4)))
    pids = {r["pid"] for r in results}
    assert len(pids) == 2  # the limit: the others waited for an idle one
    for pid in pids:
        mine = sorted(r["invocations"] for r in results if r["pid"] == pid)
        assert mine == list(range(1, len(mine) + 1))  # one invocation at a time, each counted
    assert sandboxes.of(STATE).sandboxes == 2


def test_functions_do_not_share_sandboxes(sandboxes: Sandboxes) -> None:
    other = function("other", "state")
    assert invoke(sandboxes, STATE)["pid"] != invoke(sandboxes, other)["pid"]
    assert invoke(sandboxes, other)["table"] == "table-of-other"


def test_a_handler_error_reaches_the_caller_and_the_sandbox_stays(sandboxes: Sandboxes) -> None:
    failing = function("failing", "fail")
    with pytest.raises(SandboxError, match=r"failing: ValueError: refused 1") as raised:
        invoke(sandboxes, failing, {"n": 1})
    assert "Traceback" in str(raised.value)
    with pytest.raises(SandboxError, match="refused 2"):
        invoke(sandboxes, failing, {"n": 2})
    assert sandboxes.of(failing).sandboxes == 1


def test_an_init_error_fails_every_invocation(sandboxes: Sandboxes) -> None:
    broken = function("broken", "missing")
    for _ in range(2):
        with pytest.raises(SandboxError, match="ModuleNotFoundError"):
            invoke(sandboxes, broken)


def test_a_timed_out_invocation_loses_its_sandbox(sandboxes: Sandboxes) -> None:
    before = invoke(sandboxes, SLOW)
    with pytest.raises(SandboxTimeout, match="Task timed out after 1 s"):
        invoke(sandboxes, SLOW, {"sleep_s": 5})
    after = invoke(sandboxes, SLOW)
    assert after["pid"] != before["pid"]
    assert after["invocations"] == 1  # a cold start


def test_a_crashed_sandbox_is_replaced(sandboxes: Sandboxes) -> None:
    crashing = function("crashing", "crash")
    with pytest.raises(SandboxDied, match="code 3"):
        invoke(sandboxes, crashing)
    assert sandboxes.of(crashing).sandboxes == 0
    with pytest.raises(SandboxDied):
        invoke(sandboxes, crashing)


def test_stop_ends_every_sandbox(sandboxes: Sandboxes) -> None:
    invoke(sandboxes, STATE)
    (sandbox,) = sandboxes.of(STATE)._idle
    sandboxes.stop()
    assert not sandbox.process.is_alive()


def test_the_gateway_answers_through_sandboxes(sandboxes: Sandboxes) -> None:
    """Events, contexts and results cross the process boundary intact; a timed-out sandbox
    is API Gateway's 500, as an in-process timeout is."""
    echo = Function(
        name="echo",
        handler="tests.e2e.fake_handlers:echo",
        description="echo",
        routes=(Route("GET", "/echo", authorized=False),),
    )
    slow = Function(
        name="slow",
        handler="tests.e2e.sandbox_handlers:sleep",
        description="slow",
        routes=(Route("POST", "/slow", authorized=False),),
        timeout_s=1,
    )
    config = StackConfig.from_stack_file("dev")
    app = build_app((echo, slow), config, DevIssuer(), invoke=sandboxes, concurrency=2)
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        answer = client.get("/echo?x=1")
        assert answer.status_code == 200
        body = answer.json()
        assert body["event"]["rawQueryString"] == "x=1"
        assert body["context"]["function_name"] == "echo"
        assert 0 < body["context"]["remaining_ms"] <= 10_000
        timed_out = client.post("/slow")
        assert (timed_out.status_code, timed_out.json()) == (
            500,
            {"message": "Internal Server Error"},
        )


def test_a_metered_sandbox_records_each_invocation_with_what_it_asked_of_aws(
    dynamodb_local: DynamoDBLocal, tmp_path: Path
) -> None:
    meter = Meter(tmp_path / "meter.jsonl")
    metered = Sandboxes(lambda f: {}, meter=meter)
    fn = function("aws", "list_tables")
    try:
        for _ in range(2):
            invoke(metered, fn, {"endpoint": dynamodb_local.endpoint_url})
    finally:
        metered.stop()
        meter.close()
    records = read_records(tmp_path / "meter.jsonl")[0]
    assert [r["kind"] for r in records] == ["begin", "invocation", "end"] * 2
    first, second = records[1], records[4]
    assert first["request_id"] == records[0]["request_id"] == records[2]["request_id"]
    for record in (first, second):
        assert record["kind"] == "invocation"
        assert record["function"] == "aws"
        assert record["memory_mb"] == fn.memory_mb
        assert record["billed_ms"] >= record["duration_ms"] > 0
        assert record["log_bytes"] == len("listing")
        assert record["aws"]["requests"] == {"dynamodb.ListTables": 1}
    assert first["init_ms"] is not None  # a cold start
    assert second["init_ms"] is None
    assert not first["failed"]


def test_a_failed_or_timed_out_invocation_still_ends_in_the_meter(tmp_path: Path) -> None:
    meter = Meter(tmp_path / "meter.jsonl")
    metered = Sandboxes(lambda f: {}, meter=meter)
    try:
        with pytest.raises(SandboxError):
            invoke(metered, function("fail", "fail"), {"n": 1})
        with pytest.raises(SandboxTimeout):
            invoke(metered, SLOW_SLEEP)
    finally:
        metered.stop()
        meter.close()
    records = read_records(tmp_path / "meter.jsonl")[0]
    assert [r["kind"] for r in records] == ["begin", "invocation", "end", "begin", "end"]
    assert records[1]["failed"] is True
