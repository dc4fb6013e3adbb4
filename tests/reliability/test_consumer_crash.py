"""Faults: the event functions crash part-way through their work; redelivery keeps stats exact.

In process, on DynamoDB Local: the task service writes tasks, and the table's real stream feeds
the real stream function (`handlers.stream`), through `StreamPoller` with the manifest's
trigger settings (a failed batch is bisected and retried, as Lambda's event-source mapping
does). What it publishes goes to a `LocalBus`, which delivers each event to the real stats
consumer (`handlers.consumers.record_stats`) with its retries, as EventBridge would. Both
functions are invoked as the Lambda runtime calls a handler (`local_platform.lambda_runtime`),
in this process, so that crashes can be injected:

- the stream function dies after publishing part of a batch: the mapping retries the batch,
  so the events already published are published again (with the same event ids);
- the stats consumer dies before its write, or after it (the write committed, but the
  invocation failed, so the bus delivers the event again), once or twice for the same event.

The stats must still be exact: GET /stats (`stats_to_json` of the stored stats) equals what the
tasks that were created, completed and deleted imply, and every event was applied once.
"""

from __future__ import annotations

import collections
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import attrs
import pytest
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent

from handlers import bootstrap, bus_events
from local_platform.bus import LocalBus, matches
from local_platform.dynamodb_local import DynamoDBLocal
from local_platform.lambda_runtime import invoke_handler, lambda_context
from local_platform.streams import StreamPoller
from stack.manifest import FUNCTIONS, Function
from taskcore.adapters.dynamodb import DynamoStatsStore, DynamoTaskRepository, create_table
from taskcore.commands import CreateTask, UpdateTask
from taskcore.cursors import CursorCodec
from taskcore.events import Envelope
from taskcore.model import Priority, Status, Task, UserId
from taskcore.serialization import stats_to_json
from taskcore.services import TaskService
from taskcore.stats import UserStats, completion_bucket, delta_for, iso_week
from taskcore.testing import (
    FixedClock,
    InMemoryAttachmentStore,
    SequentialIds,
    principal,
)
from tests.e2e.fake_aws import FakeSqs, FakeStepFunctions
from tests.handlers.bus import bus_event
from tests.reliability.ledger import LEDGER, scale

PART = "faults: consumer crash"
USERS = scale(3, 10)
TASKS_PER_USER = scale(12, 120)
STREAM_CRASHES = scale(3, 12)
"""Invocations of the stream function that die half-way through publishing."""
STREAM_FUNCTION = next(f for f in FUNCTIONS if f.stream is not None)
STATS_FUNCTION = next(f for f in FUNCTIONS if f.name == "stats")


PLANS: tuple[tuple[str, ...], ...] = (("after",), ("before",), ("after", "before"), ())
"""What befalls a delivery's first attempts: the sandbox dies before or after its write."""


class SandboxCrashed(Exception):
    """The function's sandbox died mid-invocation (what Lambda reports as a failed invoke)."""


@attrs.define
class CrashingPublisher:
    """The stream function's EventBridge: each envelope goes to the bus as EventBridge would
    deliver it. On the planned calls the sandbox dies after publishing half of them."""

    bus: LocalBus
    crash_on: set[int]
    calls: int = 0
    crashes: int = 0
    published: collections.Counter[str] = attrs.field(factory=collections.Counter)
    """Domain event id -> how many times it was put on the bus."""
    for_stats: set[str] = attrs.field(factory=set)
    """Domain event ids the stats rule's pattern matches."""

    def publish(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        self.calls += 1
        crash = self.calls in self.crash_on and len(envelopes) > 1
        for envelope in envelopes[: len(envelopes) // 2] if crash else envelopes:
            event = bus_event(envelope)
            self.bus.inbox.put(event)
            self.published[envelope.event_id] += 1
            if any(matches(rule.pattern, event) for rule in STATS_FUNCTION.rules):
                self.for_stats.add(envelope.event_id)
        if crash:
            self.crashes += 1
            raise SandboxCrashed(f"died after publishing {len(envelopes) // 2}/{len(envelopes)}")
        return []


@attrs.define
class CrashingConsumer:
    """Invokes the stats consumer as the platform does, dying on a plan keyed by the delivery
    (EventBridge's event id): a quarter of deliveries die after the write, a quarter before,
    a quarter both (after on the first attempt, before on the second), a quarter never. At
    most two attempts of a delivery fail: the bus makes four before dead-lettering."""

    attempts: collections.Counter[str] = attrs.field(factory=collections.Counter)
    crashes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    applied: collections.Counter[str] = attrs.field(factory=collections.Counter)
    """Domain event id -> how many invocations changed the stats (must end at exactly 1)."""
    seen: collections.Counter[str] = attrs.field(factory=collections.Counter)
    """Domain event id -> how many invocations ran the handler."""
    counted: set[str] = attrs.field(factory=set)
    """Domain event ids that move the stats (a rename, say, does not)."""
    invocations: int = 0

    def __call__(self, function: Function, event: dict[str, Any]) -> Any:
        assert function is STATS_FUNCTION, function.name
        self.invocations += 1
        delivery = event["id"]
        self.attempts[delivery] += 1
        planned = PLANS[zlib.crc32(delivery.encode()) % len(PLANS)]
        attempt = self.attempts[delivery]
        step = planned[attempt - 1] if attempt <= len(planned) else None
        if step == "before":
            self.crashes["before"] += 1
            raise SandboxCrashed("died before writing")
        result = invoke_for_event(function, event)
        if delta_for(bus_events.domain_event(EventBridgeEvent(event))) is not None:
            self.counted.add(result["eventId"])
        self.seen[result["eventId"]] += 1
        self.applied[result["eventId"]] += bool(result["applied"])
        if step == "after":
            self.crashes["after"] += 1
            raise SandboxCrashed("died after writing, before reporting success")
        return result


@attrs.define
class World:
    service: TaskService
    stats: DynamoStatsStore
    poller: StreamPoller
    bus: LocalBus
    publisher: CrashingPublisher
    consumer: CrashingConsumer
    clock: FixedClock
    stream_invocations: int = 0

    def pump(self) -> None:
        """Run the stream and the bus until both are idle, as the platform's threads would."""
        arn = self.poller._arn()
        idle = 0
        while idle < 3:
            busy = self.poller.poll_once(arn)
            delivered = self.bus.drain_inbox(limit=100) + self.bus.retry_due()
            idle = 0 if busy or delivered else idle + 1


@pytest.fixture
def world(dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    table = f"crash-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb_local.client(), table)
    clock = FixedClock()
    stats = DynamoStatsStore(table, endpoint_url=dynamodb_local.endpoint_url)
    service = TaskService(
        tasks=DynamoTaskRepository(table, endpoint_url=dynamodb_local.endpoint_url, clock=clock),
        stats=stats,
        attachments=InMemoryAttachmentStore(),
        clock=clock,
        ids=SequentialIds(),
        cursors=CursorCodec(b"k" * 32),
    )
    consumer = CrashingConsumer()
    bus = LocalBus(
        sqs=FakeSqs([]),
        stepfunctions=FakeStepFunctions(),
        queue_url="tap",
        functions=[STATS_FUNCTION],
        workflows={},
        invoke=consumer,
        retry_delays_s=(0, 0),
    )
    publisher = CrashingPublisher(bus, crash_on={2 + 3 * n for n in range(STREAM_CRASHES)})
    assert STREAM_FUNCTION.stream is not None
    built = World(
        service=service,
        stats=stats,
        poller=StreamPoller(
            client=dynamodb_local.streams_client(),
            table_client=dynamodb_local.client(),
            table_name=table,
            invoke=lambda event: invoke_stream(built, event),
            trigger=STREAM_FUNCTION.stream,
        ),
        bus=bus,
        publisher=publisher,
        consumer=consumer,
        clock=clock,
    )
    # The functions' adapters, as bootstrap would build them from their environment.
    monkeypatch.setattr(bootstrap, "stats_store", lambda: stats)
    monkeypatch.setattr(bootstrap, "event_publisher", lambda: publisher)
    yield built
    bus.stop()


def invoke_for_event(function: Function, event: dict[str, Any]) -> Any:
    context = lambda_context(function, "us-east-1", int(time.time() * 1000))
    return invoke_handler(function, event, context)


def invoke_stream(world: World, event: dict[str, Any]) -> Any:
    world.stream_invocations += 1
    return invoke_for_event(STREAM_FUNCTION, event)


@attrs.define
class Expected:
    """What a user's stats must be, from what happened to their tasks."""

    live: dict[str, Task] = attrs.field(factory=dict)
    completed: list[Task] = attrs.field(factory=list)

    def stats(self, owner: UserId) -> UserStats:
        return UserStats(
            owner_id=owner,
            by_status=collections.Counter(task.status.value for task in self.live.values()),
            completed_by_week=collections.Counter(
                iso_week(task.completed_at) for task in self.completed if task.completed_at
            ),
            completion_histogram=collections.Counter(
                completion_bucket((task.completed_at - task.created_at).total_seconds())
                for task in self.completed
                if task.completed_at
            ),
        )


def without_zeros(stats: UserStats) -> UserStats:
    return attrs.evolve(stats, by_status={k: v for k, v in stats.by_status.items() if v})


def test_crashed_deliveries_are_redelivered_and_stats_stay_exact(world: World) -> None:
    part = LEDGER.part(PART)
    service, clock = world.service, world.clock
    users = [principal(f"crash-{n}") for n in range(USERS)]
    expected = {user.user_id: Expected() for user in users}

    # Round one: every user creates tasks (one carries an Idempotency-Key, as clients do).
    for user in users:
        for n in range(TASKS_PER_USER):
            command = CreateTask(title=f"task {n}", priority=(Priority.LOW, Priority.MEDIUM)[n % 2])
            task = service.create_task(user, command, f"key-{n}" if n % 3 == 0 else None).task
            expected[user.user_id].live[task.id] = task
            clock.advance(timedelta(minutes=1))
    world.pump()

    # Round two: start most, complete half after varied times, rename some, delete some.
    for user in users:
        mine = expected[user.user_id]
        for n, task_id in enumerate(list(mine.live)):
            if n % 5 == 4:
                service.update_task(user, task_id, UpdateTask(title=f"renamed {n}"))
                continue
            mine.live[task_id] = service.transition(user, task_id, Status.IN_PROGRESS)
            if n % 2 == 0:
                clock.advance(timedelta(minutes=7 * n + 1))
                done = service.transition(user, task_id, Status.COMPLETED)
                mine.live[task_id] = done
                mine.completed.append(done)
            if n % 7 == 3:
                service.delete_task(user, task_id)
                del mine.live[task_id]
    world.pump()

    publisher, consumer, bus, poller = world.publisher, world.consumer, world.bus, world.poller
    part.sent(count=world.stream_invocations + consumer.invocations)
    part.fault(publisher.crashes + consumer.crashes.total())
    never = [event_id for event_id in consumer.counted if consumer.applied[event_id] == 0]
    part.lost(len(never))

    # GET /stats is exactly what happened to the tasks.
    now = clock.now()
    for user in users:
        stored = without_zeros(world.stats.get(user.user_id))
        wanted = without_zeros(expected[user.user_id].stats(user.user_id))
        assert stored == wanted, user.user_id
        assert stats_to_json(stored, now) == stats_to_json(wanted, now)
        assert stats_to_json(service.get_stats(user), now) == stats_to_json(wanted, now)

    # Every event was applied exactly once, however many times it was delivered.
    assert set(consumer.seen) == publisher.for_stats, "an event never reached the consumer"
    twice = [event_id for event_id, count in consumer.applied.items() if count > 1]
    assert not never, f"never applied: {never[:10]}"
    assert not twice, f"applied more than once: {twice[:10]}"
    applied_without_delta = {e for e, n in consumer.applied.items() if n} - consumer.counted
    assert not applied_without_delta, applied_without_delta

    # The crashes happened, and caused redeliveries.
    assert publisher.crashes > 0, "the stream function never crashed"
    assert consumer.crashes["before"] > 0, consumer.crashes
    assert consumer.crashes["after"] > 0, consumer.crashes
    republished = sum(count - 1 for count in publisher.published.values())
    assert republished > 0, "no event was published twice"
    assert bus.dead_letters == []
    assert poller.failed == []

    redelivered = consumer.invocations - len(consumer.attempts)
    part.note(
        f"{USERS * TASKS_PER_USER} tasks, {len(publisher.published)} events: the stream "
        f"function died {publisher.crashes}x mid-batch ({republished} events published again), "
        f"the stats consumer {consumer.crashes['before']}x before and "
        f"{consumer.crashes['after']}x after its write ({redelivered} retried deliveries); "
        "stats exact, each event applied once"
    )
