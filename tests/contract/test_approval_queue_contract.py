"""The approvers' queue in shards (`tasks:approvalQueueShards`), against every backend.

The one-shard queue's contract (tests/contract/test_repository_contract.py) holds with any
number of shards: the same tasks, in the same order (oldest first), page after page, however
the pages are cut; a task is found by id with one request. Also here: what changing the shard
count on a live table does (entries keep the key they were written with until rewritten).
Expected results are computed in Python from what the test wrote.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

import attrs
import pytest

from bench.dynamodb_requests import attach_counter
from taskcore.approval_queue import MAX_SHARDS, shard_of
from taskcore.cursors import CURSOR_MAX, CursorCodec, Position
from taskcore.model import Decision, Priority, Status, Task, UserId
from taskcore.ports import StoredPage, TaskRepository
from tests.contract.backends import Backend

OWNERS = [UserId(name) for name in ("alice", "bob", "carol", "dave")]
APPROVER = UserId("approver-7")


def follow(repo: TaskRepository, limit: int) -> list[StoredPage]:
    pages: list[StoredPage] = []
    after: Position | None = None
    while True:
        page = repo.list_awaiting_approval(limit=limit, after=after)
        assert len(page.items) <= limit
        pages.append(page)
        if page.last_position is None:
            return pages
        assert page.last_position != after, "the position did not move"
        assert len(pages) < 500, "paging does not end"
        after = page.last_position


def queue(repo: TaskRepository, limit: int) -> list[Task]:
    return [task for page in follow(repo, limit) for task in page.items]


def store(backend: Backend, task: Task, *changes: Callable[[Task], Task]) -> Task:
    backend.repo.add(task)
    for change in changes:
        changed = change(task)
        backend.repo.save(changed, expected_version=task.version)
        task = changed
    return task


def populate(backend: Backend, seed: int, count: int = 40) -> list[Task]:
    """`count` tasks of random owners, priorities and fates; returns those awaiting approval,
    oldest first (what the queue must be)."""
    rng = random.Random(seed)
    now = backend.clock.now
    fates: list[Callable[[Task], Task]] = [
        lambda t: t,
        lambda t: t.decide(Decision.APPROVE, APPROVER, now()),
        lambda t: t.transition_to(Status.CANCELLED, now()),
        lambda t: t.edit(now(), title="edited while waiting"),
    ]
    stored = []
    for _ in range(count):
        priority = rng.choice(list(Priority))
        task = backend.new_task(rng.choice(OWNERS), priority=priority)
        fate = rng.choice(fates) if task.awaiting_approval else fates[0]
        stored.append(store(backend, task, fate))
    return sorted((t for t in stored if t.awaiting_approval), key=lambda t: t.id)


@pytest.mark.parametrize("seed", [1, 2])
def test_every_page_cut_gives_the_one_shard_queue(sharded_backend: Backend, seed: int) -> None:
    expected = populate(sharded_backend, seed)
    assert len(expected) > 5
    shards: int = sharded_backend.repo.approval_shards  # type: ignore[attr-defined]
    assert len({shard_of(t.id, shards) for t in expected}) > 1, "the tasks share one shard"
    for limit in (1, 2, 7, 100):
        assert queue(sharded_backend.repo, limit) == expected, f"limit {limit}"


def test_pages_are_full_until_the_last(sharded_backend: Backend) -> None:
    expected = populate(sharded_backend, 3)
    pages = follow(sharded_backend.repo, 4)
    sizes = [len(p.items) for p in pages]
    assert all(size == 4 for size in sizes[:-1]), sizes
    assert sum(sizes) == len(expected)


def test_a_task_is_found_by_id_in_its_shard(sharded_backend: Backend) -> None:
    expected = populate(sharded_backend, 4, count=20)
    for task in expected:
        assert sharded_backend.repo.get_awaiting_approval(task.id) == task
    decided = sharded_backend.repo.get_awaiting_approval(expected[0].id)
    assert decided is not None
    out = decided.decide(Decision.REJECT, APPROVER, sharded_backend.clock.now())
    sharded_backend.repo.save(out, expected_version=decided.version)
    assert sharded_backend.repo.get_awaiting_approval(out.id) is None
    assert queue(sharded_backend.repo, 3) == expected[1:]


def test_an_empty_sharded_queue_is_one_empty_page(sharded_backend: Backend) -> None:
    page = sharded_backend.repo.list_awaiting_approval(limit=10, after=None)
    assert page == StoredPage(items=(), last_position=None)


def test_a_position_fits_in_a_cursor_at_the_most_shards(backend: Backend) -> None:
    repo = attrs.evolve(backend.repo, approval_shards=MAX_SHARDS)  # type: ignore[misc]
    for _ in range(3 * MAX_SHARDS):
        repo.add(backend.new_task(OWNERS[0], priority=Priority.CRITICAL, title="x" * 200))
    page = repo.list_awaiting_approval(limit=1, after=None)
    assert page.last_position is not None
    codec = CursorCodec(b"k" * 32)
    cursor = codec.encode(f"approvals|{'u' * 128}", page.last_position, datetime(2030, 1, 1))
    assert len(cursor) <= CURSOR_MAX // 8, len(cursor)


# -- DynamoDB: requests on the wire, and a shard count changed on a live table ----------------


def test_a_sharded_page_costs_a_query_per_shard_at_most(
    sharded_dynamo_backend: Backend,
) -> None:
    sharded_backend = sharded_dynamo_backend
    expected = populate(sharded_backend, 5)
    shards: int = sharded_backend.repo.approval_shards  # type: ignore[attr-defined]
    counter = attach_counter(sharded_backend.repo)  # type: ignore[arg-type]
    with counter.measuring():
        page = sharded_backend.repo.list_awaiting_approval(limit=5, after=None)
    assert page.items == tuple(expected[:5])
    assert counter.operations == {"Query": shards}
    with counter.measuring():
        sharded_backend.repo.get_awaiting_approval(expected[0].id)
    assert counter.operations == {"Query": 1}


def test_raising_the_shard_count_keeps_the_queue(dynamo_backend: Backend) -> None:
    """Entries written with one shard (key `AWAITING_APPROVAL`, shard 0 under any count) and
    with 3 are all listed, in order, and found by id, once the stack has 8; a cursor issued
    by the one-shard queue goes on under 8."""
    backend = dynamo_backend
    one = backend.repo
    three = attrs.evolve(one, approval_shards=3)  # type: ignore[misc]
    eight = attrs.evolve(one, approval_shards=8)  # type: ignore[misc]
    expected = []
    for n in range(24):
        writer = one if n < 12 else three
        task = backend.new_task(OWNERS[n % 4], priority=Priority.HIGH)
        writer.add(task)
        expected.append(task)
    for limit in (1, 5, 100):
        assert queue(eight, limit) == expected, f"limit {limit}"
    for task in expected:
        assert eight.get_awaiting_approval(task.id) == task
    first = one.list_awaiting_approval(limit=5, after=None)
    assert list(first.items) == expected[:5]
    assert first.last_position is not None
    assert "sk" in first.last_position
    rest = eight.list_awaiting_approval(limit=100, after=first.last_position)
    assert list(first.items + rest.items) == expected


def test_lowering_the_shard_count_hides_the_dropped_shards_until_rewritten(
    dynamo_backend: Backend,
) -> None:
    """What docs/scale.md says of lowering: entries in shards beyond the new count are not
    listed until their task is written again (it then takes its shard under the new count)."""
    backend = dynamo_backend
    four = attrs.evolve(backend.repo, approval_shards=4)  # type: ignore[misc]
    two = attrs.evolve(backend.repo, approval_shards=2)  # type: ignore[misc]
    written = [backend.new_task(OWNERS[0], priority=Priority.HIGH) for _ in range(16)]
    for task in written:
        four.add(task)
    kept = [t for t in written if shard_of(t.id, 4) < 2]
    hidden = [t for t in written if shard_of(t.id, 4) >= 2]
    assert kept
    assert hidden
    assert queue(two, 3) == kept
    edited = hidden[0].edit(backend.clock.now(), title="edited")
    two.save(edited, expected_version=hidden[0].version)
    assert queue(two, 3) == sorted([*kept, edited], key=lambda t: t.id)
