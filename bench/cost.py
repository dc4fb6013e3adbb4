"""What each API operation costs on AWS, measured: everything it causes, priced at list prices.

The local platform runs with `--meter` (`local_platform.meter`): the gateway records each
request API Gateway would bill, each sandbox each Lambda invocation (billed duration, memory,
the bytes it logs) with every AWS request the function sent, counted on the wire by botocore
hooks, and DynamoDB's consumed capacity per table and index (DynamoDB Local answers
`ReturnConsumedCapacity=INDEXES`). Step Functions runs on moto: its state transitions and the
events its states put are read from the executions' history. Nothing is counted by hand.

Each operation runs `repeats` times after one unmeasured warm-up (cold starts are a cost of
their own, not of an operation), one at a time, each followed by everything it triggers (the
stream, the bus, the workflow) until the platform is quiet; the figures are per operation.

The prices are `bench.prices` (region, date and source of each); the stack priced is prod's
(its memory sizes and config), run on the local platform as `--stack prod`. Lambda's billed
duration is this machine's, not Graviton's: compare the ratios, not the dollars' last digit.

The floor of an operation is what any design must pay for it (issue #18): one API Gateway
request, one Lambda invocation at our API function's measured duration, and the least
capacity its data needs: 1 write unit per KB written, 0.5 read unit per 4 KB read
(eventually consistent). Targets: reads at most 1.5x their floor; writes, with everything
they trigger, at most 3x.
"""

from __future__ import annotations

import math
import os
import signal
import statistics
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import attrs
import httpx

from bench.prices import price
from local_platform.meter import read_records
from local_platform.process import Platform, start_platform
from stack.config import StackConfig
from stack.manifest import FUNCTIONS

STACK = "prod"
GB = 1024**3
KB = 1024
READ_UNIT_BYTES = 4 * KB
"""One read unit: a strongly consistent read of up to 4 KB, or two eventually consistent
ones; one write unit: a write of up to 1 KB (DynamoDB Developer Guide,
read-write-operations.html; stack/scale.py cites the same)."""
API_METERING_BYTES = 512 * KB
"""HTTP APIs bill a request per 512 KB of it (API Gateway pricing page; bench/prices.py)."""
XRAY_SAMPLED = 0.05
"""X-Ray's default sampling rule: the first request each second, then 5% (the X-Ray SDKs'
default rule, `fixed_target: 1, rate: 0.05`, e.g. aws-xray-sdk for Ruby's DefaultSampler
DEFAULT_RULES; that Lambda's active tracing samples by the same default is assumed, not
confirmed here). Above one request a second the 5% is what an operation pays; the reservoir's
first-each-second is a monthly amount (`monthly`)."""
XRAY_RESERVOIR_PER_S = 1
HOURS_PER_MONTH = 730
"""AWS's pricing pages count a month as 730 hours."""
QUIET_S = 1.5
"""The platform is quiet (everything an operation triggered has run) when no invocation is in
flight and its meter file has not grown for this long: the stream poller polls every 0.2 s,
the bus every 0.1 s. (A cold start writes nothing until it ends: in flight covers it.) A
failed delivery Lambda would retry a minute later is not waited for: `Usage.failed` shows it."""

Kind = Literal["read", "write"]
PUT_CLASS = frozenset(
    {
        "PutObject",
        "CopyObject",
        "PostObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CompleteMultipartUpload",
        "ListObjects",
        "ListObjectsV2",
        "ListObjectVersions",
        "ListMultipartUploads",
        "ListParts",
    }
)
"""S3's PUT, COPY, POST and LIST requests (S3 pricing page, "Requests & data retrievals");
DELETE and CANCEL are free; everything else is billed as a GET."""
FREE_S3 = frozenset({"DeleteObject", "DeleteObjects", "AbortMultipartUpload"})


# -- what an operation caused ---------------------------------------------------------------------


@attrs.define
class Usage:
    """Everything a number of operations caused, summed (`per(n)` divides)."""

    api_requests: float = 0.0
    access_log_bytes: float = 0.0
    invocations: Counter[str] = attrs.field(factory=Counter)
    gb_seconds: Counter[str] = attrs.field(factory=Counter)
    billed_ms: Counter[str] = attrs.field(factory=Counter)
    log_bytes: float = 0.0
    requests: Counter[str] = attrs.field(factory=Counter)
    """AWS requests the functions sent, `service.Operation`."""
    read_units: Counter[str] = attrs.field(factory=Counter)
    """Read capacity by table or `table/index`."""
    write_units: Counter[str] = attrs.field(factory=Counter)
    event_chunks: float = 0.0
    """EventBridge custom events (64 KB chunks): the functions' PutEvents and the workflow's."""
    sns_chunks: float = 0.0
    transitions: float = 0.0
    failed: Counter[str] = attrs.field(factory=Counter)
    """Invocations that failed, by function (each would be retried: more cost, shown)."""

    def add_records(self, records: Iterable[Mapping[str, Any]], memory: Mapping[str, int]) -> None:
        for record in records:
            if record["kind"] == "api":
                self.api_requests += max(
                    1,
                    math.ceil(
                        max(record["request_bytes"], record["response_bytes"]) / API_METERING_BYTES
                    ),
                )
                self.access_log_bytes += record["access_log_bytes"]
            elif record["kind"] == "invocation":
                name = record["function"]
                self.invocations[name] += 1
                if record.get("failed"):
                    self.failed[name] += 1
                self.billed_ms[name] += record["billed_ms"]
                self.gb_seconds[name] += record["billed_ms"] / 1000 * memory[name] / 1024
                self.log_bytes += record["log_bytes"]
                aws = record["aws"]
                self.requests.update(aws["requests"])
                for key, units in aws["capacity"].items():
                    where, kind = key.rsplit(":", 1)
                    (self.write_units if kind == "write" else self.read_units)[where] += units
                self.event_chunks += aws["chunks"].get("eventbridge.PutEvents", 0)
                self.sns_chunks += aws["chunks"].get("sns.Publish", 0)

    def add_workflows(self, transitions: int, put_events: int) -> None:
        self.transitions += transitions
        self.event_chunks += put_events

    def per(self, n: int) -> Usage:
        def each(counter: Counter[str]) -> Counter[str]:
            return Counter({k: v / n for k, v in counter.items()})

        return Usage(
            api_requests=self.api_requests / n,
            access_log_bytes=self.access_log_bytes / n,
            invocations=each(self.invocations),
            gb_seconds=each(self.gb_seconds),
            billed_ms=each(self.billed_ms),
            log_bytes=self.log_bytes / n,
            requests=each(self.requests),
            read_units=each(self.read_units),
            write_units=each(self.write_units),
            event_chunks=self.event_chunks / n,
            sns_chunks=self.sns_chunks / n,
            transitions=self.transitions / n,
            failed=each(self.failed),
        )

    def s3_requests(self) -> tuple[float, float]:
        """(PUT-class, GET-class) S3 requests."""
        puts = gets = 0.0
        for name, count in self.requests.items():
            service, operation = name.split(".", 1)
            if service != "s3" or operation in FREE_S3:
                continue
            if operation in PUT_CLASS:
                puts += count
            else:
                gets += count
        return puts, gets


def cost_lines(usage: Usage) -> dict[str, float]:
    """Dollars for one operation's usage, by line item."""
    puts, gets = usage.s3_requests()
    invocations = sum(usage.invocations.values())
    other = sum(
        count * price(_OTHER[name.split(".", 1)[0]]).cost(1)
        for name, count in usage.requests.items()
        if name.split(".", 1)[0] in _OTHER
    )
    return {
        "API Gateway": price("apigateway.http.request").cost(usage.api_requests),
        "Lambda requests": price("lambda.request").cost(invocations),
        "Lambda duration": price("lambda.arm64.gb_second").cost(sum(usage.gb_seconds.values())),
        "DynamoDB writes": price("dynamodb.ondemand.write_request_unit").cost(
            sum(usage.write_units.values())
        ),
        "DynamoDB reads": price("dynamodb.ondemand.read_request_unit").cost(
            sum(usage.read_units.values())
        ),
        "EventBridge": price("eventbridge.custom_event").cost(usage.event_chunks),
        "Step Functions": price("stepfunctions.standard.transition").cost(usage.transitions),
        "S3": price("s3.standard.put").cost(puts) + price("s3.standard.get").cost(gets),
        "SNS": price("sns.publish").cost(usage.sns_chunks),
        "CloudWatch Logs": price("logs.ingestion").cost(
            (usage.log_bytes + usage.access_log_bytes) / GB
        ),
        "X-Ray": price("xray.trace_recorded").cost(invocations * XRAY_SAMPLED),
        "KMS, Secrets Manager": other,
    }


_OTHER = {"kms": "kms.request", "secrets-manager": "secretsmanager.api_call"}


# -- the floor ------------------------------------------------------------------------------------


@attrs.frozen
class Floor:
    """What any design pays for an operation: one API request, one invocation of `gb_seconds`,
    the least capacity the data needs, and for an export the one object it writes."""

    gb_seconds: float
    write_units: float = 0.0
    read_units: float = 0.0
    s3_puts: float = 0.0

    def cost(self) -> float:
        return (
            price("apigateway.http.request").cost(1)
            + price("lambda.request").cost(1)
            + price("lambda.arm64.gb_second").cost(self.gb_seconds)
            + price("dynamodb.ondemand.write_request_unit").cost(self.write_units)
            + price("dynamodb.ondemand.read_request_unit").cost(self.read_units)
            + price("s3.standard.put").cost(self.s3_puts)
        )


def written_units(data_bytes: int) -> float:
    return float(max(1, math.ceil(data_bytes / KB)))


def read_units(data_bytes: int) -> float:
    return 0.5 * max(1, math.ceil(data_bytes / READ_UNIT_BYTES))


# -- the operations -------------------------------------------------------------------------------


@attrs.define
class Context:
    platform: Platform
    owner: httpx.Client
    approver: httpx.Client
    submitter: httpx.Client
    """A user outside every auto-approval rule: their high-priority tasks wait for a person."""


@attrs.frozen
class Operation:
    name: str
    kind: Kind
    prepare: Callable[[Context, int], list[Any]]
    """Inputs for `n` runs, made before the measured window (their effects settle first)."""
    run: Callable[[Context, Any], int]
    """One run; returns the bytes of data it writes or reads, for the floor."""
    floor: Callable[[int, Usage], Floor]
    """The floor from the data's bytes and what was measured (its API duration)."""
    until: Callable[[list[dict[str, Any]]], bool] | None = None
    """For an operation whose work outlasts the quiet period: done when this holds."""
    note: str = ""
    """What the figure includes or leaves out, printed under the table."""


def _ok(response: httpx.Response, *expected: int) -> httpx.Response:
    if response.status_code not in expected:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    return response


def _create(client: httpx.Client, n: int, **fields: Any) -> list[dict[str, Any]]:
    return [
        _ok(client.post("/tasks", json={"title": f"cost {i}", **fields}), 201).json()
        for i in range(n)
    ]


def _api_gb_seconds(usage: Usage, function: str = "api") -> float:
    return usage.gb_seconds.get(function, 0.0) / max(usage.invocations.get(function, 0.0), 1e-9)


def _write_floor(data: int, usage: Usage) -> Floor:
    return Floor(gb_seconds=_api_gb_seconds(usage), write_units=written_units(data))


def _read_floor(data: int, usage: Usage) -> Floor:
    return Floor(gb_seconds=_api_gb_seconds(usage), read_units=read_units(data))


def _body(response: httpx.Response) -> int:
    return len(response.content)


EXPORT_TASKS = 1_000


def _export_floor(data: int, usage: Usage) -> Floor:
    # The export's reading and writing is work any design does: its worker's duration is part
    # of the floor's one invocation, with the API's.
    worker = usage.gb_seconds.get("exports", 0.0)
    return Floor(gb_seconds=_api_gb_seconds(usage) + worker, read_units=read_units(data), s3_puts=1)


def _export_done(records: list[dict[str, Any]]) -> bool:
    return any(r["kind"] == "invocation" and r["function"] == "exports" for r in records)


def _export_prepare(ctx: Context, n: int) -> list[Any]:
    owner = new_client(ctx.platform, f"exporter-{uuid.uuid4().hex[:8]}")
    with ThreadPoolExecutor(8) as pool:
        tasks = list(
            pool.map(
                lambda i: _ok(owner.post("/tasks", json={"title": f"export {i}"}), 201).json(),
                range(EXPORT_TASKS),
            )
        )
    size = sum(len(httpx.Response(200, json=t).content) for t in tasks)
    return [(owner, size)] * n


def _export_run(ctx: Context, given: tuple[httpx.Client, int]) -> int:
    owner, size = given
    _ok(owner.post("/exports"), 202)
    return size


def _started(ctx: Context, n: int) -> list[Any]:
    """Tasks in progress: only those can be completed."""
    ids = [t["id"] for t in _create(ctx.owner, n)]
    for task_id in ids:
        _ok(ctx.owner.patch(f"/tasks/{task_id}", json={"status": "in_progress"}), 200)
    return ids


def _decision_prepare(ctx: Context, n: int) -> list[Any]:
    return [t["id"] for t in _create(ctx.submitter, n, priority="high")]


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "create",
        "write",
        prepare=lambda ctx, n: [None] * n,
        run=lambda ctx, _: _body(_ok(ctx.owner.post("/tasks", json={"title": "a task"}), 201)),
        floor=_write_floor,
    ),
    Operation(
        "create with Idempotency-Key",
        "write",
        prepare=lambda ctx, n: [str(uuid.uuid4()) for _ in range(n)],
        run=lambda ctx, key: _body(
            _ok(
                ctx.owner.post("/tasks", json={"title": "once"}, headers={"Idempotency-Key": key}),
                201,
            )
        ),
        floor=_write_floor,
    ),
    Operation(
        "create (high priority, awaits approval)",
        "write",
        prepare=lambda ctx, n: [None] * n,
        run=lambda ctx, _: _body(
            _ok(ctx.submitter.post("/tasks", json={"title": "a server", "priority": "high"}), 201)
        ),
        floor=_write_floor,
        note="starts the approval workflow; not in the issue's list: what an approval adds",
    ),
    Operation(
        "get",
        "read",
        prepare=lambda ctx, n: [t["id"] for t in _create(ctx.owner, n)],
        run=lambda ctx, task_id: _body(_ok(ctx.owner.get(f"/tasks/{task_id}"), 200)),
        floor=_read_floor,
    ),
    Operation(
        "list page (20 tasks)",
        "read",
        prepare=lambda ctx, n: [None] * n,
        run=lambda ctx, _: _body(_ok(ctx.owner.get("/tasks", params={"limit": 20}), 200)),
        floor=_read_floor,
    ),
    Operation(
        "update",
        "write",
        prepare=lambda ctx, n: [t["id"] for t in _create(ctx.owner, n)],
        run=lambda ctx, task_id: _body(
            _ok(ctx.owner.patch(f"/tasks/{task_id}", json={"title": "renamed"}), 200)
        ),
        floor=_write_floor,
    ),
    Operation(
        "complete",
        "write",
        prepare=_started,
        run=lambda ctx, task_id: _body(_ok(ctx.owner.post(f"/tasks/{task_id}/complete"), 200)),
        floor=_write_floor,
    ),
    Operation(
        "delete",
        "write",
        prepare=lambda ctx, n: [
            (t["id"], len(httpx.Response(200, json=t).content)) for t in _create(ctx.owner, n)
        ],
        run=lambda ctx, given: (_ok(ctx.owner.delete(f"/tasks/{given[0]}"), 204), given[1])[1],
        floor=_write_floor,
    ),
    Operation(
        "approval decision",
        "write",
        prepare=_decision_prepare,
        run=lambda ctx, task_id: _body(
            _ok(ctx.approver.post(f"/tasks/{task_id}/approval", json={"decision": "approve"}), 200)
        ),
        floor=_write_floor,
    ),
    Operation(
        "attachment upload link",
        "write",
        prepare=lambda ctx, n: [t["id"] for t in _create(ctx.owner, n)],
        run=lambda ctx, task_id: _body(
            _ok(
                ctx.owner.post(
                    f"/tasks/{task_id}/attachments",
                    json={"filename": "a.pdf", "contentType": "application/pdf", "size": 1000},
                ),
                201,
            )
        ),
        floor=_write_floor,
        note="the link only: the client's upload is one S3 PUT more",
    ),
    Operation(
        f"export of {EXPORT_TASKS:,} tasks",
        "write",
        prepare=_export_prepare,
        run=_export_run,
        floor=_export_floor,
        until=_export_done,
        note="POST /exports and the worker; reading the result's link is a GET more",
    ),
)

TARGETS: dict[Kind, float] = {"read": 1.5, "write": 3.0}


# -- measuring ------------------------------------------------------------------------------------


def new_client(platform: Platform, user: str, *groups: str) -> httpx.Client:
    return platform.client(user, *groups)


@attrs.define
class Meters:
    """The platform's meter file and moto's executions, read since the last `mark`."""

    path: Path
    sfn: Any
    offset: int = 0
    _seen: dict[str, tuple[int, int]] = attrs.field(factory=dict)
    _scanned: int = 0
    _in_flight: int = 0
    """Invocations begun and not ended (the `begin`/`end` records), as far as scanned."""

    def in_flight(self) -> int:
        records, self._scanned = read_records(self.path, self._scanned)
        for record in records:
            self._in_flight += {"begin": 1, "end": -1}.get(record["kind"], 0)
        return self._in_flight

    def settle(
        self, until: Callable[[list[dict[str, Any]]], bool] | None = None, timeout_s: float = 300
    ) -> None:
        """Wait until the platform is quiet (and `until` holds for the records since the
        mark)."""
        deadline = time.monotonic() + timeout_s
        size, still_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = self.path.stat().st_size if self.path.exists() else 0
            if now != size:
                size, still_since = now, time.monotonic()
            elif (
                time.monotonic() - still_since >= QUIET_S
                and self.in_flight() == 0
                and (until is None or until(read_records(self.path, self.offset)[0]))
            ):
                return
            time.sleep(0.1)
        raise TimeoutError(f"the platform was not quiet within {timeout_s:.0f} s")

    def mark(self) -> None:
        _, self.offset = read_records(self.path, self.offset)
        self._seen = self._workflows()

    def take(self, usage: Usage, memory: Mapping[str, int]) -> list[dict[str, Any]]:
        records, self.offset = read_records(self.path, self.offset)
        usage.add_records(records, memory)
        now = self._workflows()
        for arn, (transitions, puts) in now.items():
            before = self._seen.get(arn, (0, 0))
            usage.add_workflows(transitions - before[0], puts - before[1])
        self._seen = now
        return records

    def _workflows(self) -> dict[str, tuple[int, int]]:
        """Each execution's state transitions and PutEvents tasks so far."""
        counts = {}
        for machine in self.sfn.list_state_machines()["stateMachines"]:
            arn = machine["stateMachineArn"]
            for execution in self.sfn.list_executions(stateMachineArn=arn)["executions"]:
                events = self.sfn.get_execution_history(
                    executionArn=execution["executionArn"], maxResults=1000
                )["events"]
                entered = sum(e["type"].endswith("StateEntered") for e in events)
                puts = sum(
                    e["type"] == "TaskScheduled"
                    and e["taskScheduledEventDetails"]["resourceType"] == "events"
                    for e in events
                )
                counts[execution["executionArn"]] = (entered, puts)
        return counts


@attrs.frozen
class Measured:
    operation: Operation
    usage: Usage  # per operation
    data_bytes: int  # median over the runs
    repeats: int

    @property
    def lines(self) -> dict[str, float]:
        return cost_lines(self.usage)

    @property
    def cost(self) -> float:
        return sum(self.lines.values())

    @property
    def floor(self) -> Floor:
        return self.operation.floor(self.data_bytes, self.usage)

    @property
    def ratio(self) -> float:
        return self.cost / self.floor.cost()

    @property
    def target(self) -> float:
        return TARGETS[self.operation.kind]


@attrs.frozen
class CostBench:
    measured: list[Measured]
    sweep: Usage  # one scheduled reminder sweep with nothing due
    stack: str


def memory_sizes(config: StackConfig) -> dict[str, int]:
    return {f.name: config.memory_for(f) for f in FUNCTIONS}


def run(
    repeats: int = 5,
    operations: Sequence[Operation] = OPERATIONS,
    log: Callable[[str], None] = print,
) -> CostBench:
    config = StackConfig.from_stack_file(STACK)
    memory = memory_sizes(config)
    folder = Path(tempfile.mkdtemp(prefix="tasks-cost-"))
    meter_path = folder / "meter.jsonl"
    platform = start_platform(
        "--stack", STACK, "--meter", str(meter_path), "--no-throttle", "--manual-schedules"
    )
    try:
        meters = Meters(meter_path, platform.moto_client("stepfunctions"))
        suffix = uuid.uuid4().hex[:8]
        ctx = Context(
            platform=platform,
            owner=new_client(platform, f"owner-{suffix}"),
            approver=new_client(platform, f"approver-{suffix}", "approvers"),
            submitter=new_client(platform, f"submitter-{suffix}"),
        )
        _create(ctx.owner, 25)  # a full first page for the list
        results = []
        for operation in operations:
            started = time.monotonic()
            inputs = operation.prepare(ctx, repeats + 1)
            meters.settle()
            operation.run(ctx, inputs[0])  # warm-up: the functions it reaches start here
            meters.settle(operation.until)
            meters.mark()
            usage, sizes = Usage(), []
            for given in inputs[1:]:
                sizes.append(operation.run(ctx, given))
                meters.settle(operation.until)
                meters.take(usage, memory)
            measured = Measured(
                operation, usage.per(repeats), int(statistics.median(sizes)), repeats
            )
            results.append(measured)
            log(
                f"  {operation.name:<40} ${measured.cost * 1e6:8.2f}/M  "
                f"{measured.ratio:5.2f}x floor  ({time.monotonic() - started:.0f} s)"
            )
        sweep = _sweep(platform, meters, memory)
        return CostBench(results, sweep, STACK)
    finally:
        platform.stop()


def _sweep(platform: Platform, meters: Meters, memory: Mapping[str, int]) -> Usage:
    """One scheduled run of everything on a schedule (the reminder sweep), nothing due."""
    meters.settle()
    meters.mark()
    os.kill(platform.process.pid, signal.SIGUSR1)
    meters.settle(
        lambda records: any(
            r["kind"] == "invocation" and r["function"] == "reminders" for r in records
        )
    )
    usage = Usage()
    meters.take(usage, memory)
    return usage


# -- a month ---------------------------------------------------------------------------------------

PROFILE_1M = {
    "list page (20 tasks)": 0.35,
    "get": 0.30,
    "create": 0.10,
    "create with Idempotency-Key": 0.05,
    "update": 0.10,
    "complete": 0.05,
    "delete": 0.02,
    "create (high priority, awaits approval)": 0.01,
    "approval decision": 0.01,
    "attachment upload link": 0.009,
    f"export of {EXPORT_TASKS:,} tasks": 0.001,
}
"""Seed 002's "1M requests a month", spread over the operations as we assume a team uses a
task service (the seed names the total, not the mix): mostly reading lists and tasks."""
MONTHLY_REQUESTS = 1_000_000


@attrs.frozen
class Month:
    lines: dict[str, float]
    sweeps: int
    traces: float

    @property
    def total(self) -> float:
        return sum(self.lines.values())


def monthly(bench: CostBench, profile: Mapping[str, float] = PROFILE_1M) -> Month:
    """The month of `profile`: each operation's measured cost times its count, the schedules'
    runs, and X-Ray's traces with the reservoir's first-each-second (not 5%) at this rate."""
    assert abs(sum(profile.values()) - 1) < 1e-9, "a profile's shares add up to 1"
    by_name = {m.operation.name: m for m in bench.measured}
    lines: defaultdict[str, float] = defaultdict(float)
    invocations = 0.0
    for name, share in profile.items():
        measured = by_name[name]
        count = MONTHLY_REQUESTS * share
        for item, dollars in measured.lines.items():
            lines[item] += dollars * count
        invocations += sum(measured.usage.invocations.values()) * count
    sweeps = HOURS_PER_MONTH * 60 // 15
    for item, dollars in cost_lines(bench.sweep).items():
        lines[item] += dollars * sweeps
    invocations += sum(bench.sweep.invocations.values()) * sweeps
    # The reservoir traces one request a second whatever the rate, then 5% of the rest.
    reservoir = XRAY_RESERVOIR_PER_S * HOURS_PER_MONTH * 3600
    traces = min(invocations, reservoir) + XRAY_SAMPLED * max(0.0, invocations - reservoir)
    lines["X-Ray"] = price("xray.trace_recorded").cost(traces)
    return Month(dict(lines), sweeps, traces)


# -- the report -----------------------------------------------------------------------------------

SHORT = {
    "API Gateway": "apigw",
    "Lambda requests": "λ req",
    "Lambda duration": "λ GB-s",
    "DynamoDB writes": "ddb W",
    "DynamoDB reads": "ddb R",
    "EventBridge": "events",
    "Step Functions": "sfn",
    "S3": "s3",
    "SNS": "sns",
    "CloudWatch Logs": "logs",
    "X-Ray": "x-ray",
    "KMS, Secrets Manager": "other",
}


def render(bench: CostBench) -> str:
    head = f"{'operation':<40} {'$/M':>8} {'floor':>7} {'ratio':>6} {'target':>6}  " + " ".join(
        f"{s:>6}" for s in SHORT.values()
    )
    lines = [
        f"$ per million operations, {bench.stack} stack's config, prices: bench/prices.py",
        head,
    ]
    for m in bench.measured:
        parts = " ".join(f"{m.lines[item] * 1e6:6.2f}" for item in SHORT)
        lines.append(
            f"{m.operation.name:<40} {m.cost * 1e6:8.2f} {m.floor.cost() * 1e6:7.2f} "
            f"{m.ratio:5.2f}x {m.target:5.1f}x  {parts}"
        )
    lines += [
        f"  {m.operation.name}: {m.operation.note}" for m in bench.measured if m.operation.note
    ]
    lines.append("")
    lines.append("what one operation causes (per operation, averaged)")
    for m in bench.measured:
        u = m.usage
        calls = ", ".join(
            f"{name} {u.invocations[name]:g} ({u.billed_ms[name] / u.invocations[name]:.0f} ms)"
            for name in sorted(u.invocations)
        )
        capacity = ", ".join(
            f"{where} {units:g}W" for where, units in sorted(u.write_units.items()) if units
        ) + "".join(f", {where} {units:g}R" for where, units in sorted(u.read_units.items()))
        lines.append(
            f"  {m.operation.name}: invocations {calls}; capacity {capacity.strip(', ') or '-'}; "
            f"events {u.event_chunks:g}, transitions {u.transitions:g}, "
            f"logs {(u.log_bytes + u.access_log_bytes) / 1024:.1f} KB"
            + (f"; FAILED {dict(u.failed)}" if u.failed else "")
        )
    month = monthly(bench)
    lines.append("")
    lines.append(
        f"a month of {MONTHLY_REQUESTS:,} requests (seed 002; mix: bench/cost.py PROFILE_1M), "
        f"plus {month.sweeps:,} reminder sweeps and {month.traces:,.0f} X-Ray traces: "
        f"${month.total:.2f}"
    )
    for item, dollars in sorted(month.lines.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {item:<22} ${dollars:8.2f}")
    return "\n".join(lines)


def data(bench: CostBench) -> dict[str, Any]:
    month = monthly(bench)
    return {
        "stack": bench.stack,
        "operations": {
            m.operation.name: {
                "usd_per_million": m.cost * 1e6,
                "floor_usd_per_million": m.floor.cost() * 1e6,
                "ratio": m.ratio,
                "target": m.target,
                "lines_usd_per_million": {k: v * 1e6 for k, v in m.lines.items()},
                "invocations": dict(m.usage.invocations),
                "billed_ms": dict(m.usage.billed_ms),
                "write_units": dict(m.usage.write_units),
                "read_units": dict(m.usage.read_units),
                "aws_requests": dict(m.usage.requests),
                "event_chunks": m.usage.event_chunks,
                "transitions": m.usage.transitions,
                "failed_invocations": dict(m.usage.failed),
                "log_bytes": m.usage.log_bytes + m.usage.access_log_bytes,
                "data_bytes": m.data_bytes,
                "repeats": m.repeats,
            }
            for m in bench.measured
        },
        "month_1m": {"usd": month.total, "lines": month.lines, "traces": month.traces},
    }


def rows(bench: CostBench) -> list[tuple[str, str, str, bool]]:
    return [
        (
            f"cost: {m.operation.name} vs floor",
            f"{m.ratio:.2f}x (${m.cost * 1e6:.2f} vs ${m.floor.cost() * 1e6:.2f} per M)",
            f"<= {m.target:g}x",
            m.ratio <= m.target,
        )
        for m in bench.measured
    ]
