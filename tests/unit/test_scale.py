"""The scale model (stack/scale.py): its inputs are the code's, and its conclusions hold.

Deterministic: no clock, no load, no emulator; the figures docs/scale.md and the README's
"Scale" section state are the ones asserted here.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from local_platform.bus import matches
from stack import manifest, scale
from stack.config import StackConfig
from stack.scale import Design, approval_lifecycles, binding, one_user
from stack.workflows import TOKEN_ISSUED, WORKFLOW_SOURCE, approval_definition
from taskcore.adapters.dynamodb.table import table_definition
from taskcore.adapters.dynamodb.tasks import to_item
from taskcore.approval_queue import MAX_SHARDS
from taskcore.commands import CreateTask
from taskcore.events import EVENT_SOURCE, Event, derive_events
from taskcore.model import Decision, Principal, Priority, Task, TaskId, UserId
from taskcore.notifications import APPROVERS_INBOX, notifications_for
from taskcore.serialization import event_to_json
from taskcore.testing import in_memory_service, principal

ROOT = Path(__file__).parents[2]
DESIGN = Design()

# -- the inputs are the code's --------------------------------------------------------------------


def test_the_representative_task_item_is_the_model_s_size() -> None:
    task = Task.new(
        id=TaskId("01JEQ8Z1X2Y3Z4A5B6C7D8E9F0"),
        owner_id=UserId("3f2a8c1e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"),  # a Cognito sub's length
        title="T" * 60,
        description="D" * 200,
        tags=["alpha", "beta", "gamma"],
        due_date=date(2030, 1, 15),
        priority=Priority.HIGH,
        now=datetime(2030, 1, 1, 9, tzinfo=UTC),
    )
    assert scale.item_bytes(to_item(task).serialize()) == DESIGN.task_item_bytes
    assert scale.task_write_units(DESIGN) == 3  # under 1 KB: one unit each, item and 2 LSIs


def test_item_sizes_follow_dynamodb_s_rules() -> None:
    # "shirt-color" = "R" and "shirt-size" = "M": 23 bytes (the Developer Guide's example).
    assert scale.item_bytes({"shirt-color": {"S": "R"}, "shirt-size": {"S": "M"}}) == 23
    assert scale.item_bytes({"n": {"N": "12345"}}) == 1 + 3 + 1
    assert scale.item_bytes({"l": {"L": [{"S": "ab"}]}}) == 1 + 3 + 1 + 2


def test_every_lsi_projects_the_whole_item() -> None:
    lsis = table_definition("t")["LocalSecondaryIndexes"]
    assert len(lsis) == DESIGN.lsis
    assert {i["Projection"]["ProjectionType"] for i in lsis} == {"ALL"}


def test_the_asked_approval_enters_the_model_s_states() -> None:
    states = approval_definition(bus_name="b", timeout_seconds=60)["States"]
    path = ["Validate", "CheckPriority", "AskApprovers", "RecordDecision", "Complete"]
    for here, there in itertools.pairwise(path):
        state = states[here]
        onward = {state.get("Next"), *(c["Next"] for c in state.get("Choices", ()))}
        assert there in onward, (here, there)
    assert states[path[-1]]["Type"] == "Succeed"
    assert len(path) == DESIGN.state_transitions_per_approval
    put_events = [s for s in path if "events:putEvents" in states[s].get("Resource", "")]
    assert len(put_events) == DESIGN.workflow_put_events


def approval_lifecycle() -> list[tuple[Task | None, Task | None]]:
    """The stored changes of one approval: a high-priority create, then its decision."""
    fakes = in_memory_service()
    owner, approver = principal("alice"), principal("bob", Principal.APPROVERS)
    created = fakes.service.create_task(owner, CreateTask(title="t", priority=Priority.HIGH))
    assert created.task.awaiting_approval
    fakes.service.decide_approval(approver, created.task.id, Decision.APPROVE)
    return fakes.tasks.changes


def lifecycle_events() -> list[Event]:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    return [event for old, new in approval_lifecycle() for event in derive_events(old, new, at)]


def test_an_approval_writes_its_queue_partition_as_often_as_the_model_says() -> None:
    def key(task: Task | None) -> str | None:
        return None if task is None else to_item(task, approval_shards=MAX_SHARDS).approval_queue

    writes = 0
    for old, new in approval_lifecycle():
        before, after = key(old), key(new)
        # An index entry put or deleted is one write; moved to another key, two; rewritten
        # in place (an edit while waiting), one; absent before and after, none.
        writes += (before is not None) + (after is not None) - (before == after is not None)
    assert writes == DESIGN.queue_writes_per_approval


def test_an_approval_writes_the_approvers_inbox_as_often_as_the_model_says() -> None:
    to_approvers = [
        n
        for event in lifecycle_events()
        for n in notifications_for(event)
        if n.recipient == APPROVERS_INBOX
    ]
    assert len(to_approvers) == DESIGN.approvers_inbox_writes_per_approval


def test_the_events_of_an_approval_are_the_model_s() -> None:
    kinds = [event.kind for event in lifecycle_events()]
    expected = Counter(DESIGN.events_per_approval)
    expected[TOKEN_ISSUED] -= DESIGN.workflow_put_events  # the workflow's, not the stream's
    assert Counter(kinds) == +expected


def test_the_events_are_delivered_as_often_as_the_model_says() -> None:
    """Matched as the bus matches them (the local bus's EventBridge matcher), with the events'
    real detail: a rule may look into it (the stats rule takes only status changes)."""
    rules = [rule for f in manifest.FUNCTIONS for rule in f.rules]
    starts = [w.started_by for w in manifest.WORKFLOWS]
    events = [
        {"source": EVENT_SOURCE, "detail-type": e.kind, "detail": event_to_json(e)}
        for e in lifecycle_events()
    ] + [{"source": WORKFLOW_SOURCE, "detail-type": TOKEN_ISSUED, "detail": {}}] * (
        DESIGN.workflow_put_events
    )

    def deliveries(candidates: list[manifest.EventRule]) -> int:
        return sum(matches(r.pattern, event) for r in candidates for event in events)

    assert deliveries(rules + starts) == DESIGN.deliveries_per_approval
    assert deliveries(starts) == DESIGN.workflow_deliveries_per_approval


def test_the_invocation_time_is_the_measured_one() -> None:
    performance = (ROOT / "docs" / "performance.md").read_text()
    line = next(x for x in performance.splitlines() if "p50 POST /tasks vs raw PutItem" in x)
    assert f"({DESIGN.invocation_seconds * 1000:.1f} ms" in line


def test_the_stream_feeds_one_reader() -> None:
    readers = [f for f in manifest.FUNCTIONS if f.stream is not None]
    assert len(readers) == 1 < scale.STREAM_READERS_PER_SHARD
    assert readers[0].stream is not None
    assert readers[0].stream.batch_size == DESIGN.stream_batch_size


# -- the conclusions ------------------------------------------------------------------------------


def queue(shards: int) -> scale.Ceiling:
    (found,) = [c for c in approval_lifecycles(DESIGN, shards) if "queue" in c.component]
    return found


@pytest.mark.parametrize("shards", [2, 8, MAX_SHARDS])
def test_sharding_multiplies_the_queue_s_ceiling(shards: int) -> None:
    assert queue(shards).rate == shards * queue(1).rate
    assert queue(1).rate == 500  # 1,000 WCU/s, two index writes an approval


def test_one_partition_binds_first_among_the_hard_limits() -> None:
    hard = binding(approval_lifecycles(DESIGN, 1), adjustable=False)
    assert hard == queue(1)
    assert hard.rate == 500


def test_sharded_the_approvers_inbox_binds_next() -> None:
    for shards in range(3, MAX_SHARDS + 1):
        hard = binding(approval_lifecycles(DESIGN, shards), adjustable=False)
        assert hard.component.startswith("approvers' inbox")
        assert hard.rate == 1_000
    # So 16 shards raise the hard ceiling 2x (500 -> 1,000), not 16x: the queue's own
    # partitions carry 8,000 a second, the approvers' shared inbox 1,000.
    assert queue(MAX_SHARDS).rate == 8_000


def test_with_default_quotas_step_functions_binds_before_and_after() -> None:
    for shards in (1, MAX_SHARDS):
        first = binding(approval_lifecycles(DESIGN, shards))
        assert first.component.startswith("Step Functions")
        assert first.rate == 300
    # Both of its quotas bind at the same rate: 300 starts; 1,500 transitions / 5 states.
    sfn = [c for c in approval_lifecycles(DESIGN, 1) if c.component.startswith("Step")]
    assert [c.rate for c in sfn] == [300, 300]


def test_the_other_adjustable_limits_are_further_away() -> None:
    rates = {c.component: c.rate for c in approval_lifecycles(DESIGN, MAX_SHARDS)}
    assert rates["EventBridge PutEvents"] == pytest.approx(10_000 / 1.4)
    assert rates["EventBridge rule deliveries"] == pytest.approx(18_750 / 6)
    invocations = 2 + 6 - 1 + 2 / 100
    assert rates["Lambda concurrency (account)"] == pytest.approx(1_000 / (invocations * 0.127))
    # Past the approvers' inbox (1,000) since the stats rule stopped taking the decision's
    # TaskUpdated (issue #18's cost work): one invocation less per approval.
    assert 1_000 < rates["Lambda concurrency (account)"] < 1_200


def test_prod_is_bound_by_its_own_api_throttle() -> None:
    prod = StackConfig.from_stack_file("prod")
    ceilings = approval_lifecycles(
        DESIGN,
        prod.approval_queue_shards,
        api_rate_limit=prod.throttle_rate_limit,
        api_reserved_concurrency=prod.reserved_concurrency,
    )
    first = binding(ceilings)
    assert first.component.startswith("API Gateway stage rate")
    assert first.rate == prod.throttle_rate_limit / 2 == 100
    # And its one queue partition is not what binds, with or without sharding.
    assert prod.approval_queue_shards == 1
    assert queue(1).rate > binding(approval_lifecycles(DESIGN, 1)).rate


def test_one_user_is_bound_by_their_own_partition_whatever_the_shards() -> None:
    for shards in (1, MAX_SHARDS):
        first = binding(one_user(DESIGN, shards))
        assert first.component.startswith("the user's partition")
        assert first.rate == pytest.approx(1_000 / 7)  # 3 (task + LSIs) + 4 (stats, 2 items x 2)
    stats = [c for c in one_user(DESIGN, 1) if "stats item" in c.component]
    assert stats[0].rate == 500


def test_sharding_stops_other_tenants_throttling_a_user() -> None:
    # 450 approvals a second from everyone else: one partition leaves this user 50 a second
    # of high-priority creates (back-pressure throttles the rest); 16 leave 7,550.
    before = binding(one_user(DESIGN, 1, others=450))
    after = binding(one_user(DESIGN, MAX_SHARDS, others=450))
    assert before.component.startswith("high-priority creates")
    assert before.rate == 50
    assert after.component.startswith("the user's partition")


def test_a_user_holds_millions_of_tasks_before_the_item_collection_cap() -> None:
    held = scale.tasks_per_user(DESIGN)
    assert held == 10 * 1024**3 // (744 * 3)
    assert 4_800_000 < held < 4_820_000


def test_one_stream_shard_s_consumer_needs_a_second_batch_in_flight() -> None:
    # A partition takes 1,000 writes a second, one stream shard's worth; at 127 ms a batch of
    # 100 the default one batch in flight gets through 787 records a second, two 1,575.
    assert math.floor(scale.stream_shard_records(DESIGN)) == 787
    assert scale.stream_shard_records(DESIGN, 2) > scale.PARTITION_WCU
    assert scale.ESM_PARALLELIZATION_MAX >= 2


def test_docs_scale_shows_the_model_s_table() -> None:
    text = (ROOT / "docs" / "scale.md").read_text()
    shown = text.split("<!-- stack.scale.render() -->\n", 1)[1].split("\n<!-- end -->", 1)[0]
    assert shown == scale.render()
