"""The repository under concurrent use: one shared instance, many threads.

Run against the in-memory reference and DynamoDB Local (moto serialises requests in-process,
so it proves nothing here). A shared repository instance must be safe across threads.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import attrs
import pytest

from taskcore.errors import ConcurrentModification, NotFound
from taskcore.model import Priority, Status, Task, UserId
from taskcore.ports import IdempotencyKeyTaken, IdempotencyRecord
from taskcore.stats import StatsDelta
from tests.contract.backends import Backend

pytestmark = pytest.mark.parametrize("backend", ["memory", "dynamodb_local"], indirect=True)

ALICE = UserId("alice")
BOB = UserId("bob")
BARRIER_TIMEOUT = 60.0

T = TypeVar("T")


def run_all(workers: int, job: Callable[[int], T]) -> list[T]:
    """Run `job(0..workers-1)` on as many threads at once; re-raise the first failure."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(job, worker) for worker in range(workers)]
        return [future.result(timeout=300) for future in futures]


@attrs.frozen
class Outcome:
    """One read-modify-write attempt: the version it wrote, or None if it lost the race."""

    worker: int
    round: int
    title: str
    version: int | None


class TestReadModifyWrite:
    WORKERS = 8
    ROUNDS = 25

    def test_conditional_saves_never_lose_an_update(self, backend: Backend) -> None:
        task = backend.new_task(ALICE, title="start")
        backend.repo.add(task)
        now = backend.clock.now()
        barrier = threading.Barrier(self.WORKERS, timeout=BARRIER_TIMEOUT)

        def worker(number: int) -> list[Outcome]:
            outcomes: list[Outcome] = []
            try:
                for round_ in range(self.ROUNDS):
                    barrier.wait()  # every round, all workers race for the same version
                    read = backend.repo.get(ALICE, task.id)
                    assert read is not None
                    title = f"worker {number} round {round_}"
                    edited = read.edit(now, title=title)
                    time.sleep(0.001)  # some work between read and write: lets others in
                    try:
                        backend.repo.save(edited, expected_version=read.version)
                    except ConcurrentModification:
                        outcomes.append(Outcome(number, round_, title, None))
                    else:
                        outcomes.append(Outcome(number, round_, title, edited.version))
            except BaseException:
                barrier.abort()  # do not leave the others waiting
                raise
            return outcomes

        outcomes = [o for batch in run_all(self.WORKERS, worker) for o in batch]
        successes = [o for o in outcomes if o.version is not None]
        conflicts = [o for o in outcomes if o.version is None]

        assert len(successes) + len(conflicts) == self.WORKERS * self.ROUNDS
        assert conflicts, "no save ever lost a race: the test did not exercise concurrency"
        versions = sorted(o.version for o in successes if o.version is not None)
        # Each success moved the task one version on: no two saves claimed the same version.
        duplicates = [v for v, n in Counter(versions).items() if n > 1]
        assert not duplicates, f"lost updates: versions written twice {duplicates}"
        assert versions == list(range(2, len(successes) + 2))
        # Every round has a winner: the first save of a round expects what all read first.
        assert len(successes) >= self.ROUNDS
        final = backend.repo.get(ALICE, task.id)
        assert final is not None
        assert final.version == len(successes) + 1
        last = max(successes, key=lambda o: o.version or 0)
        assert final.title == last.title
        assert final.owner_id == ALICE
        assert final.created_at == task.created_at


def record(task: Task, key: str, fingerprint: str, backend: Backend) -> IdempotencyRecord:
    return IdempotencyRecord(
        owner_id=task.owner_id,
        key=key,
        fingerprint=fingerprint,
        task=task,
        # Whole seconds: the contract suite covers sub-second expiries; this is about races.
        expires_at=(backend.clock.now() + timedelta(hours=24)).replace(microsecond=0),
    )


class TestConcurrentIdempotentCreate:
    WORKERS = 20

    def test_one_create_wins_the_key(self, backend: Backend) -> None:
        # Ids are handed out here: SequentialIds is not meant for threads.
        tasks = [backend.new_task(ALICE, title=f"attempt {n}") for n in range(self.WORKERS)]
        records = [record(t, "same-key", f"fp-{n}", backend) for n, t in enumerate(tasks)]
        barrier = threading.Barrier(self.WORKERS, timeout=BARRIER_TIMEOUT)

        def attempt(number: int) -> IdempotencyRecord | None:
            """None if this add won, else the record it was shown."""
            try:
                barrier.wait()
                backend.repo.add(tasks[number], records[number])
            except IdempotencyKeyTaken as taken:
                return taken.record
            except BaseException:
                barrier.abort()
                raise
            return None

        results = run_all(self.WORKERS, attempt)
        winners = [n for n, shown in enumerate(results) if shown is None]
        assert len(winners) == 1, f"{len(winners)} adds succeeded with one key: {winners}"
        winner = winners[0]
        for number, shown in enumerate(results):
            if number != winner:
                assert shown == records[winner], f"attempt {number} was shown {shown}"
        page = backend.repo.list_owned(ALICE, status=None, priority=None, limit=100, after=None)
        assert page.items == (tasks[winner],)
        for number, task in enumerate(tasks):
            if number != winner:
                assert backend.repo.get(ALICE, task.id) is None

    def test_the_same_key_of_different_owners_does_not_contend(self, backend: Backend) -> None:
        owners = [UserId(f"user-{n}") for n in range(self.WORKERS)]
        tasks = [backend.new_task(owner) for owner in owners]
        barrier = threading.Barrier(self.WORKERS, timeout=BARRIER_TIMEOUT)

        def attempt(number: int) -> None:
            try:
                barrier.wait()
                backend.repo.add(tasks[number], record(tasks[number], "k", "fp", backend))
            except BaseException:
                barrier.abort()
                raise

        run_all(self.WORKERS, attempt)
        for owner, task in zip(owners, tasks, strict=True):
            assert backend.repo.get(owner, task.id) == task


class TestTenantIsolationUnderLoad:
    WORKERS = 8

    def test_no_call_with_bobs_id_reaches_alices_task(self, backend: Backend) -> None:
        alices = backend.new_task(ALICE, priority=Priority.LOW, title="alice's secret")
        backend.repo.add(alices)
        bobs = backend.new_task(BOB, priority=Priority.LOW, title="bob's own")
        backend.repo.add(bobs)
        now = backend.clock.now()
        barrier = threading.Barrier(self.WORKERS, timeout=BARRIER_TIMEOUT)
        leaks: list[str] = []

        def as_bob(number: int) -> int:
            """Bob's calls, aimed at alice's task id; how many were refused as NotFound."""
            refused = 0
            try:
                barrier.wait()
                for round_ in range(10):
                    if backend.repo.get(BOB, alices.id) is not None:
                        leaks.append("get")
                    for status in (None, Status.PENDING):
                        for priority in (None, Priority.LOW):
                            page = backend.repo.list_owned(
                                BOB, status=status, priority=priority, limit=50, after=None
                            )
                            if any(t.owner_id != BOB or t.id == alices.id for t in page.items):
                                leaks.append(f"list_owned {status} {priority}")
                    forged = attrs.evolve(alices, owner_id=BOB)
                    try:
                        backend.repo.save(
                            forged.edit(now, title=f"bob {number}/{round_}"), alices.version
                        )
                        leaks.append("save")
                    except NotFound:
                        refused += 1
                    try:
                        backend.repo.delete(forged)
                        leaks.append("delete")
                    except NotFound:
                        refused += 1
            except BaseException:
                barrier.abort()
                raise
            return refused

        def as_alice(_: int) -> None:
            # Meanwhile alice reads her own task: it must stay untouched.
            for _round in range(20):
                assert backend.repo.get(ALICE, alices.id) == alices

        with ThreadPoolExecutor(max_workers=2) as pool:
            alice_future = pool.submit(run_all, 2, as_alice)
            refused = sum(run_all(self.WORKERS, as_bob))
            alice_future.result(timeout=300)

        assert leaks == []
        assert refused == self.WORKERS * 10 * 2
        assert backend.repo.get(ALICE, alices.id) == alices
        assert backend.repo.get(BOB, alices.id) is None
        page = backend.repo.list_owned(BOB, status=None, priority=None, limit=50, after=None)
        assert page.items == (bobs,)


class TestConcurrentStats:
    WORKERS = 8

    def test_each_event_applies_once_under_redelivery(self, backend: Backend) -> None:
        events = [f"event-{n}" for n in range(30)]
        barrier = threading.Barrier(self.WORKERS, timeout=BARRIER_TIMEOUT)

        def consumer(_: int) -> list[str]:
            """Every consumer gets every event (at-least-once delivery); what it applied."""
            applied: list[str] = []
            try:
                barrier.wait()
                for event_id in events:
                    delta = StatsDelta(status_counts={"pending": 1}, completion_bucket=4)
                    if backend.stats.apply(ALICE, event_id, delta):
                        applied.append(event_id)
            except BaseException:
                barrier.abort()
                raise
            return applied

        applied = [e for batch in run_all(self.WORKERS, consumer) for e in batch]
        assert sorted(applied) == sorted(events)
        stats = backend.stats.get(ALICE)
        assert stats.count(Status.PENDING) == len(events)
        assert dict(stats.completion_histogram) == {4: len(events)}
