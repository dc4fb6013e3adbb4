"""The approvers' queue in shards: which shard holds a task's queue entry, and a page of the
queue as the ordered merge of its shards.

The queue is one sparse index partition per shard. With one shard (the default) everything is
as it always was: one partition, one request per page. With N shards a task's entry is in the
shard a stable hash of its id names (CRC-32, not Python's salted `hash`), so finding one task
is still one request; a page of the queue (oldest first, by task id) is a k-way merge of the
shards, each read in id order past the last id handed out.

The shard numbering does not depend on N: shard `s` is the same partition under any N, and
shard 0 is the one-shard queue's partition. So raising N keeps every existing entry in a
partition the queue reads (entries keep the shard they were written in until the task is
written again); lowering it hides the entries in the shards it drops until then
(docs/scale.md).

A position in a sharded queue is `{"after": <last task id handed out>, "done": <hex bit mask
of the shards known to hold nothing after it>}`: a few dozen characters whatever N is, well
inside a cursor's 2,048 (`taskcore.cursors.CURSOR_MAX`).
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Mapping

import attrs

from taskcore.cursors import Position
from taskcore.errors import InvalidCursor
from taskcore.model import Task

DEFAULT_SHARDS = 1
MAX_SHARDS = 16
"""The most shards a stack may configure (`tasks:approvalQueueShards`): a page reads every
shard not known to be exhausted, so N is also the most requests a page costs."""


def shard_of(task_id: str, shards: int) -> int:
    """The shard of a task's queue entry: stable across processes and deploys."""
    return zlib.crc32(task_id.encode()) % shards


def check_shards(shards: int) -> int:
    if isinstance(shards, bool) or not isinstance(shards, int):
        raise TypeError(f"approval queue shards must be an int, not {shards!r}")
    if not DEFAULT_SHARDS <= shards <= MAX_SHARDS:
        raise ValueError(f"approval queue shards must be 1 to {MAX_SHARDS}, not {shards}")
    return shards


@attrs.frozen
class ShardRead:
    """What one read of one shard returned: entries past the given id, ascending, and whether
    the shard may hold more after the last of them."""

    items: tuple[Task, ...]
    more: bool


ReadShard = Callable[[int, str | None, int], ShardRead]
"""`read(shard, after, limit)`: at most `limit` entries of `shard` with ids greater than
`after` (all of them when None), ascending. One storage request."""


@attrs.frozen
class QueuePosition:
    after: str
    done: frozenset[int] = frozenset()


def position_to_map(position: QueuePosition) -> Position:
    mask = sum(1 << shard for shard in position.done)
    return {"after": position.after, "done": format(mask, "x")}


def position_from_map(position: Mapping[str, str]) -> QueuePosition:
    """A sharded position from a (signed, so ours) cursor; InvalidCursor if it is not one."""
    after, done = position.get("after"), position.get("done", "0")
    if set(position) - {"after", "done"} or not isinstance(after, str) or not after:
        raise InvalidCursor("is malformed")
    if not (isinstance(done, str) and 0 < len(done) <= MAX_SHARDS // 4 + 1):
        raise InvalidCursor("is malformed")
    try:
        mask = int(done, 16)
    except ValueError:
        raise InvalidCursor("is malformed") from None
    if mask < 0 or mask >> MAX_SHARDS:
        raise InvalidCursor("is malformed")
    return QueuePosition(after, frozenset(s for s in range(MAX_SHARDS) if mask >> s & 1))


def merged_page(
    shards: int, limit: int, after: QueuePosition | None, read: ReadShard
) -> tuple[tuple[Task, ...], QueuePosition | None]:
    """One page of the queue: the `limit` lowest ids past `after` over every shard, and where
    the next page starts (None: every shard is exhausted).

    Each shard not known to be exhausted is read once for up to `limit` entries (any one shard
    may hold the whole page) and again only if its entries run out while it has more. A shard
    a page exhausted is skipped by the pages after it: an entry that joins it later, with an
    id past the position, is in the next walk of the queue, as one that joins behind the
    one-shard queue's position is.
    """
    start = after.after if after is not None else None
    done = {s for s in (after.done if after is not None else ()) if s < shards}
    buffers: dict[int, deque[Task]] = {}
    more: dict[int, bool] = {}
    last: dict[int, str | None] = {}

    def fill(shard: int) -> None:
        got = read(shard, last[shard], limit)
        buffers[shard].extend(got.items)
        # A read that returned nothing cannot have more (no filter): never loop on it.
        more[shard] = got.more and bool(got.items)
        if got.items:
            last[shard] = got.items[-1].id

    for shard in range(shards):
        if shard in done:
            continue
        buffers[shard], last[shard] = deque(), start
        fill(shard)
    page: list[Task] = []
    while len(page) < limit:
        for shard, buffer in buffers.items():
            if not buffer and more[shard]:
                fill(shard)
        heads = [shard for shard, buffer in buffers.items() if buffer]
        if not heads:
            break
        page.append(buffers[min(heads, key=lambda s: buffers[s][0].id)].popleft())
    exhausted = done | {s for s, buffer in buffers.items() if not buffer and not more[s]}
    if len(exhausted) == shards or not page:
        return tuple(page), None
    return tuple(page), QueuePosition(page[-1].id, frozenset(exhausted))
