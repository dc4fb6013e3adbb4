"""The cost bench's arithmetic: from the meter's records to dollars, floors and a month."""

from __future__ import annotations

from typing import Any

import pytest

from bench import cost
from bench.prices import price


def api(request_bytes: int = 100, response_bytes: int = 300) -> dict[str, Any]:
    return {
        "kind": "api",
        "request_bytes": request_bytes,
        "response_bytes": response_bytes,
        "access_log_bytes": 350,
    }


def invocation(function: str = "api", billed_ms: int = 20, **aws: Any) -> dict[str, Any]:
    return {
        "kind": "invocation",
        "function": function,
        "billed_ms": billed_ms,
        "log_bytes": 200,
        "aws": {"requests": {}, "capacity": {}, "chunks": {}, **aws},
    }


MEMORY = {"api": 2048, "stream": 512}


def test_records_add_up_per_function_table_and_index() -> None:
    usage = cost.Usage()
    usage.add_records(
        [
            api(),
            invocation(
                requests={"dynamodb.PutItem": 1},
                capacity={"t:write": 1.0, "t/ByStatusIndex:write": 1.0, "t:read": 0.5},
            ),
            invocation("stream", 3, chunks={"eventbridge.PutEvents": 2, "sns.Publish": 1}),
        ],
        MEMORY,
    )
    assert usage.api_requests == 1
    assert usage.access_log_bytes == 350
    assert usage.invocations == {"api": 1, "stream": 1}
    assert usage.gb_seconds["api"] == pytest.approx(0.020 * 2)
    assert usage.gb_seconds["stream"] == pytest.approx(0.003 * 0.5)
    assert usage.write_units == {"t": 1.0, "t/ByStatusIndex": 1.0}
    assert usage.read_units == {"t": 0.5}
    assert (usage.event_chunks, usage.sns_chunks, usage.log_bytes) == (2, 1, 400)
    usage.add_workflows(transitions=3, put_events=1)
    half = usage.per(2)
    assert (half.transitions, half.event_chunks, half.invocations["api"]) == (1.5, 1.5, 0.5)


def test_a_request_is_billed_per_512_kb() -> None:
    usage = cost.Usage()
    usage.add_records([api(response_bytes=512 * 1024), api(response_bytes=512 * 1024 + 1)], {})
    assert usage.api_requests == 3


def test_s3_requests_are_priced_by_class() -> None:
    usage = cost.Usage()
    usage.requests.update(
        {
            "s3.PutObject": 1,
            "s3.ListObjectsV2": 2,
            "s3.CompleteMultipartUpload": 1,
            "s3.GetObject": 3,
            "s3.HeadObject": 1,
            "s3.DeleteObject": 5,
            "dynamodb.PutItem": 7,
        }
    )
    assert usage.s3_requests() == (4, 4)
    lines = cost.cost_lines(usage)
    expected = price("s3.standard.put").cost(4) + price("s3.standard.get").cost(4)
    assert lines["S3"] == pytest.approx(expected)


def test_each_line_is_its_usage_at_its_price() -> None:
    usage = cost.Usage()
    usage.add_records(
        [
            api(),
            invocation(capacity={"t:write": 3.0, "t:read": 1.0}),
            invocation("stream", 10, chunks={"eventbridge.PutEvents": 1}),
        ],
        MEMORY,
    )
    usage.add_workflows(2, 0)
    usage.requests["secrets-manager.GetSecretValue"] += 1
    lines = cost.cost_lines(usage)
    assert lines["API Gateway"] == pytest.approx(price("apigateway.http.request").cost(1))
    assert lines["Lambda requests"] == pytest.approx(price("lambda.request").cost(2))
    assert lines["Lambda duration"] == pytest.approx(
        price("lambda.arm64.gb_second").cost(0.040 + 0.005)
    )
    assert lines["DynamoDB writes"] == pytest.approx(
        price("dynamodb.ondemand.write_request_unit").cost(3)
    )
    assert lines["DynamoDB reads"] == pytest.approx(
        price("dynamodb.ondemand.read_request_unit").cost(1)
    )
    assert lines["EventBridge"] == pytest.approx(price("eventbridge.custom_event").cost(1))
    assert lines["Step Functions"] == pytest.approx(
        price("stepfunctions.standard.transition").cost(2)
    )
    assert lines["CloudWatch Logs"] == pytest.approx(
        price("logs.ingestion").cost((400 + 350) / 1024**3)
    )
    assert lines["X-Ray"] == pytest.approx(price("xray.trace_recorded").cost(2 * 0.05))
    assert lines["KMS, Secrets Manager"] == pytest.approx(price("secretsmanager.api_call").cost(1))


def test_the_floor_is_one_request_one_invocation_and_the_datas_capacity() -> None:
    floor = cost.Floor(gb_seconds=0.01, write_units=cost.written_units(1500))
    assert floor.write_units == 2
    assert floor.cost() == pytest.approx(
        price("apigateway.http.request").cost(1)
        + price("lambda.request").cost(1)
        + price("lambda.arm64.gb_second").cost(0.01)
        + price("dynamodb.ondemand.write_request_unit").cost(2)
    )
    assert [cost.read_units(n) for n in (0, 4096, 4097, 20_000)] == [0.5, 0.5, 1.0, 2.5]
    assert [cost.written_units(n) for n in (0, 1024, 1025)] == [1, 1, 2]


def measured(name: str, kind: cost.Kind, usage: cost.Usage, data: int = 500) -> cost.Measured:
    operation = next(o for o in cost.OPERATIONS if o.name == name)
    assert operation.kind == kind
    return cost.Measured(operation, usage, data, repeats=1)


def test_a_ratio_is_the_cost_over_the_floor_at_the_operations_target() -> None:
    usage = cost.Usage()
    usage.add_records([api(), invocation(capacity={"t:read": 0.5})], MEMORY)
    get = measured("get", "read", usage)
    assert get.floor.gb_seconds == pytest.approx(0.04)  # the API's measured invocation
    assert get.floor.read_units == 0.5
    assert get.ratio == pytest.approx(get.cost / get.floor.cost())
    assert get.target == 1.5
    assert get.ratio > 1  # logs and traces are beyond the floor
    assert cost.rows(cost.CostBench([get], cost.Usage(), "prod"))[0][3] is (get.ratio <= 1.5)


def test_a_month_multiplies_each_operation_by_its_share() -> None:
    usage = cost.Usage()
    usage.add_records([api(), invocation()], MEMORY)
    operations = [measured(name, o.kind, usage) for o in cost.OPERATIONS for name in [o.name]]
    sweep = cost.Usage()
    sweep.add_records([invocation("stream")], MEMORY)
    month = cost.monthly(cost.CostBench(operations, sweep, "prod"))
    assert month.sweeps == 730 * 4
    per_operation = cost.cost_lines(usage)
    assert month.lines["API Gateway"] == pytest.approx(
        per_operation["API Gateway"] * cost.MONTHLY_REQUESTS
    )
    # Fewer invocations than the reservoir's one a second: every one is traced.
    invocations = cost.MONTHLY_REQUESTS + month.sweeps
    assert month.traces == pytest.approx(invocations)
    assert month.lines["X-Ray"] == pytest.approx(price("xray.trace_recorded").cost(invocations))
    assert month.total == pytest.approx(sum(month.lines.values()))


def test_the_profile_covers_measured_operations_only_and_adds_up() -> None:
    names = {o.name for o in cost.OPERATIONS}
    assert set(cost.PROFILE_1M) <= names
    assert sum(cost.PROFILE_1M.values()) == pytest.approx(1)


def test_failed_invocations_are_counted_and_begin_end_records_cost_nothing() -> None:
    usage = cost.Usage()
    failed = {**invocation("stream"), "failed": True}
    usage.add_records(
        [{"kind": "begin", "function": "stream"}, failed, {"kind": "end", "function": "stream"}],
        MEMORY,
    )
    assert usage.invocations == {"stream": 1}
    assert usage.failed == {"stream": 1}
    assert usage.per(2).failed == {"stream": 0.5}


def test_the_platform_is_in_flight_from_begin_to_end(tmp_path: Any) -> None:
    from local_platform.meter import Meter

    meter = Meter(tmp_path / "meter.jsonl")
    meters = cost.Meters(tmp_path / "meter.jsonl", sfn=None)
    meter.record("begin", function="stats")
    meter.record("begin", function="api")
    meter.record("end", function="api")
    assert meters.in_flight() == 1
    meter.record("end", function="stats")
    assert meters.in_flight() == 0
    meter.close()
