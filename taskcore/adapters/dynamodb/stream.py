"""What a record of the table's stream means, read with the key scheme.

The stream (NEW_AND_OLD_IMAGES) carries every change to every item. `decode_record` tells the
publisher which ones are domain changes: a task's (its old and new `Task`; None on the side
where it did not exist) or an export record's insertion (the request for an export); every other
item (idempotency records, stats, marks, approval records, markers) means nothing. Records are
plain mappings in DynamoDB Streams' shape (`eventName`; `dynamodb` with `Keys`, `OldImage`,
`NewImage` in DynamoDB JSON; `userIdentity` on a removal by TTL), as Lambda delivers them and
GetRecords returns them.

A removal by the table's TTL is told apart from a user's DeleteItem by its `userIdentity`:
DynamoDB Streams API Reference, `Record.userIdentity`: "Items that are deleted by the Time to
Live process after expiration have the following fields: Records[].userIdentity.type
"Service"; Records[].userIdentity.principalId "dynamodb.amazonaws.com""
(https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_Record.html).
A task removed so was archived (`TaskChange.expired`); any other expiring item (idempotency
records, event markers) still means nothing.

`taskcore.adapters.stream_filters.STREAM_FILTERS` (with the key prefixes, in a module the
manifest can import without PynamoDB) are the event-source mapping's filters: they let through
exactly the records this decodes (a test holds them equal), so Lambda never invokes the function
with a batch of records that mean nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from taskcore.adapters.dynamodb.table import owner_of
from taskcore.adapters.dynamodb.tasks import task_from_image
from taskcore.adapters.stream_filters import EXPORT_PREFIX, TASK_PREFIX
from taskcore.model import ExportId, Task, UserId

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
"""The `userIdentity` of a stream record whose item DynamoDB's TTL removed (see above)."""


@attrs.frozen
class TaskChange:
    """A task written or deleted: its image before and after (None: it did not exist).
    `expired`: the table's TTL removed it (it was archived, not deleted by anyone)."""

    old: Task | None
    new: Task | None
    expired: bool = False


@attrs.frozen
class ExportRequest:
    """An export record inserted: a user asked for an export."""

    owner_id: UserId
    export_id: ExportId


StreamChange = TaskChange | ExportRequest


def _string(image: Mapping[str, Any], name: str) -> str:
    return str(image.get(name, {}).get("S", ""))


def expired_by_ttl(record: Mapping[str, Any]) -> bool:
    """Whether the record is a removal by the table's TTL (no user's request)."""
    identity = record.get("userIdentity") or {}
    return record.get("eventName") == "REMOVE" and all(
        identity.get(name) == value for name, value in TTL_IDENTITY.items()
    )


def decode_record(record: Mapping[str, Any]) -> StreamChange | None:
    """What one stream record changed, or None if it is no domain change. Raises (KeyError,
    ValueError, TypeError) if the record or a task image in it cannot be read."""
    change = record["dynamodb"]
    keys = change.get("Keys") or {}
    sort_key = _string(keys, "sk")
    if sort_key.startswith(TASK_PREFIX):
        old = task_from_image(change["OldImage"]) if "OldImage" in change else None
        new = task_from_image(change["NewImage"]) if "NewImage" in change else None
        return TaskChange(old=old, new=new, expired=expired_by_ttl(record))
    if sort_key.startswith(EXPORT_PREFIX) and record.get("eventName") == "INSERT":
        return ExportRequest(
            owner_id=UserId(owner_of(_string(keys, "pk"))),
            export_id=ExportId(sort_key.removeprefix(EXPORT_PREFIX)),
        )
    return None
