"""Archiving on the local platform, over HTTP: a completed task expires from the table (the
platform's own TTL, a week later by its `--clock-offset 8d`), its removal streams as AWS shapes
a TTL removal, the archiver writes it to its owner's month on moto's S3, and the owner reads it
back exactly as `GET /tasks/{taskId}` last showed it; `/stats` does not move; a redelivered
`TaskArchived` archives nothing twice; nobody else sees the month."""

from __future__ import annotations

import functools
import json
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from local_platform.process import Platform, start_platform
from taskcore.events import EVENT_SOURCE, TaskArchived
from taskcore.serialization import event_to_json, task_from_json
from tests.e2e import polling

BUS = "tasks-local-bus"


# The archive's chain (TTL pass, stream, bus, archiver, S3) takes longer than one event.
eventually = functools.partial(polling.eventually, seconds=20.0)


def user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    """A platform whose clock, for the TTL, is 8 days ahead (dev archives a week after
    completion), and whose TTL passes run only when asked (SIGUSR1), so a test decides when."""
    running = start_platform("--no-throttle", "--clock-offset", "8d", "--ttl-interval", "0")
    yield running
    assert running.stop() == 0, "\n".join(running.output)


def ttl_pass(platform: Platform) -> None:
    platform.process.send_signal(signal.SIGUSR1)


def complete(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    task = client.post("/tasks", json={"title": "Close the books", **fields}).json()
    assert client.patch(f"/tasks/{task['id']}", json={"status": "in_progress"}).status_code == 200
    assert client.post(f"/tasks/{task['id']}/complete").status_code == 200
    shown = client.get(f"/tasks/{task['id']}")
    assert shown.status_code == 200
    return dict(shown.json())


def month_lines(client: httpx.Client, month: str) -> list[dict[str, Any]]:
    link = client.get(f"/archive/{month}")
    assert link.status_code == 200, link.text
    body = link.json()
    assert body["month"] == month
    download = httpx.get(body["url"], timeout=10, trust_env=False)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/x-ndjson"
    text = download.text
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def archiver_runs(platform: Platform) -> int:
    return sum(1 for line in list(platform.output) if "archiver ← TaskArchived" in line)


def test_an_archived_task_comes_back_exactly_as_it_was(platform: Platform) -> None:
    alice, bob = user("alice"), user("bob")
    with platform.client(alice) as owner, platform.client(bob) as other:
        last = complete(owner, description="from finance\nQ4", tags=["books"], priority="low")
        others = [complete(owner, title=f"batch {n}") for n in range(4)]
        # Reopened before the TTL pass: no longer completed, so never archived.
        reopened = complete(owner, title="not done after all")
        assert (
            owner.patch(f"/tasks/{reopened['id']}", json={"status": "in_progress"}).status_code
            == 200
        )
        expected = {"pending": 0, "in_progress": 1, "completed": 5}
        before = eventually(
            lambda: (
                (s := owner.get("/stats").json())["byStatus"] == expected
                and s["completedThisWeek"] == 6
                and s
            )
        )
        assert before, owner.get("/stats").json()
        assert owner.get("/archive").json() == {"items": []}

        ttl_pass(platform)
        month = last["completedAt"][:7]
        assert eventually(lambda: owner.get("/archive").json()["items"]), "nothing was archived"
        assert owner.get("/archive").json() == {"items": [{"month": month}]}
        # Five archivers of one month ran at once: every task is there, once.
        archived = eventually(lambda: len(lines := month_lines(owner, month)) == 5 and lines)
        assert archived, month_lines(owner, month)
        by_id = {line["id"]: line for line in archived}
        assert by_id[last["id"]] == last  # exactly the task GET /tasks/{taskId} showed
        assert sorted(by_id) == sorted(t["id"] for t in [last, *others])

        # Gone from the task list, still counted: the stats did not move.
        assert owner.get(f"/tasks/{last['id']}").status_code == 404
        listed = owner.get("/tasks", params={"limit": "100"}).json()["items"]
        assert [t["id"] for t in listed] == [reopened["id"]]
        time.sleep(1)  # any event the archiving meant has been delivered by now
        assert owner.get("/stats").json() == before

        # Nobody else sees the month, or that it exists.
        assert other.get("/archive").json() == {"items": []}
        missing = other.get(f"/archive/{month}")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert owner.get("/archive/2001-01").status_code == 404
        assert owner.get("/archive/2001-13").status_code == 400


def test_a_redelivered_archive_event_archives_nothing_twice(platform: Platform) -> None:
    alice = user("alice")
    with platform.client(alice) as owner:
        last = complete(owner, title="archive me once")
        month = last["completedAt"][:7]
        ran = archiver_runs(platform)
        ttl_pass(platform)
        assert eventually(lambda: owner.get("/archive").json()["items"])
        assert eventually(lambda: archiver_runs(platform) > ran)
        assert month_lines(owner, month) == [last]

        # The same event again, twice at once, as EventBridge may redeliver it.
        event = TaskArchived.make(task_from_json(last), datetime.now(UTC))
        events = boto3.client(
            "events",
            endpoint_url=platform.endpoint("EventBridge"),
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(proxies={}),
        )
        entry: Any = {
            "Source": EVENT_SOURCE,
            "DetailType": TaskArchived.kind,
            "Detail": json.dumps(event_to_json(event)),
            "EventBusName": BUS,
        }
        ran = archiver_runs(platform)
        assert events.put_events(Entries=[entry, entry])["FailedEntryCount"] == 0
        assert eventually(lambda: archiver_runs(platform) >= ran + 2), "not redelivered"
        assert month_lines(owner, month) == [last]
        assert not [line for line in platform.output if "dead-lettered" in line]
