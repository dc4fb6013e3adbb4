"""Where the design stops scaling: a deterministic model of its sustained ceilings.

Every AWS limit is a named constant with its source. The design's own figures (the writes
each step makes, the item sizes, the state transitions, the rule deliveries) are in `Design`,
whose defaults tests/unit/test_scale.py checks against the code (the table definition, the
item mapping, the workflow definition, the manifest's rules), so the model cannot drift from
what the code does. docs/scale.md is this model's output, with its reasoning.

Two rates are modelled, each as the largest sustained rate every component carries (its
limit over what one unit of load costs it) and the component that binds first:

- `approval_lifecycles`: high-priority creates system-wide, each one waiting for a person and
  decided (what a create costs is only settled when its entry leaves the approvers' queue);
- `one_user`: one user's task writes, which all land in their own partition.

Limits are "hard" (a partition's throughput, which no request raises) or adjustable quotas
(AWS raises them on request): `Ceiling.adjustable` tells them apart, and the conclusions are
drawn both ways. Here in `stack/` because it models the stack (its config, the manifest); it
imports no SDK, no taskcore adapter, and no clock: the same answer every run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

# -- AWS's limits ---------------------------------------------------------------------------------

PARTITION_WCU = 1_000
PARTITION_RCU = 3_000
"""Per partition, per second, for a table and for each GSI alike: "each individual partition
is limited to 1,000 write units per second and 3,000 read units per second" (DynamoDB
Developer Guide, warm-throughput-scenarios.html). Not adjustable."""

WRITE_UNIT_BYTES = 1_024
"""One write unit: one write of up to 1 KB; a transactional write costs two units per KB
(DynamoDB Developer Guide, read-write-operations.html, "Capacity unit consumption for write
operations"; sizes are binary, 1 KB = 1,024 bytes, Constraints.html)."""
TRANSACTION_WRITE_FACTOR = 2

ITEM_COLLECTION_BYTES = 10 * 1024**3
"""With a local secondary index, one partition key's items plus their LSI entries may not
exceed 10 GB (botocore's DynamoDB model, ItemCollectionSizeLimitExceededException: "The
total size of an item collection has exceeded the maximum limit of 10 gigabytes"; Developer
Guide, Constraints.html). Not adjustable: the table would have to be rebuilt without LSIs."""

GSI_BACK_PRESSURE = True
"""A GSI partition that cannot take a write throttles the base-table write that caused it
("If the GSI doesn't have enough capacity ... DynamoDB throttles writes to the base table",
Developer Guide, gsi-throttling.html; AWS Knowledge Center, dynamodb-gsi-throttling-table):
so the approvers' queue's index partition is a limit on task writes, not only on reads."""

LAMBDA_CONCURRENCY = 1_000
"""Concurrent executions per account and Region, by default (Lambda Developer Guide,
gettingstarted-limits.html: "Concurrent executions 1,000", adjustable)."""

PUT_EVENTS_TPS = 10_000
"""EventBridge PutEvents requests per second per account and Region: us-east-1's documented
10,000 (EventBridge User Guide, eb-quota.html, adjustable). eu-west-1 (dev and prod) is in
us-east-1's tier of the same page's invocations table (18,750 both); its PutEvents row was not
in the copy we could read, so this is the figure to confirm in the Service Quotas console."""
PUT_EVENTS_ENTRIES = 10
"""Entries per PutEvents request (botocore's events model, PutEventsRequestEntryList max 10)."""
EVENTBRIDGE_INVOCATIONS_TPS = 18_750
"""Rule deliveries ("invocations") per second in eu-west-1 (eb-quota.html, adjustable)."""

SFN_START_EXECUTION_RATE = 300
SFN_START_EXECUTION_BURST = 1_300
"""Standard workflows' StartExecution token bucket in us-east-1, us-west-2 and eu-west-1:
bucket 1,300, refill 300 a second (Step Functions Developer Guide, "Quotas related to API
action throttling", awsdocs/aws-step-functions-developer-guide doc_source/limits-overview.md
at 28a1c16; adjustable). EventBridge starting the workflow calls StartExecution."""
SFN_STATE_TRANSITION_RATE = 1_500
SFN_STATE_TRANSITION_BURST = 5_000
"""Standard workflows' StateTransition bucket in the same Regions: 5,000, refill 1,500 a
second (same page, "Quotas related to state throttling"; adjustable)."""

STREAM_READERS_PER_SHARD = 2
""""Do not allow more than two processes to read from the same DynamoDB Streams shard at the
same time" (Developer Guide, Limits, "Simultaneous Readers of a Shard in DynamoDB
Streams")."""
ESM_PARALLELIZATION_MAX = 10
"""Concurrent batches per stream shard a Lambda event-source mapping may run (botocore's
lambda model, ParallelizationFactor 1-10); the manifest leaves it at 1."""


# -- the design's figures (checked against the code by tests/unit/test_scale.py) ------------------


@attrs.frozen(kw_only=True)
class Design:
    """What one unit of load costs each component. Defaults: the code as it is."""

    task_item_bytes: int = 744
    """A representative task item (tests/unit/test_scale.py's, from `to_item`): a 60-character
    title, a 200-character description, three tags, a due date, high priority."""
    lsis: int = 2
    """Local secondary indexes (ByStatusIndex, ByPriorityIndex), both projecting ALL: a task
    write writes each of them, in the owner's partition, at the item's size."""
    stats_transaction_items: int = 2
    """The stats consumer's transaction per event: the event's mark and the stats item."""
    queue_writes_per_approval: int = 2
    """Index writes one approval makes in its queue partition: the entry in, then out."""
    approvers_inbox_writes_per_approval: int = 1
    """The `ApprovalRequested` notification, put in the approvers' shared inbox partition."""
    state_transitions_per_approval: int = 5
    """States an asked approval enters: Validate, CheckPriority, AskApprovers, RecordDecision,
    Complete (stack/workflows.py)."""
    events_per_approval: tuple[str, ...] = (
        "TaskCreated",
        "ApprovalRequested",
        "ApprovalTokenIssued",
        "TaskUpdated",
        "ApprovalDecided",
    )
    """What goes on the bus in one approval's life: the create's two events (stream), the
    workflow's token, the decision's two events (stream)."""
    workflow_put_events: int = 1
    """PutEvents requests the workflow makes itself (AskApprovers), one entry each."""
    deliveries_per_approval: int = 6
    """Rule deliveries of those events (the manifest's rules and the workflow's trigger; the
    decision's TaskUpdated moves no status, so the stats rule does not take it)."""
    workflow_deliveries_per_approval: int = 1
    """Of those, the ones that start the workflow rather than a function."""
    api_requests_per_approval: int = 2
    """The create and the decision."""
    stream_batch_size: int = 100
    invocation_seconds: float = 0.127
    """A function invocation's duration: the API's measured p50 for POST /tasks
    (docs/performance.md, `make bench` load figure, 127.0 ms), for every function alike."""


@attrs.frozen
class Ceiling:
    component: str
    rate: float
    """Largest sustained rate of the load this component carries, per second."""
    limit: str
    adjustable: bool


def _wcu(size: int) -> int:
    return math.ceil(size / WRITE_UNIT_BYTES)


def task_write_units(design: Design) -> int:
    """Write units one task write takes in its owner's partition: the item and each LSI entry
    (ALL projection, so each is the item's size)."""
    return _wcu(design.task_item_bytes) * (1 + design.lsis)


def stats_write_units(design: Design) -> int:
    """Write units the stats consumer's transaction takes in the owner's partition."""
    return design.stats_transaction_items * TRANSACTION_WRITE_FACTOR


def approval_lifecycles(
    design: Design,
    shards: int,
    *,
    api_rate_limit: float | None = None,
    api_reserved_concurrency: int | None = None,
) -> tuple[Ceiling, ...]:
    """Per component, the most high-priority creates per second (each asked, then decided)
    the design sustains system-wide with `shards` queue shards; the stack's own caps (API
    Gateway's stage rate, the API's reserved concurrency) when given. Sorted, lowest first."""
    lambda_invocations = (
        design.api_requests_per_approval
        + design.deliveries_per_approval
        - design.workflow_deliveries_per_approval
        + 2 / design.stream_batch_size  # two stream records (create, decision) per approval
    )
    stream_entries = len(design.events_per_approval) - design.workflow_put_events
    put_events_requests = stream_entries / PUT_EVENTS_ENTRIES + design.workflow_put_events
    ceilings = [
        Ceiling(
            "approvers' queue index (AwaitingApprovalIndex)",
            shards * PARTITION_WCU / design.queue_writes_per_approval,
            "1,000 WCU/s per shard's partition; GSI back-pressure throttles the task write",
            adjustable=False,
        ),
        Ceiling(
            "approvers' inbox partition (GROUP#approvers)",
            PARTITION_WCU / design.approvers_inbox_writes_per_approval,
            "1,000 WCU/s per partition",
            adjustable=False,
        ),
        Ceiling(
            "Step Functions StartExecution",
            SFN_START_EXECUTION_RATE,
            "300/s refill (bucket 1,300)",
            adjustable=True,
        ),
        Ceiling(
            "Step Functions state transitions",
            SFN_STATE_TRANSITION_RATE / design.state_transitions_per_approval,
            "1,500/s refill (bucket 5,000)",
            adjustable=True,
        ),
        Ceiling(
            "EventBridge PutEvents",
            PUT_EVENTS_TPS / put_events_requests,
            "10,000 requests/s",
            adjustable=True,
        ),
        Ceiling(
            "EventBridge rule deliveries",
            EVENTBRIDGE_INVOCATIONS_TPS / design.deliveries_per_approval,
            "18,750 invocations/s",
            adjustable=True,
        ),
        Ceiling(
            "Lambda concurrency (account)",
            LAMBDA_CONCURRENCY / (lambda_invocations * design.invocation_seconds),
            "1,000 concurrent executions",
            adjustable=True,
        ),
    ]
    if api_rate_limit is not None:
        ceilings.append(
            Ceiling(
                "API Gateway stage rate (tasks:throttleRateLimit)",
                api_rate_limit / design.api_requests_per_approval,
                f"{api_rate_limit:,.0f} requests/s, the stack's own",
                adjustable=True,
            )
        )
    if api_reserved_concurrency is not None and api_reserved_concurrency >= 0:
        per_approval = design.api_requests_per_approval * design.invocation_seconds
        ceilings.append(
            Ceiling(
                "API function (tasks:reservedConcurrency)",
                api_reserved_concurrency / per_approval,
                f"{api_reserved_concurrency} concurrent executions, the stack's own",
                adjustable=True,
            )
        )
    return tuple(sorted(ceilings, key=lambda c: c.rate))


def one_user(design: Design, shards: int, others: float = 0.0) -> tuple[Ceiling, ...]:
    """Per component, the most task creates per second one user sustains, with `others`
    approvals a second from everyone else sharing the queue index. Sorted, lowest first."""
    per_create = task_write_units(design) + stats_write_units(design)
    queue = shards * PARTITION_WCU / design.queue_writes_per_approval
    ceilings = [
        Ceiling(
            f"the user's partition (USER#<id>): task, {design.lsis} LSI entries, stats transaction",
            PARTITION_WCU / per_create,
            "1,000 WCU/s per partition",
            adjustable=False,
        ),
        Ceiling(
            "the user's stats item alone",
            PARTITION_WCU / (TRANSACTION_WRITE_FACTOR * 1),
            "1,000 WCU/s per partition, 2 units a transactional write",
            adjustable=False,
        ),
        Ceiling(
            "high-priority creates: the queue index partitions, shared with every tenant",
            max(queue - others, 0.0),
            "1,000 WCU/s per partition",
            adjustable=False,
        ),
    ]
    return tuple(sorted(ceilings, key=lambda c: c.rate))


def binding(ceilings: tuple[Ceiling, ...], *, adjustable: bool = True) -> Ceiling:
    """The first limit reached: of all of them, or (adjustable=False) of the hard ones only,
    what remains once every quota has been raised."""
    return min((c for c in ceilings if adjustable or not c.adjustable), key=lambda c: c.rate)


def tasks_per_user(design: Design) -> int:
    """The most tasks one user can hold before their item collection reaches 10 GB: each task
    stored once in the table and once in each LSI (ALL projection)."""
    return ITEM_COLLECTION_BYTES // (design.task_item_bytes * (1 + design.lsis))


def stream_shard_records(design: Design, parallelization: int = 1) -> float:
    """Records a second one stream shard's consumer gets through at `invocation_seconds` a
    batch (one batch in flight per shard and parallelization slot)."""
    return parallelization * design.stream_batch_size / design.invocation_seconds


def item_bytes(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it, from DynamoDB JSON: each attribute name's UTF-8
    length plus its value's: a string's UTF-8 length; a number's (significant digits + 1) / 2
    rounded up, plus 1; 1 for a boolean or null; a list or map 3, plus 1 per element, plus
    the elements (a map's with their names) (Developer Guide, CapacityUnitCalculations.html,
    "Item sizes and formats")."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: Mapping[str, Any]) -> int:
    ((kind, content),) = value.items()
    if kind == "S":
        return len(str(content).encode())
    if kind == "N":
        digits = str(content).lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in content)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_bytes(v) for k, v in content.items())
    if kind == "SS":
        return sum(len(s.encode()) for s in content)
    raise ValueError(f"no size rule for DynamoDB type {kind!r}")


def render(design: Design = Design(), shards: tuple[int, int] = (1, 16)) -> str:
    """The table docs/scale.md shows (a test keeps the two equal): high-priority creates a
    second each component carries, one queue shard against the most, first limit first."""
    before, after = (approval_lifecycles(design, n) for n in shards)
    carried = {c.component: c.rate for c in after}
    lines = [
        f"| component | limit | N = {shards[0]} | N = {shards[1]} | adjustable |",
        "|---|---|---:|---:|---|",
    ]
    for c in before:
        lines.append(
            f"| {c.component} | {c.limit} | {c.rate:,.0f} | {carried[c.component]:,.0f} | "
            f"{'yes' if c.adjustable else 'no'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())
