"""Metering: what each request and event would be billed on AWS, counted where it happens.

`python -m local_platform --meter FILE` (what `make bench`'s cost section runs) appends one
JSON line to FILE for each billable thing the platform sees:

- `{"kind": "api", ...}`: a request the gateway answered (API Gateway bills each one), with
  its route, status, the request and response sizes, and the size of the access-log line the
  stage would write (`stack.access_log`);
- `{"kind": "begin"}` and `{"kind": "end"}` around each invocation, whatever its outcome
  (a timeout or a crash too): what is in flight, for a reader waiting until all is done;
- `{"kind": "invocation", ...}`: a Lambda invocation, whoever made it (the gateway, the stream
  poller, the bus, the scheduler): the function, its memory, its duration, its init when it
  was a cold start, the bytes its log lines add to CloudWatch Logs, and `aws`: every AWS
  request the function sent, counted on the wire (`WireMeter`).

`WireMeter` runs in each sandbox, installed before the handler is imported, as botocore event
handlers that every botocore session registers (PynamoDB's and boto3's alike), so no handler
code knows about it:

- `before-parameter-build.dynamodb`: asks every DynamoDB call that can report it for
  `ReturnConsumedCapacity=INDEXES` (table, each local and global index, and a transaction's
  doubled units: DynamoDB Local reports all of them);
- `before-send`: one count per HTTP request botocore sends (retries included: each attempt is
  a request AWS receives), and for the requests billed by what they carry, the entries and
  their 64 KB chunks (EventBridge PutEvents, SNS Publish);
- `after-call`: the `ConsumedCapacity` DynamoDB answered.

What happens outside the functions (Step Functions' own transitions and the events its
states put) is on moto, where the bench reads it from the execution history.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs

import attrs

CHUNK_BYTES = 64 * 1024
"""EventBridge bills a PutEvents entry, and SNS a published message, per 64 KB chunk of its
payload (EventBridge and SNS pricing pages; bench/prices.py cites them)."""


@attrs.define
class Meter:
    """The platform's side: one JSON line per billable thing, appended to a file, from any
    thread (the gateway's, the poller's, the bus's)."""

    path: Path
    _file: TextIO | None = None
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def record(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, **fields}, separators=(",", ":"), default=str)
        with self._lock:
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_records(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The complete lines written since `offset`, and the offset after them."""
    if not path.exists():
        return [], offset
    with path.open("rb") as file:
        file.seek(offset)
        data = file.read()
    end = data.rfind(b"\n") + 1  # a line still being written is read next time
    lines = data[:end].decode("utf-8").splitlines()
    return [json.loads(line) for line in lines if line], offset + end


def chunks(payload_bytes: int) -> int:
    """64 KB chunks billed for one entry or message (at least one)."""
    return max(1, math.ceil(payload_bytes / CHUNK_BYTES))


@attrs.define
class WireMeter:
    """The sandbox's side: what the function asked of AWS since the last `take()`."""

    requests: Counter[str] = attrs.field(factory=Counter)
    """`service.Operation` -> HTTP requests sent; the service as botocore's events name it
    (`dynamodb`, `s3`, `eventbridge`, `sns`, `sfn`, `secrets-manager`)."""
    capacity: defaultdict[str, float] = attrs.field(factory=lambda: defaultdict(float))
    """`<table>:read`, `<table>/<index>:write`, ... -> capacity units (read or write as the
    operation consumes them)."""
    chunks: Counter[str] = attrs.field(factory=Counter)
    """`eventbridge.PutEvents` -> its entries' 64 KB chunks; `sns.Publish` -> its message's."""
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    _calls: threading.local = attrs.field(factory=threading.local)
    """The call in flight on this thread (a handler may send from threads of its own)."""

    @classmethod
    def install(cls) -> WireMeter:
        """Register on every botocore session made from now on (before any is made: the
        handler's import creates its clients)."""
        import botocore.handlers  # only a metered sandbox loads it before the handler does

        meter = cls()
        botocore.handlers.BUILTIN_HANDLERS.extend(meter.handlers())
        return meter

    def handlers(self) -> list[tuple[str, Any]]:
        """The botocore events and their handlers (`attach` registers them on one client)."""
        return [
            ("before-parameter-build.dynamodb", self.ask_capacity),
            ("before-send", self.count_request),
            ("after-call.dynamodb", self.read_capacity),
        ]

    def attach(self, client: Any) -> WireMeter:
        """Meter one client only (the tests: `install` is for a sandbox's whole process)."""
        for event, handler in self.handlers():
            client.meta.events.register(event, handler)
        return self

    def ask_capacity(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        members = model.input_shape.members if model.input_shape is not None else {}
        if "ReturnConsumedCapacity" in members:
            params["ReturnConsumedCapacity"] = "INDEXES"
        if model.name == "TransactWriteItems":
            actions: Counter[str] = Counter()
            for item in params.get("TransactItems", []):
                for action in item.values():
                    actions[action["TableName"]] += 1
            self._calls.transact_actions = actions

    def transactional_units(self, table: str, reported: float) -> float:
        """A transactional write costs 2 write units per item up to 1 KB (DynamoDB Developer
        Guide, transaction-apis.html, "Capacity management for transactions"). DynamoDB Local
        reports 2 for a whole transaction of two items (tried: a Put and an Update, 2.0 with
        INDEXES and TOTAL alike), kinder than AWS: count at least 2 per item."""
        actions: Mapping[str, int] = getattr(self._calls, "transact_actions", {})
        return max(reported, TRANSACTION_WRITE_UNITS * actions.get(table, 0))

    def count_request(self, request: Any, event_name: str, **_: Any) -> None:
        # event_name is `before-send.<service>.<Operation>`.
        service, operation = event_name.split(".", 2)[1:]
        name = f"{service}.{operation}"
        body = request.body
        extra = 0
        if name == "eventbridge.PutEvents":
            entries = json.loads(body or b"{}").get("Entries", [])
            extra = sum(chunks(len(json.dumps(entry).encode())) for entry in entries)
        elif name == "sns.Publish":
            extra = chunks(_form_value_bytes(body, "Message"))
        with self._lock:
            self.requests[name] += 1
            if extra:
                self.chunks[name] += extra

    def read_capacity(self, parsed: Mapping[str, Any], model: Any, **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity")
        if not consumed:
            return
        kind = "write" if model.name in WRITE_OPERATIONS else "read"
        transaction = model.name == "TransactWriteItems"
        with self._lock:
            for entry in consumed if isinstance(consumed, list) else [consumed]:
                self._add(entry, kind, transaction)

    def _add(self, entry: Mapping[str, Any], kind: str, transaction: bool) -> None:
        table = entry["TableName"]
        # Without a breakdown, the whole figure is the table's.
        units = entry["Table"]["CapacityUnits"] if "Table" in entry else entry["CapacityUnits"]
        if transaction:
            units = self.transactional_units(table, units)
        self.capacity[f"{table}:{kind}"] += units
        for group in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes"):
            for index, units in entry.get(group, {}).items():
                self.capacity[f"{table}/{index}:{kind}"] += units["CapacityUnits"]

    def take(self) -> dict[str, Any]:
        """What was counted since the last call, and start again."""
        with self._lock:
            taken = {
                "requests": dict(self.requests),
                "capacity": dict(self.capacity),
                "chunks": dict(self.chunks),
            }
            self.requests.clear()
            self.capacity.clear()
            self.chunks.clear()
        return taken


TRANSACTION_WRITE_UNITS = 2

WRITE_OPERATIONS = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteTransaction",
    }
)
"""DynamoDB operations whose consumed capacity is write units (botocore's model reports both
kinds as `CapacityUnits`); the others consume read units."""


def _form_value_bytes(body: Any, field: str) -> int:
    """The size of one field of a form-encoded (query protocol) request body, decoded."""
    text = body.decode() if isinstance(body, bytes) else str(body or "")
    values = parse_qs(text).get(field, [""])
    return len(values[0].encode())
