"""DynamoDB Local's stream, delivered to the stream function the way Lambda's event-source
mapping delivers it: batches of records in order per shard, partial-batch failures honoured
(retry from the first reported record, bisecting, then give up to the on-failure list after
`max_retries`), so the stream handler runs here exactly as on AWS.

The trigger's filters (Lambda event filtering, `StreamTrigger.filters`) are applied as Lambda
applies them: a record matching none is dropped and the shard's iterator moves past it; a batch
of such records invokes nothing. They are matched with the local bus's EventBridge matcher
(Lambda's filter rules are EventBridge's pattern syntax).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import attrs

from local_platform.bus import check_pattern, matches
from local_platform.sandboxes import SandboxError
from local_platform.ttl import TtlRemovals, key_of
from stack.manifest import StreamTrigger

log = logging.getLogger("local_platform.streams")

Invoke = Callable[[dict[str, Any]], dict[str, Any] | None]


TTL_EVENT_NAME = "UNKNOWN_TO_SDK_VERSION"
"""What DynamoDB Local names the stream record of an item its TTL deleted (its Java SDK's
placeholder for an enum value it does not know), with no `userIdentity`. Measured with the
jar `make` installs on 2026-12-06: it deletes an expired item within seconds (AWS: "typically
within a few days"), and the record is otherwise a REMOVE's (keys, old image); but it does so
only for a table without secondary indexes, so never for the application's table."""
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
"""How AWS marks a removal by TTL in a stream record (DynamoDB developer guide, "DynamoDB
Streams and Time to Live"; Streams API Reference, `Record.userIdentity`): a REMOVE whose
`userIdentity` is this."""


def lambda_record(
    record: Mapping[str, Any], stream_arn: str, region: str, *, by_ttl: bool = False
) -> dict[str, Any]:
    """A GetRecords record (as boto3 returns it) in the shape of a Lambda stream event record.
    A TTL deletion (DynamoDB Local's own, or `by_ttl`: the emulated TTL's, `local_platform.ttl`)
    is given the shape AWS gives it: `REMOVE`, with the service's identity."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = created.timestamp()
    expired = record["eventName"] == TTL_EVENT_NAME or (by_ttl and record["eventName"] == "REMOVE")
    identity = TTL_IDENTITY if expired else record.get("userIdentity")
    return {
        "eventID": record["eventID"],
        "eventName": "REMOVE" if expired else record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
        **({"userIdentity": dict(identity)} if identity else {}),
    }


def _code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


@attrs.define
class StreamPoller:
    """Polls every shard of a table's stream and feeds batches to `invoke`."""

    client: Any  # dynamodbstreams
    table_client: Any  # dynamodb
    table_name: str
    invoke: Invoke
    trigger: StreamTrigger
    region: str = "us-east-1"
    interval_s: float = 0.2
    busy_interval_s: float = 0.05
    shard_refresh_s: float = 1.0
    ttl_removals: TtlRemovals | None = None
    """The emulated TTL's deletions (`local_platform.ttl`): their REMOVE records are the TTL's."""
    failed: list[dict[str, Any]] = attrs.field(factory=list)
    """Records given up on (Lambda would send them to the on-failure destination)."""
    delivered: int = 0
    filtered_out: int = 0
    """Records the trigger's filters dropped (no invocation carried them)."""
    _iterators: dict[str, str | None] = attrs.field(factory=dict)
    _shards: list[dict[str, Any]] = attrs.field(factory=list)
    _shards_read_at: float = -1e9
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _thread: threading.Thread | None = None

    def __attrs_post_init__(self) -> None:
        for pattern in self.trigger.filters:  # a form the matcher lacks fails here, not silently
            check_pattern(pattern)

    def passes(self, record: Mapping[str, Any]) -> bool:
        """Whether Lambda would hand `record` (a Lambda stream event record) to the function:
        no filters, or one of them matches."""
        filters = self.trigger.filters
        return not filters or any(matches(pattern, record) for pattern in filters)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stream-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _arn(self) -> str:
        table = self.table_client.describe_table(TableName=self.table_name)["Table"]
        return str(table["LatestStreamArn"])

    def _run(self) -> None:
        arn: str | None = None
        failing = False
        while not self._stop.is_set():
            try:
                arn = arn or self._arn()
                busy = self.poll_once(arn)
                if failing:
                    log.warning("stream polling recovered")
                    failing = False
            except Exception as error:  # keep polling: an engine restart must not end delivery
                if _code(error) == "ResourceNotFoundException":
                    # The table was recreated (an in-memory engine restarted): a new stream.
                    arn, self._iterators, self._shards_read_at = None, {}, -1e9
                if not failing:  # one line per outage, not one per poll
                    log.warning("stream polling failed, retrying until it works: %s", error)
                    failing = True
                busy = False
            # Lambda polls a shard a few times a second; polling flat out would keep DynamoDB
            # Local busy answering empty reads instead of the API's requests.
            self._stop.wait(self.busy_interval_s if busy else self.interval_s)

    def poll_once(self, arn: str) -> bool:
        """One round over every shard; True if any records were delivered."""
        if time.monotonic() - self._shards_read_at > self.shard_refresh_s:
            described = self.client.describe_stream(StreamArn=arn)["StreamDescription"]
            self._shards, self._shards_read_at = described["Shards"], time.monotonic()
        busy = False
        for shard in self._shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.client.get_shard_iterator(
                    StreamArn=arn,
                    ShardId=shard_id,
                    ShardIteratorType=self.trigger.starting_position,
                )["ShardIterator"]
            iterator = self._iterators[shard_id]
            if iterator is None:
                continue  # closed shard, fully read
            response = self.client.get_records(
                ShardIterator=iterator, Limit=self.trigger.batch_size
            )
            self._iterators[shard_id] = response.get("NextShardIterator")
            records = [
                lambda_record(r, arn, self.region, by_ttl=self._by_ttl(r))
                for r in response.get("Records", [])
            ]
            if records:
                busy = True
                kept = [r for r in records if self.passes(r)]
                self.filtered_out += len(records) - len(kept)
                if kept:
                    self.deliver(kept)
        return busy

    def _by_ttl(self, record: Mapping[str, Any]) -> bool:
        if self.ttl_removals is None or record["eventName"] != "REMOVE":
            return False
        return self.ttl_removals.claim(key_of(record["dynamodb"]["Keys"]))

    def deliver(self, records: list[dict[str, Any]]) -> None:
        """Lambda's semantics for one batch: retry from the first reported failure; bisect a
        batch that fails as a whole; after `max_retries`, give the record up."""
        queue: list[tuple[list[dict[str, Any]], int]] = [(records, 0)]
        while queue:
            batch, attempt = queue.pop(0)
            try:
                result = self.invoke({"Records": batch}) or {}
                failures = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
            except Exception as error:
                if isinstance(error, SandboxError):  # the function's own log has the traceback
                    log.error(
                        "the stream function failed on %d record(s): %s", len(batch), error.brief
                    )
                else:
                    log.exception("the stream function failed on %d record(s)", len(batch))
                failures = [batch[0]["dynamodb"]["SequenceNumber"]]
                if self.trigger.bisect_on_error and len(batch) > 1:
                    half = len(batch) // 2
                    queue[:0] = [(batch[:half], attempt + 1), (batch[half:], attempt + 1)]
                    continue
            if not failures:
                self.delivered += len(batch)
                continue
            sequences = [r["dynamodb"]["SequenceNumber"] for r in batch]
            first = min(sequences.index(f) for f in failures if f in sequences)
            self.delivered += first
            rest = batch[first:]
            if attempt >= self.trigger.max_retries:
                log.error("giving up on %d stream record(s)", len(rest[:1]))
                self.failed.append(rest[0])  # the on-failure destination gets the culprit
                rest = rest[1:]
                attempt = -1
            if rest:
                time.sleep(min(0.05 * 2**attempt, 1)) if attempt > 0 else None
                queue.insert(0, (rest, attempt + 1))
