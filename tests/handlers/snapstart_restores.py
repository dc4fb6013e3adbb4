"""One SnapStart snapshot of the HTTP API function and two restores of it, as this machine can
play them: this process is the snapshot, two forks of it are the restores
(`local_platform.snapstart`). Run by tests/handlers/test_snapstart.py, which sets the
function's environment and reads the JSON this prints:

    python -m tests.handlers.snapstart_restores [--no-hooks]

The snapshot: the handler module imported, the runtime's before-snapshot hooks run (the real
composition root on DynamoDB and S3, clients built) with every socket connection refused, then
the storage swapped for in-memory adapters (the restores' requests cannot reach AWS; the id
generator, clock and cursor codec stay the composition root's), and one warm-up request that
creates a task, with python-ulid's clock frozen in that millisecond: the worst case for the
state a snapshot holds (an id minted, the cold-start flags spent, ids due in the same
millisecond).

Each restore (with the after-restore hooks, or without them with `--no-hooks`): creates a task
with an Idempotency-Key and replays it, lists one task to get a cursor, mints ids and a `random`
number; then checks the other restore's cursor through `GET /tasks?cursor=`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import socket
import sys
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import attrs
import ulid

REFUSED: list[str] = []
LOW_PAGE = {"priority": "low", "limit": "1"}
CURSOR_KEY = "s" * 48
"""The cursor-signing key, in place of the one the API reads from Secrets Manager (sockets are
refused here: the secret is read on first use, never before the snapshot)."""


def refuse_connections() -> None:
    """Every socket connection fails (and is recorded): the snapshot must need no network."""

    def refuse(self: socket.socket, address: Any) -> None:
        REFUSED.append(repr(address))
        raise ConnectionRefusedError(f"no network in this test: {address!r}")

    socket.socket.connect = refuse  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign,assignment]


def freeze_ulid_clock() -> int:
    """python-ulid's generators (the current one and any new one) all see this millisecond;
    the service's clock is frozen at it too (ids carry their record's creation time)."""
    now_ms = time.time_ns() // 1_000_000
    ulid.ULIDGenerator._default_clock = staticmethod(lambda: now_ms)  # type: ignore[method-assign]
    ulid.default_generator.clock = lambda: now_ms
    return now_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-hooks", action="store_true", help="restore without the hooks")
    args = parser.parse_args()
    refuse_connections()

    # -- the snapshot ---------------------------------------------------------------------
    from handlers import bootstrap, http_api
    from handlers.http_api.telemetry import logger
    from local_platform.gateway.payload import http_event
    from local_platform.lambda_runtime import handler_context
    from local_platform.snapstart import fork_restore, run_before_snapshot
    from stack.manifest import API
    from taskcore.cursors import CursorCodec
    from taskcore.testing import (
        FixedClock,
        InMemoryAttachmentStore,
        InMemoryStatsStore,
        InMemoryTaskRepository,
    )

    run_before_snapshot()
    built = bootstrap.container()
    prepared = {
        "dynamodb": built.service.tasks.models.connection._client is not None,  # type: ignore[attr-defined]
        "s3": built.service.attachments._lazy._client is not None,  # type: ignore[attr-defined]
        "secretsmanager": built.service.cursors.client._client is not None,  # type: ignore[attr-defined]
        "parameters": "aws_lambda_powertools.utilities.parameters" in sys.modules,
    }

    frozen = FixedClock(datetime.fromtimestamp(freeze_ulid_clock() / 1000, UTC))
    service = attrs.evolve(
        built.service,
        clock=frozen,
        tasks=InMemoryTaskRepository(),
        stats=InMemoryStatsStore(),
        attachments=InMemoryAttachmentStore(),
        cursors=CursorCodec(CURSOR_KEY.encode()),
    )
    container = attrs.evolve(built, service=service)
    http_api.app = http_api.create_app(lambda: container)

    def invoke(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One invocation through the real handler: status, body, the Logger's cold_start key
        and the metrics it printed (EMF)."""
        emitted = io.StringIO()
        with contextlib.redirect_stdout(emitted):
            response = http_api.handler(http_event(method, path, **kwargs), handler_context(API))
        metrics = [
            metric["Name"]
            for line in emitted.getvalue().splitlines()
            if line.startswith("{")
            for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]
        ]
        return {
            "status": response["statusCode"],
            "body": json.loads(response["body"]) if response.get("body") else None,
            "cold_start": logger.get_current_keys().get("cold_start"),
            "metrics": metrics,
        }

    warm_up = invoke("POST", "/tasks", route_key="POST /tasks", body={"title": "warm-up"})

    # -- the restores ---------------------------------------------------------------------
    def restored(connection: Connection) -> None:
        # Low priority: the warm-up task (medium) stays out of the page, whose cursor then
        # points at one of this restore's own tasks.
        create = {"route_key": "POST /tasks", "body": {"title": "restored", "priority": "low"}}
        key = {"Idempotency-Key": "restore-1"}
        first = invoke("POST", "/tasks", headers=key, **create)
        replay = invoke("POST", "/tasks", headers=key, **create)
        second = invoke("POST", "/tasks", **create)
        page = invoke("GET", "/tasks", route_key="GET /tasks", query=LOW_PAGE)
        connection.send(
            {
                "first": first,
                "replay": replay,
                "second": second,
                "cursor": page["body"]["nextCursor"],
                "ids": [container.service.ids.new_id() for _ in range(100)],
                "random": random.random(),
            }
        )
        others = connection.recv()
        checked = {
            name: invoke(
                "GET", "/tasks", route_key="GET /tasks", query=LOW_PAGE | {"cursor": cursor}
            )["status"]
            for name, cursor in others.items()
        }
        connection.send({"cursor_checks": checked})

    restores = [fork_restore(restored, hooks=not args.no_hooks) for _ in range(2)]
    firsts = [restore.receive() for restore in restores]
    for restore, other in zip(restores, reversed(firsts), strict=True):
        cursor = other["cursor"]  # type: ignore[index]
        restore.send(
            {"other": cursor, "tampered": cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")}
        )
    seconds = [restore.receive() for restore in restores]
    exits = [restore.wait() for restore in restores]
    print(
        json.dumps(
            {
                "prepared": prepared,
                "refused": REFUSED,
                "warm_up": warm_up,
                "exits": exits,
                "restores": [{**a, **b} for a, b in zip(firsts, seconds, strict=True)],  # type: ignore[dict-item]
            }
        )
    )


if __name__ == "__main__":
    main()
