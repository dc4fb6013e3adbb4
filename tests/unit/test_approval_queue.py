"""The approvers' queue in shards (`taskcore.approval_queue`): the merge keeps the one-shard
queue's order exactly, whatever the shard count, the page size and the read sizes."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskcore.approval_queue import (
    MAX_SHARDS,
    QueuePosition,
    ShardRead,
    check_shards,
    merged_page,
    position_from_map,
    position_to_map,
    shard_of,
)
from taskcore.commands import CreateTask
from taskcore.cursors import Position
from taskcore.errors import InvalidCursor
from taskcore.model import Principal, Priority, Task, TaskId, UserId
from taskcore.testing import EXAMPLE_TIME, InMemoryTaskRepository, in_memory_service, principal

IDS = st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=26, max_size=26)


def task(task_id: str) -> Task:
    return Task.new(
        id=TaskId(task_id),
        owner_id=UserId("alice"),
        title="t",
        priority=Priority.HIGH,
        now=EXAMPLE_TIME,
    )


def walk(repo: InMemoryTaskRepository, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after: Position | None = None
    while True:
        page = repo.list_awaiting_approval(limit=limit, after=after)
        pages.append([t.id for t in page.items])
        if page.last_position is None:
            return pages
        after = page.last_position
        assert len(pages) <= 1000


@settings(max_examples=150, deadline=None)
@given(
    ids=st.sets(IDS, max_size=60),
    shards=st.integers(1, MAX_SHARDS),
    limit=st.integers(1, 12),
)
def test_paging_a_sharded_queue_gives_the_one_shard_sequence(
    ids: set[str], shards: int, limit: int
) -> None:
    tasks = {("alice", i): task(i) for i in ids}
    one = InMemoryTaskRepository(tasks=dict(tasks))
    sharded = InMemoryTaskRepository(tasks=dict(tasks), approval_shards=shards)
    expected = [i for page in walk(one, limit) for i in page]
    pages = walk(sharded, limit)
    assert [i for page in pages for i in page] == expected == sorted(ids)
    # Full pages until the last; an empty page only when there is nothing at all.
    assert all(len(page) == limit for page in pages[:-1])
    assert pages[-1] or not ids


class Truncating:
    """A shard reader like DynamoDB under its 1 MB page cap: it may return fewer than asked,
    with more to come; it counts its reads."""

    def __init__(self, ids: Sequence[str], shards: int, cut: int) -> None:
        self.shards, self.cut, self.reads = shards, cut, 0
        self.by_shard = {
            s: sorted(i for i in ids if shard_of(i, shards) == s) for s in range(shards)
        }

    def __call__(self, shard: int, after: str | None, limit: int) -> ShardRead:
        self.reads += 1
        rest = [i for i in self.by_shard[shard] if after is None or i > after]
        got = rest[: min(limit, self.cut)]
        return ShardRead(items=tuple(task(i) for i in got), more=len(rest) > len(got))


@settings(max_examples=100, deadline=None)
@given(
    ids=st.sets(IDS, max_size=50),
    shards=st.integers(1, MAX_SHARDS),
    limit=st.integers(1, 10),
    cut=st.integers(1, 10),
)
def test_short_reads_are_read_on_and_merged_in_order(
    ids: set[str], shards: int, limit: int, cut: int
) -> None:
    read = Truncating(sorted(ids), shards, cut)
    got: list[str] = []
    after: QueuePosition | None = None
    while True:
        items, after = merged_page(shards, limit, after, read)
        got += [t.id for t in items]
        if after is None:
            break
        # What a cursor carries, and what comes back from one.
        after = position_from_map(position_to_map(after))
    assert got == sorted(ids)


def test_a_page_reads_each_live_shard_once_when_no_read_is_cut_short() -> None:
    ids = [f"{n:026d}" for n in range(200)]
    read = Truncating(ids, 8, cut=100)
    items, after = merged_page(8, 10, None, read)
    assert [t.id for t in items] == ids[:10]
    assert read.reads == 8
    assert after is not None
    assert after.done == frozenset()


def test_exhausted_shards_are_not_read_again() -> None:
    # One task in each of shards 0..3 but many in shard 4: after the first page, only shard 4
    # has anything past the position.
    shards = 5
    by_shard: dict[int, list[str]] = {s: [] for s in range(shards)}
    n = 0
    while len(by_shard[4]) < 10 or any(len(by_shard[s]) < 1 for s in range(4)):
        i = f"{n:026d}"
        s = shard_of(i, shards)
        if s == 4 or not by_shard[s]:
            by_shard[s].append(i)
        n += 1
    ids = sorted(i for group in by_shard.values() for i in group)
    read = Truncating(ids, shards, cut=100)
    first, after = merged_page(shards, len(ids) - 3, None, read)
    assert after is not None
    assert after.done == frozenset(range(4))
    read.reads = 0
    rest, end = merged_page(shards, 10, after, read)
    assert read.reads == 1  # shard 4 only
    assert [t.id for t in first + rest] == ids
    assert end is None


def test_the_shard_is_crc32_of_the_id() -> None:
    # Stable across processes and deploys: a fixed function of the id, not Python's hash.
    task_id = "01HZX0000000000000000000AB"
    assert shard_of(task_id, 16) == zlib.crc32(task_id.encode()) % 16 == 4
    assert shard_of(task_id, 1) == 0


@pytest.mark.parametrize("shards", [0, 17, -1, True, 2.0])
def test_shard_counts_outside_1_to_16_are_refused(shards: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        check_shards(shards)  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError)):
        InMemoryTaskRepository(approval_shards=shards)  # type: ignore[arg-type]


def test_a_position_round_trips_and_stays_small() -> None:
    position = QueuePosition("01HZX0000000000000000000AB", frozenset({0, 3, 15}))
    mapped = position_to_map(position)
    assert mapped == {"after": "01HZX0000000000000000000AB", "done": "8009"}
    assert position_from_map(mapped) == position


@pytest.mark.parametrize(
    "mapped",
    [
        {},
        {"after": ""},
        {"after": "x", "done": "zz"},
        {"after": "x", "done": "10000"},
        {"after": "x", "done": ""},
        {"after": "x", "done": "-1"},
        {"after": "x", "other": "1"},
    ],
)
def test_malformed_positions_are_invalid_cursors(mapped: dict[str, str]) -> None:
    with pytest.raises(InvalidCursor):
        position_from_map(mapped)


def test_the_service_pages_a_sharded_queue_with_signed_cursors() -> None:
    """Through `TaskService`: the approver's pages, cursors and all, are the one-shard ones."""
    pages: dict[int, list[list[str]]] = {}
    for shards in (1, 6):
        fakes = in_memory_service()
        fakes.tasks.approval_shards = shards
        for n in range(23):
            owner = principal(f"user-{n % 5}")
            fakes.clock.advance(timedelta(seconds=1))
            fakes.service.create_task(owner, CreateTask(title=f"t{n}", priority=Priority.HIGH))
        approver = principal("user-0", Principal.APPROVERS)
        cursor: str | None = None
        pages[shards] = []
        while True:
            page = fakes.service.list_awaiting_approval(approver, limit=4, cursor=cursor)
            pages[shards].append([t.title for t in page.items])
            cursor = page.next_cursor
            if cursor is None:
                break
    assert pages[6] == pages[1]
    assert sum(len(p) for p in pages[1]) == 23 - 5  # the approver's own are not listed
