"""A stateful fuzz of the HTTP API over real HTTP, against a model of every user's tasks.

Hypothesis drives random sequences of create (with and without an `Idempotency-Key`, valid and
invalid bodies), get, list (filtered, in small pages), update (`PATCH` and `PUT`, with no, a
current, a stale, a wildcard or a malformed `If-Match`), lifecycle moves, complete, delete and
approval decisions, against the session's `platform` (`python -m local_platform`, over HTTP), by
three users: `a`, `b` and `c`, a member of `approvers`. Mostly the owner acts on a task; now
and then any user does, often a stranger. The model (`Expected`, `predict_update`) predicts each
answer's status and body from the domain's rules (lifecycle, approvals, versions, idempotent
replays), in the order the API judges a request (body, `If-Match` syntax, ownership, version,
rules).

What it shows, for every request: never a 5xx; the status the model predicts, and for a task the
body it predicts with `ETag` = the version. After every step, each user's full list equals the
model's, field for field: so a stranger's `GET`/`PATCH`/`DELETE` (a 404) changed nothing, and
no list ever holds another user's task. The approver's queue holds exactly the tasks awaiting a
decision. Users are fresh per example (uuid-suffixed), so the shared platform's other data is
never in the way.

Every request counts into the ledger part "fuzz: stateful API": about 1,300 requests inside
`make test` (~20 s), 12,000 under `make soak` (TASKS_SOAK=1).
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import httpx
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from local_platform.process import Platform
from tests.reliability.ledger import LEDGER, counting, scale

PART = "fuzz: stateful API"
APPROVERS = "approvers"
USERS = ("a", "b", "c")  # roles; "c" is the approver. Real names are uuid-suffixed per example.

EXAMPLES = scale(15, 60)
STEPS = scale(20, 60)

TRANSITIONS = {
    "pending": {"in_progress", "cancelled"},
    "in_progress": {"completed", "cancelled"},
    "completed": {"in_progress"},
    "cancelled": set(),
}
NEEDS_APPROVAL = {"high", "critical"}
ALLOWS_START = {"not_required", "approved"}
# Every field of a task, as the API document requires them (the Task schema allows no others).
TASK_KEYS = set(
    yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())[
        "components"
    ]["schemas"]["Task"]["required"]
)
GHOST_ID = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"  # a well-formed ULID nobody will ever be given
NOT_AN_ID = "not-a-task"
DUE_HORIZON_DAYS = 366 * 10
SEEN: Counter[str] = Counter()  # "METHOD /route status" -> answers, for the summary


def route(path: str) -> str:
    """`/tasks/01J.../complete` -> `/tasks/{id}/complete`."""
    return "/".join("{id}" if i == 2 else part for i, part in enumerate(path.split("/")))


def today() -> date:
    return datetime.now(UTC).date()


# -- strategies --------------------------------------------------------------------------------

_text_chars = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
valid_titles = st.text(_text_chars, min_size=1, max_size=60).filter(lambda s: bool(s.strip()))


def mostly(
    usual: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], one_in: int = 10
) -> st.SearchStrategy[Any]:
    """`rare` one time in `one_in`, else `usual`."""
    return st.integers(1, one_in).flatmap(lambda n: rare if n == 1 else usual)


titles = mostly(valid_titles, st.sampled_from(["", "   "]))  # blank: 422
descriptions = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")) | st.sampled_from("\n\t"),
    max_size=80,
)
priorities = st.sampled_from(["low", "medium", "high", "critical"])
statuses = st.sampled_from(list(TRANSITIONS))
tags = st.lists(
    st.text(
        st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Z")), min_size=1, max_size=12
    ),
    max_size=3,
    unique=True,
)
# Days from today: mostly valid (tomorrow up to the horizon), sometimes in the past (422).
due_offsets = mostly(st.none() | st.integers(1, DUE_HORIZON_DAYS - 2), st.integers(-400, -1))
users = st.sampled_from(USERS)
# Mostly a condition that holds (or none); one time in five, a stale or malformed one (412).
if_match_modes = mostly(
    st.sampled_from(["none", "current", "star"]), st.sampled_from(["stale", "malformed"]), 5
)
# Who acts on a task: mostly its owner (None), one time in five any user (often a stranger).
actors = mostly(st.none(), users, 5)
keys = mostly(st.none(), st.sampled_from(["k1", "k2", "bad key"]), 3)
create_bodies = st.fixed_dictionaries(
    {"title": titles},
    optional={
        "description": descriptions,
        "priority": priorities,
        "tags": tags,
        "dueDate": due_offsets,
    },
)
seed_bodies = st.fixed_dictionaries(
    {"title": valid_titles},
    optional={"priority": priorities, "tags": tags, "dueDate": st.integers(1, 400)},
)
update_bodies = st.fixed_dictionaries(
    {},
    optional={
        "title": titles,
        "description": descriptions,
        "priority": priorities,
        "tags": tags,
        "dueDate": due_offsets,
    },
)


def with_dates(body: dict[str, Any]) -> dict[str, Any]:
    """Day offsets to calendar dates, relative to today (UTC) at the moment of sending."""
    if body.get("dueDate") is None:
        return body
    return {**body, "dueDate": (today() + timedelta(days=body["dueDate"])).isoformat()}


def due_date_ok(value: str | None) -> bool:
    return value is None or today() <= date.fromisoformat(value) <= today() + timedelta(
        days=DUE_HORIZON_DAYS
    )


# -- the model ---------------------------------------------------------------------------------


@attrs.define
class Expected:
    """One task as the model knows it: the fields it predicts, and the body last seen."""

    fields: dict[str, Any]
    seen: dict[str, Any]
    deleted: bool = False

    @property
    def owner(self) -> str:
        owner: str = self.fields["ownerId"]
        return owner

    @property
    def version(self) -> int:
        version: int = self.fields["version"]
        return version

    @property
    def awaiting_approval(self) -> bool:
        return self.fields["approval"] == "pending" and self.fields["status"] == "pending"


@attrs.define
class Outcome:
    status: int
    fields: dict[str, Any] | None = None  # the task after the request, when it changed


def predict_update(task: Expected, body: dict[str, Any]) -> Outcome:
    """`TaskService.update_task` once the task is found and the version matches."""
    current = task.fields
    due = body.get("dueDate")
    if due is not None and due != current["dueDate"] and not due_date_ok(due):
        return Outcome(422)
    new = dict(current)
    edits = {k: v for k, v in body.items() if k != "status" and current[k] != v}
    if edits:
        if current["status"] == "cancelled":
            return Outcome(409)
        new.update(edits)
        if (
            new["priority"] in NEEDS_APPROVAL
            and new["status"] == "pending"
            and new["approval"] == "not_required"
        ):
            new["approval"] = "pending"
    target = body.get("status", new["status"])
    moved = target != new["status"]
    if moved:
        if target not in TRANSITIONS[new["status"]]:
            return Outcome(409)
        if target == "in_progress" and new["approval"] not in ALLOWS_START:
            return Outcome(409)
        new["status"] = target
    if not edits and not moved:
        return Outcome(200)
    new["version"] += 1
    return Outcome(200, new)


def update_body_problem(body: dict[str, Any]) -> bool:
    """Whether parsing refuses the body (422) before anything else is looked at."""
    return not body or ("title" in body and not body["title"].strip())


def fingerprint(body: dict[str, Any]) -> tuple[Any, ...]:
    """What `CreateTask.fingerprint` covers: the body with its defaults filled in."""
    return (
        body["title"],
        body.get("description", ""),
        body.get("priority", "medium"),
        tuple(body.get("tags", ())),
        body.get("dueDate"),
    )


# -- the machine -------------------------------------------------------------------------------


class StatefulApi(RuleBasedStateMachine):
    tasks = Bundle("tasks")

    def __init__(self, platform: Platform) -> None:
        super().__init__()
        run = uuid.uuid4().hex[:12]
        self.names = {role: f"sm-{role}-{run}" for role in USERS}
        self.roles = {name: role for role, name in self.names.items()}
        self.stack = contextlib.ExitStack()
        self.http: dict[str, httpx.Client] = {}
        for role in USERS:
            groups = (APPROVERS,) if role == "c" else ()
            client = self.stack.enter_context(platform.client(self.names[role], *groups))
            self.http[role] = self.stack.enter_context(counting(PART, client))
        self.model: dict[str, Expected] = {}
        self.keys: dict[tuple[str, str], tuple[tuple[Any, ...], dict[str, Any]]] = {}

    def teardown(self) -> None:
        self.stack.close()

    # -- helpers -------------------------------------------------------------------------------

    def send(self, role: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http[role].request(method, path, **kwargs)
        SEEN[f"{method} {route(path)} {response.status_code}"] += 1
        assert response.status_code < 500, (method, path, response.status_code, response.text)
        return response

    def expect(self, response: httpx.Response, status: int) -> None:
        request = f"{response.request.method} {response.request.url.path}"
        assert response.status_code == status, (request, status, response.text)
        if status >= 400:
            assert response.headers["content-type"] == "application/problem+json", request
            assert response.json()["status"] == status, (request, response.text)

    def if_match(self, mode: str, task_id: str) -> tuple[dict[str, str], int | None]:
        """The header for `mode`, and the version it names (None: no condition)."""
        known = self.model.get(task_id)
        version = known.version if known is not None else 1
        if mode == "none":
            return {}, None
        if mode == "star":
            return {"If-Match": "*"}, None
        if mode == "malformed":
            return {"If-Match": f'W/"{version}"'}, -1
        if mode == "stale":
            return {"If-Match": f'"{version + 1}"'}, version + 1
        return {"If-Match": f'"{version}"'}, version

    @staticmethod
    def refusal(task: Expected | None, expected_version: int | None) -> int | None:
        """What the API answers before any domain rule, in its order: a malformed If-Match
        (412), someone else's or no task (404), a stale version (412); None: none of these."""
        if expected_version == -1:
            return 412
        if task is None:
            return 404
        if expected_version is not None and expected_version != task.version:
            return 412
        return None

    def prefer(self, data: st.DataObject, task_id: str, wanted: Callable[[Expected], bool]) -> str:
        """Half the time, instead of `task_id`, a live task that is `wanted` (if any): the
        rules that need a task in some state rarely find one in the bundle."""
        choices = sorted(i for i, t in self.model.items() if not t.deleted and wanted(t))
        if not choices or not data.draw(st.booleans(), label="prefer"):
            return task_id
        chosen: str = data.draw(st.sampled_from(choices), label="task_id")
        return chosen

    def acting(self, actor: str | None, task_id: str) -> str:
        """Who acts: `actor`, or (None) the task's owner."""
        if actor is not None:
            return actor
        task = self.model.get(task_id)
        return "a" if task is None else self.roles[task.owner]

    def target(self, role: str, task_id: str) -> Expected | None:
        """The task `role` may act on: its own and not deleted; None means 404."""
        task = self.model.get(task_id)
        if task is None or task.deleted or task.owner != self.names[role]:
            return None
        return task

    def check_task(self, response: httpx.Response, task: Expected, after: Outcome) -> None:
        """The answer is the task as the model predicts it; remember what was seen."""
        body = response.json()
        assert set(body) == TASK_KEYS, sorted(body)
        assert response.headers["etag"] == f'"{body["version"]}"'
        before = task.seen
        if after.fields is None:
            assert body == before, (body, before)
            return
        assert {k: body[k] for k in after.fields} == after.fields, (body, after.fields)
        assert body["createdAt"] == before["createdAt"]
        assert body["updatedAt"] >= before["updatedAt"]
        completed = body["status"] == "completed"
        assert (body["completedAt"] is not None) == completed, body
        if completed and before["status"] == "completed":
            assert body["completedAt"] == before["completedAt"]
        decided = body["approval"] in ("approved", "rejected")
        assert (body["approvalDecidedAt"] is not None) == decided, body
        if before["approvalDecidedAt"] is not None:
            assert body["approvalDecidedAt"] == before["approvalDecidedAt"]
        task.fields, task.seen = after.fields, body

    # -- rules ---------------------------------------------------------------------------------

    @initialize(
        target=tasks,
        seeds=st.lists(st.tuples(users, seed_bodies, st.booleans()), min_size=3, max_size=6),
    )
    def seed(self, seeds: list[tuple[str, dict[str, Any], bool]]) -> Any:
        """A few tasks to start from, some started (each run enables only some rules, maybe
        not create or the moves), and two ids that name nothing."""
        ids = []
        for role, body, start in seeds:
            task_id = self.create_task(role, body, None)
            assert task_id is not None
            ids.append(task_id)
            if start:  # 409 for a task awaiting its approval
                self.change(role, task_id, {"status": "in_progress"}, "none", "PATCH")
        return multiple(GHOST_ID, NOT_AN_ID, *ids)

    @rule(target=tasks, role=users, body=create_bodies, key=keys)
    def create(self, role: str, body: dict[str, Any], key: str | None) -> Any:
        task_id = self.create_task(role, body, key)
        return multiple() if task_id is None else task_id

    def create_task(self, role: str, body: dict[str, Any], key: str | None) -> str | None:
        body = with_dates(body)
        headers = {} if key is None else {"Idempotency-Key": key}
        response = self.send(role, "POST", "/tasks", json=body, headers=headers)
        if not body["title"].strip() or not due_date_ok(body.get("dueDate")):
            self.expect(response, 422)
            return None
        if key == "bad key":
            self.expect(response, 400)  # a malformed Idempotency-Key
            return None
        owner = self.names[role]
        record = self.keys.get((owner, key)) if key is not None else None
        if record is not None:  # a retry: the first answer again, or 422 for another body
            if record[0] != fingerprint(body):
                self.expect(response, 422)
                return None
            self.expect(response, 200)
            assert response.json() == record[1]
            assert response.headers["etag"] == '"1"'
            assert response.headers["location"] == f"/tasks/{record[1]['id']}"
            return None
        self.expect(response, 201)
        created = response.json()
        assert set(created) == TASK_KEYS, sorted(created)
        fields = {
            "id": created["id"],
            "ownerId": owner,
            "title": body["title"],
            "description": body.get("description", ""),
            "status": "pending",
            "priority": body.get("priority", "medium"),
            "approval": "pending" if body.get("priority") in NEEDS_APPROVAL else "not_required",
            "tags": body.get("tags", []),
            "dueDate": body.get("dueDate"),
            "approvalDecidedBy": None,
            "attachments": [],
            "version": 1,
        }
        assert {k: created[k] for k in fields} == fields, (created, fields)
        assert created["createdAt"] == created["updatedAt"]
        assert created["completedAt"] is None
        assert created["approvalDecidedAt"] is None
        assert response.headers["etag"] == '"1"'
        assert response.headers["location"] == f"/tasks/{created['id']}"
        assert created["id"] not in self.model
        self.model[created["id"]] = Expected(fields=fields, seen=created)
        if key is not None:
            self.keys[owner, key] = (fingerprint(body), created)
        return created["id"]

    @rule(actor=actors, task_id=tasks)
    def get(self, actor: str | None, task_id: str) -> None:
        role = self.acting(actor, task_id)
        response = self.send(role, "GET", f"/tasks/{task_id}")
        task = self.target(role, task_id)
        if task is None:
            self.expect(response, 404)
            return
        self.expect(response, 200)
        self.check_task(response, task, Outcome(200))

    @rule(
        actor=actors,
        task_id=tasks,
        body=update_bodies,
        status=mostly(st.none(), statuses, 4),
        mode=if_match_modes,
        method=st.sampled_from(["PATCH", "PATCH", "PUT"]),
    )
    def update(
        self,
        *,
        actor: str | None,
        task_id: str,
        body: dict[str, Any],
        status: str | None,
        mode: str,
        method: str,
    ) -> None:
        """Fields, and now and then a status too (all or nothing)."""
        body = with_dates(body) | ({} if status is None else {"status": status})
        self.change(self.acting(actor, task_id), task_id, body, mode, method)

    def change(self, role: str, task_id: str, body: dict[str, Any], mode: str, method: str) -> None:
        """`PATCH`/`PUT` a (dated) body with an `If-Match` of `mode`."""
        headers, expected_version = self.if_match(mode, task_id)
        response = self.send(role, method, f"/tasks/{task_id}", json=body, headers=headers)
        task = self.target(role, task_id)
        if update_body_problem(body):
            self.expect(response, 422)
        elif (refused := self.refusal(task, expected_version)) is not None:
            self.expect(response, refused)
        else:
            assert task is not None
            outcome = predict_update(task, body)
            self.expect(response, outcome.status)
            if outcome.status == 200:
                self.check_task(response, task, outcome)

    @rule(actor=actors, task_id=tasks, mode=if_match_modes, data=st.data())
    def move(self, actor: str | None, task_id: str, mode: str, data: st.DataObject) -> None:
        """A lifecycle move, mostly one the task's status allows (`update` rarely hits one)."""
        task_id = self.prefer(data, task_id, lambda t: t.fields["status"] != "cancelled")
        task = self.model.get(task_id)
        allowed = sorted(TRANSITIONS[task.fields["status"]]) if task is not None else []
        goal = data.draw(mostly(st.sampled_from(allowed), statuses, 4) if allowed else statuses)
        self.change(self.acting(actor, task_id), task_id, {"status": goal}, mode, "PATCH")

    @rule(actor=actors, task_id=tasks, mode=if_match_modes, data=st.data())
    def complete(self, actor: str | None, task_id: str, mode: str, data: st.DataObject) -> None:
        task_id = self.prefer(data, task_id, lambda t: t.fields["status"] == "in_progress")
        role = self.acting(actor, task_id)
        headers, expected_version = self.if_match(mode, task_id)
        response = self.send(role, "POST", f"/tasks/{task_id}/complete", headers=headers)
        task = self.target(role, task_id)
        if (refused := self.refusal(task, expected_version)) is not None:
            self.expect(response, refused)
        else:
            assert task is not None
            outcome = predict_update(task, {"status": "completed"})
            self.expect(response, outcome.status)
            if outcome.status == 200:
                self.check_task(response, task, outcome)

    @rule(actor=actors, task_id=tasks, mode=if_match_modes)
    def delete(self, actor: str | None, task_id: str, mode: str) -> None:
        role = self.acting(actor, task_id)
        headers, expected_version = self.if_match(mode, task_id)
        response = self.send(role, "DELETE", f"/tasks/{task_id}", headers=headers)
        task = self.target(role, task_id)
        if (refused := self.refusal(task, expected_version)) is not None:
            self.expect(response, refused)
        else:
            assert task is not None
            assert response.status_code == 204, response.text
            assert response.content == b""
            task.deleted = True

    @rule(
        role=mostly(st.just("c"), users, 3),
        task_id=tasks,
        decision=st.sampled_from(["approve", "reject"]),
        data=st.data(),
    )
    def decide(self, role: str, task_id: str, decision: str, data: st.DataObject) -> None:
        task_id = self.prefer(
            data, task_id, lambda t: t.awaiting_approval and t.owner != self.names["c"]
        )
        self.check_approval_queue(role)
        path = f"/tasks/{task_id}/approval"
        response = self.send(role, "POST", path, json={"decision": decision})
        task = self.model.get(task_id)
        if role != "c":
            self.expect(response, 403)  # only approvers decide
        elif task is None or task.deleted or not task.awaiting_approval:
            self.expect(response, 404)
        elif task.owner == self.names[role]:
            self.expect(response, 403)  # never on their own task
        else:
            self.expect(response, 200)
            fields = dict(task.fields)
            fields["version"] += 1
            fields["approvalDecidedBy"] = self.names[role]
            fields["approval"] = "approved" if decision == "approve" else "rejected"
            if decision == "reject":
                fields["status"] = "cancelled"
            self.check_task(response, task, Outcome(200, fields))

    @rule(
        role=users,
        status=st.none() | statuses,
        priority=st.none() | priorities,
        limit=st.integers(1, 4),
    )
    def list_filtered(
        self, role: str, status: str | None, priority: str | None, limit: int
    ) -> None:
        """Small pages through the cursors, with the status and priority filters."""
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        if priority is not None:
            params["priority"] = priority
        expected = [
            t.seen
            for t in self.owned(role)
            if status in (None, t.fields["status"]) and priority in (None, t.fields["priority"])
        ]
        assert self.list_all(role, params) == expected

    def check_approval_queue(self, role: str) -> None:
        """The approver's queue holds exactly the others' tasks awaiting approval (oldest
        first) among this run's; the other users may not read it."""
        if role != "c":
            self.expect(self.send(role, "GET", "/approvals"), 403)
            return
        mine = set(self.names.values())
        items, cursor = [], None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            response = self.send("c", "GET", "/approvals", params=params)
            self.expect(response, 200)
            page = response.json()
            items += [t for t in page["items"] if t["ownerId"] in mine]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        expected = sorted(
            (t.seen for t in self.model.values() if not t.deleted and t.awaiting_approval),
            key=lambda t: t["id"],
        )
        expected = [t for t in expected if t["ownerId"] != self.names["c"]]
        assert items == expected

    # -- invariants ----------------------------------------------------------------------------

    def owned(self, role: str) -> list[Expected]:
        """`role`'s tasks as `GET /tasks` lists them: newest (highest ULID) first."""
        owner = self.names[role]
        live = [t for t in self.model.values() if t.owner == owner and not t.deleted]
        return sorted(live, key=lambda t: t.fields["id"], reverse=True)

    def list_all(self, role: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        for _ in range(1000):
            page_params = {**params, **({"cursor": cursor} if cursor else {})}
            response = self.send(role, "GET", "/tasks", params=page_params)
            self.expect(response, 200)
            page = response.json()
            assert len(page["items"]) <= params["limit"]
            items += page["items"]
            cursor = page["nextCursor"]
            if cursor is None:
                return items
        raise AssertionError("the cursor never ran out")

    @invariant()
    def every_list_agrees_with_the_model(self) -> None:
        """Each user sees exactly their own live tasks, each exactly as last seen."""
        for role in USERS:
            listed = self.list_all(role, {"limit": 100})
            assert all(t["ownerId"] == self.names[role] for t in listed), "a foreign task leaked"
            assert listed == [t.seen for t in self.owned(role)]


def test_stateful_api(platform: Platform) -> None:
    before = LEDGER.part(PART).server_errors

    class OnThePlatform(StatefulApi):
        def __init__(self) -> None:
            super().__init__(platform)

    run_state_machine_as_test(
        OnThePlatform,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    part = LEDGER.part(PART)
    by_status = Counter[int]()
    for answer, count in SEEN.items():
        by_status[int(answer.rsplit(" ", 1)[1])] += count
    part.note(f"{EXAMPLES} runs of up to {STEPS} steps, 3 users each")
    part.note("answers by status: " + ", ".join(f"{k}: {n}" for k, n in sorted(by_status.items())))
    print("\n".join(f"{answer}: {count}" for answer, count in sorted(SEEN.items())))
    assert part.server_errors == before == 0
