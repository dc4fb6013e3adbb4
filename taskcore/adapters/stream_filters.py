"""Which records of the table's stream mean something to the stream function: the Lambda
event-source mapping's filters (`stack.manifest.STREAM`'s `StreamTrigger.filters`), read by
`infra/` (the mapping's `FilterCriteria`) and by the local platform's stream poller alike.

They let through exactly the records `taskcore.adapters.dynamodb.stream.decode_record` decodes
(a test holds the two equal over every item kind the table holds): a task item's, whatever its
event (its sort key starts `TASK#`; a removal by TTL too), and an export record's insertion
(`EXPORT#`, no old image). Everything else (stats and their event marks, idempotency records,
approval records, event markers, inbox notifications) is dropped before any invocation.

The filters name only the record's `dynamodb` key: the Lambda Developer Guide's page on
filtering DynamoDB sources says "DynamoDB event source mappings only support filtering on the
dynamodb key" (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html), so an
insertion is told by its missing old image (the table's stream is NEW_AND_OLD_IMAGES: only an
INSERT has none), not by `eventName`. `exists` is used on a leaf (`OldImage.sk.S`), where
filter syntax applies it.

This module is apart from the `dynamodb` package (whose import loads PynamoDB and botocore)
because the manifest, which every function and infra import, reads it; the key prefixes live
here for the same reason and `table` takes them from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TASK_PREFIX = "TASK#"
EXPORT_PREFIX = "EXPORT#"
SORT_KEY = "sk"

TASK_CHANGES: Mapping[str, Any] = {
    "dynamodb": {"Keys": {SORT_KEY: {"S": [{"prefix": TASK_PREFIX}]}}}
}
"""A task item's record, any event (insert, modify, remove, removal by TTL)."""
EXPORT_REQUESTS: Mapping[str, Any] = {
    "dynamodb": {
        "Keys": {SORT_KEY: {"S": [{"prefix": EXPORT_PREFIX}]}},
        "OldImage": {SORT_KEY: {"S": [{"exists": False}]}},
    }
}
"""An export record's insertion: no old image (every item's image carries its sort key)."""

STREAM_FILTERS: tuple[Mapping[str, Any], ...] = (TASK_CHANGES, EXPORT_REQUESTS)
"""The stream function's filters, ORed: Lambda invokes it only with records matching one."""
