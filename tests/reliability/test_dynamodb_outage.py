"""Faults: DynamoDB Local is killed (SIGKILL) under load and the platform brings it back.

The local platform runs with an on-disk database. Several clients create tasks and read them
back while the DynamoDB Local JVM is killed mid-load, once in `make test`, several times under
`make soak`. The contract under test:

- while the engine is down, requests fail fast with 503 `application/problem+json` and a
  Retry-After: never another 5xx, never a hang past the client's timeout;
- the platform restarts the engine by itself (same port, same data) and logs it; requests
  succeed again once it is back;
- no acknowledged write is lost: every task whose create got a 201 reads back exactly as it was
  acknowledged. Creates answered 503 are in doubt (the write may have committed before the
  connection broke): each may exist at most once, and nothing else may;
- the stream keeps flowing: a user writing after the restart sees exact GET /stats (the stream
  poller, the publisher and the stats consumer all recovered), the poller gave no record up,
  and no event was counted twice.

Two things this test deliberately does not assert, both found by it (see the ledger's notes):

- Creates carry no Idempotency-Key. With one, a create is a TransactWriteItems, and DynamoDB
  Local acknowledges a transaction before its SQLite COMMIT has run (`commitTransaction` queues
  the COMMIT job without waiting for it; PutItem waits for its job): a SIGKILL in that window
  loses an acknowledged transaction (seen in 3 of 3 kills with keyed creates under this load).
  That is the emulator, not the API: DynamoDB proper is durable once it answers.
- That every user's stats end exact: the stats consumer's own writes are transactions (above),
  so one in flight at the kill can be lost after it was acknowledged; and a consumer that
  failed while the engine was down is retried on Lambda's schedule (1 min, then 2 min later),
  longer than this test waits. Events in flight at the kill can go uncounted here.
"""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import attrs
import httpx

from local_platform.process import Platform, start_platform
from stack.manifest import FUNCTIONS
from tests.reliability.ledger import LEDGER, Part, scale

PART = "faults: dynamodb outage"
OUTAGES = scale(1, 4)
WORKERS = scale(4, 6)
WARM_UP = scale(12, 250)
"""Acknowledged creates before each kill: the load is really running when the engine dies."""
AFTER_RESTART = scale(6, 100)
"""Acknowledged creates after each restart: the API really works again."""
PROBE_TASKS = scale(5, 20)
"""Tasks a fresh user creates after the last restart; its stats must count them exactly."""
CLIENT_TIMEOUT_S = 10.0
RESTART_TIMEOUT_S = 60.0
STATS_RULE = next(r.name for f in FUNCTIONS if f.name == "stats" for r in f.rules)


def unavailable_problem(response: httpx.Response) -> str | None:
    """What is wrong with a 503 (None if it is the problem+json the API promises)."""
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("application/problem+json"):
        return f"503 with content-type {content_type!r}: {response.text[:200]}"
    body = response.json()
    if body.get("status") != 503 or body.get("type") != "urn:tasks:problem:unavailable":
        return f"503 with body {body}"
    if "retry-after" not in response.headers:
        return "503 without Retry-After"
    return None


@attrs.define
class Load:
    """Clients creating and reading tasks on their own threads until told to stop."""

    platform: Platform
    part: Part
    run: str = attrs.field(factory=lambda: uuid.uuid4().hex[:8])
    acked: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    """Task id -> the task its 201 acknowledged."""
    in_doubt: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    """Title (unique per request) -> the body of a create answered 503."""
    unavailable: collections.Counter[str] = attrs.field(factory=collections.Counter)
    """503s by kind of request ("create", "read")."""
    failures: list[str] = attrs.field(factory=list)
    slowest_503_s: float = 0.0
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    _threads: list[threading.Thread] = attrs.field(factory=list)

    def client(self, user: str) -> httpx.Client:
        client = self.platform.client(user)
        client.timeout = httpx.Timeout(CLIENT_TIMEOUT_S)

        def count(response: httpx.Response) -> None:
            # A 503 while the engine is down is the contract, not a server error: count the
            # request, and let only other 5xx count as server errors.
            self.part.sent(None if response.status_code == 503 else response)

        client.event_hooks["response"].append(count)
        return client

    def start(self) -> None:
        for n in range(WORKERS):
            user = f"outage-{self.run}-{n}"
            thread = threading.Thread(target=self._work, args=(user,), name=f"load-{n}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT_S * 2)
            assert not thread.is_alive(), f"{thread.name} is stuck"

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def unavailable_count(self) -> int:
        with self._lock:
            return sum(self.unavailable.values())

    def wait_for_acks(self, more: int, timeout_s: float = 60) -> None:
        target = self.acked_count() + more
        deadline = time.monotonic() + timeout_s
        while self.acked_count() < target:
            assert not self.failures, "\n".join(self.failures[:10])
            assert time.monotonic() < deadline, (
                f"only {self.acked_count()} of {target} creates acknowledged in {timeout_s:.0f} s"
            )
            time.sleep(0.05)

    def fail(self, text: str) -> None:
        with self._lock:
            self.failures.append(text)

    def _work(self, user: str) -> None:
        mine: list[str] = []
        with self.client(user) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    if i % 4 == 0:
                        self._read(client, mine, i)
                    else:
                        self._create(client, user, mine, i)
                except httpx.TimeoutException as error:
                    self.part.sent()
                    self.fail(f"{user}: no answer within {CLIENT_TIMEOUT_S} s: {error!r}")
                except httpx.TransportError as error:
                    self.part.sent()
                    self.fail(f"{user}: the gateway dropped the request: {error!r}")

    def unavailable_seen(self, kind: str, response: httpx.Response, elapsed: float) -> None:
        wrong = unavailable_problem(response)
        if wrong is not None:
            self.fail(f"{kind}: {wrong}")
        with self._lock:
            self.unavailable[kind] += 1
            self.slowest_503_s = max(self.slowest_503_s, elapsed)

    def _create(self, client: httpx.Client, user: str, mine: list[str], i: int) -> None:
        title = f"{user} #{i}"
        body = {
            "title": title,
            "description": f"created under fault injection, request {i}",
            "priority": ("low", "medium")[i % 2],  # high ones would start approval workflows
            "tags": [f"load-{i % 3}"],
        }
        started = time.monotonic()
        response = client.post("/tasks", json=body)
        if response.status_code == 201:
            task = response.json()
            with self._lock:
                self.acked[task["id"]] = task
            mine.append(task["id"])
        elif response.status_code == 503:
            with self._lock:
                self.in_doubt[title] = body
            self.unavailable_seen("create", response, time.monotonic() - started)
            time.sleep(0.1)  # back off a little (less than Retry-After: keep the pressure on)
        else:
            self.fail(f"POST /tasks: {response.status_code} {response.text[:300]}")

    def _read(self, client: httpx.Client, mine: list[str], i: int) -> None:
        started = time.monotonic()
        if mine and i % 8 == 0:
            task_id = mine[(i // 8) % len(mine)]
            response = client.get(f"/tasks/{task_id}")
            if response.status_code == 200:
                with self._lock:
                    acknowledged = self.acked[task_id]
                if response.json() != acknowledged:
                    self.fail(f"GET /tasks/{task_id}: {response.json()} != {acknowledged}")
                return
        else:
            response = client.get("/tasks", params={"limit": "10"})
            if response.status_code == 200:
                return
        if response.status_code == 503:
            self.unavailable_seen("read", response, time.monotonic() - started)
            time.sleep(0.1)
        else:
            self.fail(f"GET {response.url.path}: {response.status_code} {response.text[:300]}")


def wait_for_restart(platform: Platform, old_pid: int) -> int:
    """The new engine's pid, once the platform has logged that it restarted it."""
    exited = f"DynamoDB Local (pid {old_pid}) exited unexpectedly (signal 9)"
    deadline = time.monotonic() + RESTART_TIMEOUT_S
    while time.monotonic() < deadline:
        assert platform.process.poll() is None, "\n".join(platform.output)
        lines = list(platform.output)
        new_pid = platform.dynamodb_local_pid()
        back = f"DynamoDB Local is back (pid {new_pid}"
        if (
            new_pid not in (None, old_pid)
            and any(exited in line for line in lines)
            and any(back in line for line in lines)
        ):
            return new_pid
        time.sleep(0.1)
    tail = "\n".join(list(platform.output)[-50:])
    raise AssertionError(f"DynamoDB Local was not restarted within {RESTART_TIMEOUT_S} s:\n{tail}")


def all_tasks(client: httpx.Client) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    params = {"limit": "100"}
    while True:
        response = client.get("/tasks", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        tasks += page["items"]
        if not page.get("nextCursor"):
            return tasks
        params = {"limit": "100", "cursor": page["nextCursor"]}


def pending_count(client: httpx.Client) -> int:
    response = client.get("/stats")
    assert response.status_code == 200, response.text
    by_status = response.json()["byStatus"]
    assert not {k: v for k, v in by_status.items() if v and k != "pending"}, by_status
    return int(by_status.get("pending", 0))


def test_a_killed_engine_is_restarted_and_no_acknowledged_write_is_lost(tmp_path: Path) -> None:
    part = LEDGER.part(PART)
    platform = start_platform("--no-throttle", db_path=tmp_path / "dynamodb")
    # Keep the whole log: the checks below read it, and an outage logs many tracebacks.
    platform.output = collections.deque(platform.output, maxlen=1_000_000)
    load = Load(platform, part)
    clients: dict[str, httpx.Client] = {}

    def client(user: str) -> httpx.Client:
        return clients.setdefault(user, load.client(user))

    try:
        downtimes: list[float] = []
        load.start()
        try:
            for _ in range(OUTAGES):
                load.wait_for_acks(WARM_UP)
                old_pid = platform.dynamodb_local_pid()
                assert old_pid is not None, "no DynamoDB Local child process found"
                unavailable_before = load.unavailable_count()
                os.kill(old_pid, signal.SIGKILL)
                killed_at = time.monotonic()
                part.fault()
                wait_for_restart(platform, old_pid)
                downtimes.append(time.monotonic() - killed_at)
                load.wait_for_acks(AFTER_RESTART)
                assert load.unavailable_count() > unavailable_before, "no request saw it down"
        finally:
            load.stop()
        assert not load.failures, "\n".join(load.failures[:20])
        # Creates and reads alike were refused while the engine was down, and quickly.
        assert load.unavailable["create"] > 0, load.unavailable
        assert load.unavailable["read"] > 0, load.unavailable
        assert load.slowest_503_s < CLIENT_TIMEOUT_S

        # No acknowledged write lost: each reads back exactly as acknowledged. And nothing else
        # exists but creates answered 503 that had committed anyway, each at most once.
        owned = collections.Counter(task["ownerId"] for task in load.acked.values())
        listed: dict[str, dict[str, Any]] = {}
        extra: list[dict[str, Any]] = []
        for owner in list(owned):
            tasks = all_tasks(client(owner))
            assert len({task["id"] for task in tasks}) == len(tasks), f"{owner}'s list repeats"
            listed |= {task["id"]: task for task in tasks}
            mine = [task for task in tasks if task["id"] not in load.acked]
            owned[owner] += len(mine)
            extra += mine
        lost = [
            f"{task_id}: {listed.get(task_id, 'not listed')} != {acknowledged}"
            for task_id, acknowledged in load.acked.items()
            if listed.get(task_id) != acknowledged
        ]
        part.lost(len(lost))
        assert not lost, f"{len(lost)} acknowledged write(s) lost:\n" + "\n".join(lost[:20])
        titles = [task["title"] for task in extra]
        assert len(titles) == len(set(titles)), f"a create in doubt was written twice: {extra}"
        assert set(titles) <= set(load.in_doubt), f"tasks nobody created: {extra}"
        committed_anyway = len(extra)

        # The stream survived the restart: a user writing only now sees exact stats.
        probe = f"outage-{load.run}-after"
        for n in range(PROBE_TASKS):
            response = client(probe).post("/tasks", json={"title": f"after the restart {n}"})
            assert response.status_code == 201, response.text
        deadline = time.monotonic() + 30
        while (counted := pending_count(client(probe))) != PROBE_TASKS:
            assert counted < PROBE_TASKS, f"the stats count {counted} of {PROBE_TASKS} tasks"
            assert time.monotonic() < deadline, (
                f"the stats count {counted} of {PROBE_TASKS} tasks created after the restart; "
                "the platform's last lines:\n" + "\n".join(list(platform.output)[-40:])
            )
            time.sleep(0.2)
        assert not [line for line in platform.output if "giving up on" in line]
        # Nobody's events were counted twice (consumers are idempotent by event id).
        undercount = 0
        for owner, count in owned.items():
            counted = pending_count(client(owner))
            assert counted <= count, f"{owner} owns {count} tasks, the stats count {counted}"
            undercount += count - counted
        dead_letters = sum(
            1 for line in platform.output if "dead-lettered" in line and STATS_RULE in line
        )

        part.note(
            f"{OUTAGES} SIGKILL(s) of DynamoDB Local under {WORKERS} clients; back after "
            f"{min(downtimes):.1f}-{max(downtimes):.1f} s; {sum(load.unavailable.values())} "
            f"x 503 problem+json while down (expected: not counted as 5xx), slowest "
            f"{load.slowest_503_s:.2f} s"
        )
        part.note(
            f"{len(load.acked)} acknowledged creates read back intact; of {len(load.in_doubt)} "
            f"answered 503, {committed_anyway} had committed anyway (listed once each)"
        )
        if undercount or dead_letters:
            part.note(
                f"known gap, not asserted: GET /stats of the load's users undercounts by "
                f"{undercount} when the test ends; {dead_letters} stats event(s) dead-lettered "
                "(failed deliveries are retried 1 and 3 min later, as Lambda retries)"
            )
    finally:
        for open_client in clients.values():
            open_client.close()
        code = platform.stop()
    assert code == 0, "\n".join(list(platform.output)[-50:])
    # Stopping the platform stopped the engine for good: its stop was not taken for a crash.
    restarts = [line for line in platform.output if "DynamoDB Local (pid" in line]
    assert len(restarts) == OUTAGES, "\n".join(restarts)
