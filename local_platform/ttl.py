"""DynamoDB's Time to Live, emulated: the local platform expires the table's items itself.

DynamoDB Local deletes expired items only in a table without secondary indexes (measured on
2026-12-06, tests/handlers/test_stream.py), so never in the application's table (two LSIs, a
GSI). What AWS does instead, in botocore's words (dynamodb, UpdateTimeToLive): "TTL compares
the current time in epoch time format to the time stored in the TTL attribute of an item. If
the epoch time value stored in the attribute is less than the current time, the item is marked
as expired and subsequently deleted." ... "DynamoDB typically deletes expired items within two
days of expiration." ... "Items that have expired and not been deleted will still show up in
reads, queries, and scans."

`LocalTtl` does that in passes: a paged Scan for items whose `expiresAt` (a Number) is below
now, then a DeleteItem of each, conditional on its `expiresAt` still being below now (an item
written again meanwhile, such as a reopened task, stays). It applies to every expiring item:
idempotency records, event markers, approval records, archived tasks. A pass runs every
`interval_s`, and at once on `run_now()` (`make dev`'s SIGUSR1) or `run_once()` (tests).

On AWS, the stream record of a TTL deletion is a REMOVE whose `userIdentity` is DynamoDB's
service ("Records[].userIdentity.type "Service"; Records[].userIdentity.principalId
"dynamodb.amazonaws.com"", DynamoDB Streams API Reference, `Record`); on DynamoDB Local a
DeleteItem's record is a plain REMOVE. So each deletion is noted in `TtlRemovals` before it is
sent, and the stream poller gives the REMOVE record of a noted key the TTL's identity. A user's
DeleteItem of the very same item in the instant between the note and the emulator's delete
(whose condition then fails) would be given it instead: a window of one local request.

`clock_offset` makes the emulated TTL act as if it were that much later (`--clock-offset 8d`):
how `make dev` and the e2e tests see a week-old completed task archived today.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs

from taskcore.adapters.dynamodb import TTL_ATTRIBUTE

log = logging.getLogger("local_platform.ttl")

Key = tuple[str, str]


def key_of(keys: dict[str, Any]) -> Key:
    """An item's (pk, sk), from its DynamoDB-JSON key."""
    return str(keys["pk"]["S"]), str(keys["sk"]["S"])


@attrs.define
class TtlRemovals:
    """The keys the emulated TTL is deleting, until the stream poller claims their records."""

    _pending: collections.Counter[Key] = attrs.field(factory=collections.Counter)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def note(self, key: Key) -> None:
        with self._lock:
            self._pending[key] += 1

    def forget(self, key: Key) -> None:
        with self._lock:
            self._pending[key] -= 1
            if self._pending[key] <= 0:
                del self._pending[key]

    def claim(self, key: Key) -> bool:
        """Whether a REMOVE record of `key` is the emulated TTL's (claimed once)."""
        with self._lock:
            if self._pending[key] <= 0:
                self._pending.pop(key, None)
                return False
            self._pending[key] -= 1
            if not self._pending[key]:
                del self._pending[key]
            return True

    def __len__(self) -> int:
        with self._lock:
            return sum(self._pending.values())


@attrs.define
class LocalTtl:
    """Expires the table's items as DynamoDB's TTL would, in passes (see the module)."""

    client: Any  # dynamodb
    table_name: str
    removals: TtlRemovals = attrs.field(factory=TtlRemovals)
    clock_offset: timedelta = timedelta(0)
    interval_s: float = 10.0
    """Seconds between passes; 0: only when asked (`run_now`, `run_once`)."""
    page_size: int = 500
    clock: Callable[[], float] = time.time
    expired: int = 0
    """Items deleted so far."""
    _wake: threading.Event = attrs.field(factory=threading.Event)
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _done: threading.Condition = attrs.field(factory=threading.Condition)
    _started: int = 0
    _finished: int = 0
    _thread: threading.Thread | None = None

    def now(self) -> int:
        """The epoch second the TTL compares with: this machine's, moved by `clock_offset`."""
        return int(self.clock() + self.clock_offset.total_seconds())

    def run_once(self) -> list[Key]:
        """One pass: delete every item whose `expiresAt` is below now; the keys deleted."""
        with self._done:
            self._started += 1
        try:
            return self._pass()
        finally:
            with self._done:
                self._finished += 1
                self._done.notify_all()

    def _pass(self) -> list[Key]:
        now = {":now": {"N": str(self.now())}}
        deleted: list[Key] = []
        start: dict[str, Any] | None = None
        while True:
            page = self.client.scan(
                TableName=self.table_name,
                ProjectionExpression="pk, sk",
                FilterExpression="attribute_type(#ttl, :number) AND #ttl < :now",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={**now, ":number": {"S": "N"}},
                Limit=self.page_size,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            for item in page.get("Items", []):
                if self._expire(item, now):
                    deleted.append(key_of(item))
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        self.expired += len(deleted)
        if deleted:
            log.info("pass: %d expired item(s) deleted", len(deleted))
        return deleted

    def _expire(self, item: dict[str, Any], now: dict[str, Any]) -> bool:
        key = key_of(item)
        self.removals.note(key)  # before the delete: its stream record may be read at once
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": item["pk"], "sk": item["sk"]},
                ConditionExpression="#ttl < :now",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues=now,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            self.removals.forget(key)  # written again (or deleted) since the scan read it
            return False
        except Exception:
            self.removals.forget(key)
            raise
        return True

    # -- the background passes ---------------------------------------------------------------

    def start(self) -> LocalTtl:
        self._thread = threading.Thread(target=self._run, name="local-ttl", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run_now(self) -> None:
        """Ask the background thread for a pass at once (safe from a signal handler)."""
        self._wake.set()

    def pass_now(self, timeout_s: float = 30.0) -> bool:
        """Have the background thread make a pass that starts after this call, and wait for
        it to finish; False if it did not within `timeout_s`."""
        with self._done:
            target = self._started + 1
        self._wake.set()
        with self._done:
            return self._done.wait_for(lambda: self._finished >= target, timeout=timeout_s)

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self.run_once()
                if failing:
                    log.warning("TTL passes recovered")
                    failing = False
            except Exception as error:  # keep expiring: an engine restart must not end it
                if not failing:
                    log.warning("a TTL pass failed, retrying: %s", error)
                    failing = True
            self._wake.wait(self.interval_s if self.interval_s > 0 else None)
            self._wake.clear()
