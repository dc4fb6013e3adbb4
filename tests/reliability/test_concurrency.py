"""Reliability, part "concurrency": racing clients over real HTTP lose no acknowledged write.

Against the session's `platform` (`python -m local_platform`: the gateway, 8 handler sandboxes,
DynamoDB Local), with one HTTP client per racer:

* **No lost update with If-Match.** 16 writers share one task. Each loops GET -> PATCH with
  `If-Match: <etag>`, retrying on 412 (or 409, a race lost inside the conditional write), until
  it has its share of acknowledged updates. Every PATCH is a read-modify-write that appends the
  writer's own entry to the description it read, so an update applied over a stale read would
  drop someone's entry. In the end the description must be exactly the acknowledged entries in
  the order of the versions the 200s returned, and the version 1 + the number of 200s: every
  acknowledged update is there, once, and nothing else is.
* **Every answer is the caller's.** 16 users at once each create, read and update their own
  tasks: every answer is about the caller's own task and request (owner, title, the update
  sent), and each list holds exactly that user's tasks. (The local platform runs 8 sandboxes as
  threads of one process; Powertools kept the current event on a class shared by all of them,
  so a sandbox could answer one request with another's event: its body, its caller.)
* **One task per Idempotency-Key.** 20 clients send the same create with the same key at once:
  one 201, nineteen 200s, one id and one body among all twenty, one task in the list. The same
  with two different bodies racing for one key: the winner's body gets the task, the other is
  422, still one task.

`tests/e2e/test_api_e2e.py` checks the single-shot forms (one round of 16 racers, one of 20
retries); these are the reliability figures, repeated `scale(fast, soak)` times. Every request
counts into the ledger part "concurrency"; a 5xx fails the test where it happens.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import attrs
import httpx

from local_platform.process import Platform
from tests.e2e.api_client import (
    check_response,
    create,
    describe,
    expect_problem,
    expect_task,
    list_all,
    new_user,
    problem_type,
    snapshot,
)
from tests.reliability.ledger import LEDGER, counting, scale

PART = "concurrency"
WRITERS = 16
UPDATES_PER_WRITER = scale(2, 8)  # acknowledged PATCHes each writer must get, per round
WRITER_ROUNDS = scale(1, 3)  # rounds, each on a task of its own
MAX_ATTEMPTS = 2_000  # per writer and round: a writer that never wins is starved, a failure
RETRIERS = 20
CREATE_ROUNDS = scale(2, 25)
STRANGERS = 16
STRANGER_ROUNDS = scale(3, 60)  # create, read, update: per user, all users at once
LOST_RACE = {412: "precondition-failed", 409: "concurrent-modification"}


@contextmanager
def clients(platform: Platform, user: str, count: int) -> Iterator[list[httpx.Client]]:
    """`count` clients of `user`, each counted into the ledger, then checked (no 5xx, errors
    are problems): the ledger sees a 5xx before the check fails the request."""
    with clients_of(platform, [user] * count) as made:
        yield made


@contextmanager
def clients_of(platform: Platform, users: list[str]) -> Iterator[list[httpx.Client]]:
    """A client per user in `users`, counted and checked as `clients` says."""
    with ExitStack() as stack:
        made = []
        for user in users:
            client = stack.enter_context(platform.client(user))
            client.event_hooks = {"request": [], "response": []}
            stack.enter_context(counting(PART, client))
            client.event_hooks["response"].append(check_response)
            made.append(client)
        yield made


def together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """`work(0..count-1)` on `count` threads released at once; their results, in order."""
    barrier = threading.Barrier(count)

    def start(index: int) -> Any:
        barrier.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(start, range(count)))


def create_together(
    racers: list[httpx.Client], payloads: list[dict[str, Any]], key: str
) -> list[httpx.Response]:
    """Racer i posts payloads[i] with `key`, all at once."""
    return together(
        len(racers),
        lambda i: racers[i].post("/tasks", json=payloads[i], headers={"Idempotency-Key": key}),
    )


def write_together(racers: list[httpx.Client], path: str) -> list[WriterRun]:
    return together(len(racers), lambda i: write_until_acknowledged(racers[i], path, i))


def no_server_errors() -> None:
    part = LEDGER.part(PART)
    assert part.server_errors == 0, f"{part.server_errors} 5xx answers in part {PART!r}"


@attrs.define
class WriterRun:
    acknowledged: list[tuple[int, str]] = attrs.field(factory=list)  # (version, entry)
    attempts: int = 0
    lost_races: Counter[int] = attrs.field(factory=Counter)  # status -> count
    stale_writes: list[str] = attrs.field(factory=list)  # 200s not applied to what was read


def write_until_acknowledged(client: httpx.Client, path: str, writer: int) -> WriterRun:
    """GET, then PATCH the description read + this writer's next entry with If-Match, until
    UPDATES_PER_WRITER of them are acknowledged."""
    run = WriterRun()
    while len(run.acknowledged) < UPDATES_PER_WRITER:
        run.attempts += 1
        assert run.attempts <= MAX_ATTEMPTS, f"writer {writer} starved: {run}"
        got = client.get(path)
        read = expect_task(got)
        entry = f"w{writer:02d}.{len(run.acknowledged)};"
        patched = client.patch(
            path,
            json={"description": read["description"] + entry},
            headers={"If-Match": got.headers["etag"]},
        )
        if patched.status_code == 200:
            written = expect_task(patched)
            run.acknowledged.append((written["version"], entry))
            # Judged after the round, once the ledger has counted what was lost.
            if written["version"] != read["version"] + 1 or written["description"] != (
                read["description"] + entry
            ):
                run.stale_writes.append(describe(patched))
        else:
            assert patched.status_code in LOST_RACE, describe(patched)
            expect_problem(patched, patched.status_code, LOST_RACE[patched.status_code])
            run.lost_races[patched.status_code] += 1
    return run


def test_sixteen_if_match_writers_lose_no_update(platform: Platform) -> None:
    user = new_user("writer")
    part = LEDGER.part(PART)
    acknowledged_total = attempts_total = 0
    lost_races: Counter[int] = Counter()
    with clients(platform, user, WRITERS) as racers:
        for _ in range(WRITER_ROUNDS):
            task = create(racers[0], "One task, sixteen writers")
            path = f"/tasks/{task['id']}"
            runs = write_together(racers, path)
            acknowledged = sorted(ack for run in runs for ack in run.acknowledged)
            final, etag = snapshot(racers[0], task["id"])

            # Every acknowledged entry is in the final state...
            missing = [entry for _, entry in acknowledged if entry not in final["description"]]
            part.lost(len(missing))
            assert not missing, (
                f"acknowledged but lost: {missing}\nacknowledged (version, entry): "
                f"{acknowledged}\nstale 200s: {[w for r in runs for w in r.stale_writes]}\n"
                f"final: version {final['version']}, {final['description']!r}"
            )
            # ...each 200 applied to the very state its writer had read...
            stale = [text for run in runs for text in run.stale_writes]
            assert not stale, "\n".join(stale)
            # ...each a version of its own, one after another from 2 (no two writers were both
            # told that their write on one version had succeeded)...
            versions = [version for version, _ in acknowledged]
            assert versions == list(range(2, 2 + len(acknowledged))), versions
            assert final["version"] == 1 + len(acknowledged), (final["version"], len(versions))
            assert etag == f'"{final["version"]}"'
            # ...so the entries are there once each, in the order of the versions.
            assert final["description"] == "".join(entry for _, entry in acknowledged)
            assert final["title"] == "One task, sixteen writers"

            acknowledged_total += len(acknowledged)
            attempts_total += sum(run.attempts for run in runs)
            lost_races += sum((run.lost_races for run in runs), Counter())
    part.note(
        f"If-Match writers: {WRITERS} x {WRITER_ROUNDS} round(s), {acknowledged_total} updates "
        f"acknowledged of {attempts_total} attempts ({lost_races[412]} x 412, "
        f"{lost_races[409]} x 409 retried), 0 lost"
    )
    no_server_errors()


def test_twenty_concurrent_creates_with_one_key_make_one_task(platform: Platform) -> None:
    user = new_user("retrier")
    made: list[str] = []
    with clients(platform, user, RETRIERS) as retriers:
        for round_number in range(CREATE_ROUNDS):
            key = f"create-{uuid.uuid4()}"
            payload = {"title": f"Pay invoice {round_number}", "tags": ["money"]}
            responses = create_together(retriers, [payload] * RETRIERS, key)
            statuses = Counter(r.status_code for r in responses)
            assert statuses == Counter({201: 1, 200: RETRIERS - 1}), statuses
            bodies = [expect_task(r, r.status_code) for r in responses]
            ids = {body["id"] for body in bodies}
            assert len(ids) == 1, ids
            assert all(body == bodies[0] for body in bodies), "the replays differ"
            assert {r.headers["location"] for r in responses} == {f"/tasks/{bodies[0]['id']}"}
            made.append(bodies[0]["id"])
            listed = [task["id"] for task in list_all(retriers[0])]
            assert sorted(listed) == sorted(made), (listed, made)
    LEDGER.part(PART).note(
        f"Idempotency-Key: {CREATE_ROUNDS} round(s) of {RETRIERS} identical creates, "
        f"{len(made)} tasks"
    )
    no_server_errors()


def test_two_bodies_racing_for_one_key_make_one_task(platform: Platform) -> None:
    user = new_user("racer")
    made: list[str] = []
    with clients(platform, user, RETRIERS) as racers:
        for round_number in range(max(1, CREATE_ROUNDS // 3)):
            key = f"race-{uuid.uuid4()}"
            payloads = [
                {"title": f"Round {round_number}: body {i % 2}", "priority": ["low", "high"][i % 2]}
                for i in range(RETRIERS)
            ]
            responses = create_together(racers, payloads, key)
            created = [i for i, r in enumerate(responses) if r.status_code == 201]
            assert len(created) == 1, [r.status_code for r in responses]
            winner = payloads[created[0]]
            task = expect_task(responses[created[0]], 201)
            assert task["title"] == winner["title"]
            for payload, response in zip(payloads, responses, strict=True):
                if payload == winner:  # the same request again: the same task
                    assert expect_task(response, response.status_code) == task
                else:  # another request with that key: refused, nothing made
                    expect_problem(response, 422, "idempotency-key-reused")
                    assert problem_type(response) == "idempotency-key-reused"
            made.append(task["id"])
            listed = [t["id"] for t in list_all(racers[0])]
            assert sorted(listed) == sorted(made), (listed, made)
    no_server_errors()


def own_work(client: httpx.Client, user: str) -> list[str]:
    """Create, read and update STRANGER_ROUNDS tasks of `user`, checking each answer is about
    this caller's own request; the ids made."""
    made = []
    for n in range(STRANGER_ROUNDS):
        title = f"{user}'s task {n}"
        created = expect_task(client.post("/tasks", json={"title": title}), 201)
        assert (created["ownerId"], created["title"]) == (user, title), created
        got = client.get(f"/tasks/{created['id']}")
        read = expect_task(got)
        assert (read["id"], read["ownerId"], read["title"]) == (created["id"], user, title), read
        description = f"updated by {user} in round {n}"
        patched = client.patch(
            f"/tasks/{created['id']}",
            json={"description": description},
            headers={"If-Match": got.headers["etag"]},
        )
        written = expect_task(patched)
        assert (written["id"], written["ownerId"]) == (created["id"], user), written
        assert (written["description"], written["version"]) == (description, 2), written
        made.append(created["id"])
    return made


def test_sixteen_users_at_once_each_get_only_their_own_answers(platform: Platform) -> None:
    users = [new_user(f"stranger{i:02d}") for i in range(STRANGERS)]
    with clients_of(platform, users) as strangers:
        made: list[list[str]] = together(STRANGERS, lambda i: own_work(strangers[i], users[i]))
        for client, user, ids in zip(strangers, users, made, strict=True):
            listed = list_all(client)
            assert {task["ownerId"] for task in listed} == {user}, listed
            assert sorted(task["id"] for task in listed) == sorted(ids)
    LEDGER.part(PART).note(
        f"isolation: {STRANGERS} users x {STRANGER_ROUNDS} create/read/update at once, "
        "every answer the caller's"
    )
    no_server_errors()
