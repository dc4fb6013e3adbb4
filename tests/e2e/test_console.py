"""The local platform's console: one readable line per request and per event, the functions'
raw log lines (EMF, START/END/REPORT) kept in their log files and printed only with
--verbose, metrics summed."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_platform import console as console_module
from local_platform.console import Console, describe_event
from local_platform.lambda_runtime import lambda_context
from local_platform.process import Platform
from local_platform.sandboxes import SandboxError, Sandboxes, SandboxTimeout
from stack.manifest import Function

EMF = json.dumps(
    {
        "_aws": {
            "Timestamp": 1,
            "CloudWatchMetrics": [
                {
                    "Namespace": "tasks",
                    "Dimensions": [["service"]],
                    "Metrics": [
                        {"Name": "TasksCreated", "Unit": "Count"},
                        {"Name": "TimeToComplete", "Unit": "Seconds"},
                    ],
                }
            ],
        },
        "service": "api",
        "TasksCreated": [1.0, 2.0],
        "TimeToComplete": 4.0,
    }
)
RECORD = json.dumps(
    {
        "level": "WARNING",
        "location": "handler:12",
        "message": "export retried",
        "timestamp": "2026-12-05 22:00:00,000+0000",
        "service": "tasks-exports",
        "function_request_id": "req-1",
        "correlation_id": "event-7",
        "exportId": "01EXPORT",
        "exception": 'Traceback (most recent call last):\n  File "x.py"\nValueError: no',
    }
)
REPORT = (
    "REPORT RequestId: r1\tDuration: 12.00 ms\tBilled Duration: 112 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 80 MB\tInit Duration: 100.00 ms"
)


def lines_of(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def feed(console: Console, function: str = "api") -> None:
    for line in (
        "START RequestId: r1 Version: $LATEST",
        EMF,
        RECORD,
        "printed by the handler",
        "END RequestId: r1",
        REPORT,
    ):
        console.lambda_line(function, "r1", line)


def test_by_default_a_person_sees_log_records_and_prints_not_metrics_or_runtime_lines(
    tmp_path: Path,
) -> None:
    stream = io.StringIO()
    console = Console(stream=stream, log_dir=tmp_path, clock=lambda: "12:00:00")
    feed(console)
    assert lines_of(stream) == [
        '12:00:00 api       WARNING export retried  exportId="01EXPORT"  [event-7]',
        "    Traceback (most recent call last):",
        '      File "x.py"',
        "    ValueError: no",
        "12:00:00 api       printed by the handler",
    ]
    # The log file keeps every raw line, as CloudWatch would, each with its time.
    kept = (tmp_path / "api.log").read_text().splitlines()
    assert [line.split("\t", 1)[1] for line in kept][:3] == [
        "START RequestId: r1 Version: $LATEST",
        EMF,
        RECORD,
    ]
    assert len(kept) == 6


def test_verbose_prints_the_raw_lines() -> None:
    stream = io.StringIO()
    feed(Console(stream=stream, verbose=True, clock=lambda: "12:00:00"))
    assert [line.split(None, 2)[2] for line in lines_of(stream)] == [
        "START RequestId: r1 Version: $LATEST",
        EMF,
        RECORD,
        "printed by the handler",
        "END RequestId: r1",
        *REPORT.split("\n"),
    ]


def test_metrics_and_invocations_are_summed_per_window_and_since_the_start() -> None:
    stream = io.StringIO()
    console = Console(stream=stream)
    feed(console)
    feed(console, "stream")
    assert console.summary() == [
        "api     1 invocation, median 12 ms, max 12 ms, 1 cold · TasksCreated 3 · "
        "TimeToComplete avg 4 seconds",
        "stream  1 invocation, median 12 ms, max 12 ms, 1 cold · TasksCreated 3 · "
        "TimeToComplete avg 4 seconds",
    ]
    assert console.summary() == []  # the window starts again
    console.lambda_line("api", "r2", REPORT.replace("\tInit Duration: 100.00 ms", ""))
    assert console.summary() == ["api  1 invocation, median 12 ms, max 12 ms"]
    stream.truncate(0)
    stream.seek(0)
    console.stop()
    assert lines_of(stream)[0].endswith(" metrics   since the start:")
    assert lines_of(stream)[1].endswith(
        " metrics     api     2 invocations, median 12 ms, max 12 ms, 1 cold · TasksCreated 3 · "
        "TimeToComplete avg 4 seconds"
    )


def test_the_summary_is_printed_every_interval_when_there_is_something_to_say() -> None:
    stream = io.StringIO()
    console = Console(stream=stream, interval_s=0.05).start()
    try:
        time.sleep(0.2)
        assert stream.getvalue() == ""  # nothing happened, nothing said
        feed(console)
        deadline = time.monotonic() + 5
        while "in the last 0.05 s:" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "TasksCreated 3" in stream.getvalue()
    finally:
        console.stop()


def test_a_large_log_file_is_moved_aside_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_module, "MAX_LOG_BYTES", 10)
    (tmp_path / "api.log").write_text("x" * 11)
    Console(stream=io.StringIO(), log_dir=tmp_path).lambda_line("api", "r", "new")
    assert (tmp_path / "api.log.1").read_text() == "x" * 11
    assert (tmp_path / "api.log").read_text().endswith("\tnew\n")


def test_events_are_described_with_the_id_that_follows_them() -> None:
    assert describe_event({"detail-type": "TaskCreated", "id": "e-1"}) == ("TaskCreated", "e-1")
    batch = {"Records": [{"eventName": "INSERT"}, {"eventName": "INSERT"}, {"eventName": "REMOVE"}]}
    assert describe_event(batch) == ("table stream: 2 INSERT, 1 REMOVE", "")


# The sandboxes hand the console every line a handler writes, framed as the runtime frames it.


def function(attribute: str, timeout_s: int = 10) -> Function:
    return Function(
        name=attribute,
        handler=f"tests.e2e.sandbox_handlers:{attribute}",
        description="a console test",
        timeout_s=timeout_s,
    )


@pytest.fixture
def heard() -> Iterator[tuple[Sandboxes, list[tuple[str, str, str]]]]:
    lines: list[tuple[str, str, str]] = []
    sandboxes = Sandboxes(lambda f: {}, log=lambda *line: lines.append(line))
    yield sandboxes, lines
    sandboxes.stop()


def test_a_sandbox_passes_on_what_the_handler_writes_between_start_end_and_report(
    heard: tuple[Sandboxes, list[tuple[str, str, str]]],
) -> None:
    sandboxes, lines = heard
    talk = function("talk")
    context = lambda_context(talk)
    sandboxes(talk, {"say": ["hello", "to stderr"]}, context)
    request_id = context.aws_request_id
    assert {(f, r) for f, r, _ in lines} == {("talk", request_id)}
    said = [line for _, _, line in lines]
    assert said[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert said[1:3] == ["hello", "to stderr"]
    assert said[3] == f"END RequestId: {request_id}"
    assert said[4].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "\tMemory Size: 512 MB\tMax Memory Used: " in said[4]
    assert "\tInit Duration: " in said[4]  # a cold start
    lines.clear()
    sandboxes(talk, {"say": []}, lambda_context(talk))
    assert "Init Duration" not in lines[-1][2]  # warm


def test_a_handler_error_is_logged_as_the_runtime_logs_it(
    heard: tuple[Sandboxes, list[tuple[str, str, str]]],
) -> None:
    sandboxes, lines = heard
    fail = function("fail")
    with pytest.raises(SandboxError) as raised:
        sandboxes(fail, {"n": 2}, lambda_context(fail))
    assert raised.value.brief == "fail: ValueError: refused 2"
    said = [line for _, _, line in lines]
    assert "[ERROR] ValueError: refused 2" in said
    assert "Traceback (most recent call last):" in said
    assert said[-1].startswith("REPORT RequestId: ")


def test_what_a_handler_wrote_before_it_timed_out_is_not_lost(
    heard: tuple[Sandboxes, list[tuple[str, str, str]]],
) -> None:
    sandboxes, lines = heard
    hang = function("talk_then_hang", timeout_s=1)
    with pytest.raises(SandboxTimeout):
        sandboxes(hang, {}, lambda_context(hang))
    said = [line for _, _, line in lines]
    assert "about to hang" in said
    assert said[-1].endswith("\tStatus: timeout")


# The platform as `make dev` runs it.


def test_the_platforms_console_has_a_line_per_request_and_event_and_no_raw_json(
    platform: Platform,
) -> None:
    with platform.client("console-reader") as client:
        created = client.post("/tasks", json={"title": "for the console"})
        assert created.status_code == 201
        refused = client.post("/tasks", json={"title": ""})
        assert refused.status_code == 422
    request_id = created.headers["apigw-requestid"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        output = list(platform.output)
        requests = [line for line in output if "POST /tasks 201" in line and request_id in line]
        events = [line for line in output if " stats ← TaskCreated " in line]
        # A request's line is written just after its answer: wait for the refusal's too.
        refusals = [line for line in output if refused.headers["apigw-requestid"] in line]
        if requests and events and refusals:
            break
        time.sleep(0.2)
    assert requests, "\n".join(output[-40:])
    [refusal] = refusals
    assert " POST /tasks 422 " in refusal
    assert refusal.endswith(f"  ({refused.json()['detail']})")  # why, without reading the body
    assert events, "\n".join(output[-40:])
    assert not [line for line in output if '{"_aws"' in line or "RequestId: " in line]
    kept = (platform.log_dir / "api.log").read_text()
    assert '{"_aws"' in kept  # the metrics are in the function's log file
    assert "REPORT RequestId: " in kept
