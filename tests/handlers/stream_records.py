"""Reading a DynamoDB Local table's whole stream, as the local platform's poller delivers it,
for the tests of what stream records mean (test_stream.py) and which of them invoke the stream
function (test_stream_filters.py)."""

from __future__ import annotations

from typing import Any

from local_platform.dynamodb_local import DynamoDBLocal
from local_platform.streams import StreamPoller
from local_platform.ttl import TtlRemovals
from stack.manifest import StreamTrigger


def read_stream(
    engine: DynamoDBLocal, table: str, ttl_removals: TtlRemovals | None = None
) -> list[dict[str, Any]]:
    """Every record of `table`'s stream so far, in Lambda's shape (no filters: all of them);
    `ttl_removals`: the emulated TTL's deletions, labelled as AWS's TTL labels them."""
    records: list[dict[str, Any]] = []

    def collect(event: dict[str, Any]) -> dict[str, Any]:
        records.extend(event["Records"])
        return {"batchItemFailures": []}

    poller = StreamPoller(
        client=engine.streams_client(),
        table_client=engine.client(),
        table_name=table,
        invoke=collect,
        trigger=StreamTrigger(batch_size=1000),
        ttl_removals=ttl_removals,
    )
    arn = poller._arn()
    while poller.poll_once(arn):
        pass
    return records
