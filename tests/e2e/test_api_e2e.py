"""The tasks API end to end, as a newcomer uses it after `make dev`: real HTTP to the local
platform (`python -m local_platform` in a subprocess: the gateway, the JWT authorizer, the
handler, DynamoDB Local and the S3 stand-in), real tokens from the dev issuer.

Every response passes one check (`check_response`): never a 5xx; an error from the handler is
`application/problem+json` whose body fits the OpenAPI `Problem` schema; an error from the
gateway itself (401, 413 over 10 MB, 429) is API Gateway's `{"message": "..."}`.

The platform is shared by the whole session, so every test makes its own users (uuid suffixes).
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from local_platform.auth import DevIssuer
from local_platform.process import Platform
from tests.e2e.api_client import (
    JSON,
    MISSING_ULID,
    ORIGIN,
    OTHER_ALLOWED_ORIGIN,
    ULID,
    api,
    assert_schema,
    check_response,
    create,
    describe,
    expect_gateway,
    expect_problem,
    expect_task,
    list_all,
    new_user,
    parse_time,
    problem_type,
    raw_api,
    run_together,
    s3_client,
    snapshot,
)

# -- tests -------------------------------------------------------------------------------------


class TestHealth:
    def test_health_needs_no_token(self, platform: Platform) -> None:
        with api(platform) as anonymous:
            response = anonymous.get("/health")
        assert response.status_code == 200, describe(response)
        assert response.headers["content-type"].split(";")[0] == JSON
        assert response.json() == {"status": "ok"}
        assert_schema("Health", response.json())
        assert response.headers.get("apigw-requestid")


class TestTaskLifecycle:
    def test_create_get_list_put_patch_complete_delete(self, platform: Platform) -> None:
        alice = new_user("alice")
        with api(platform, alice) as client:
            created_response = client.post(
                "/tasks",
                json={
                    "title": "Write the report",
                    "description": "Q3 numbers\nand a chart",
                    "priority": "low",
                    "tags": ["finance", "q3"],
                    "dueDate": "2035-01-31",
                },
            )
            task = expect_task(created_response, 201)
            task_id = task["id"]
            assert ULID.match(task_id)
            assert created_response.headers["location"] == f"/tasks/{task_id}"
            assert created_response.headers["etag"] == '"1"'
            assert task["ownerId"] == alice
            assert task["title"] == "Write the report"
            assert task["description"] == "Q3 numbers\nand a chart"
            assert task["status"] == "pending"
            assert task["priority"] == "low"
            assert task["approval"] == "not_required"
            assert task["tags"] == ["finance", "q3"]
            assert task["dueDate"] == "2035-01-31"
            assert task["completedAt"] is None
            assert task["attachments"] == []
            assert task["version"] == 1

            got = client.get(f"/tasks/{task_id}")
            assert expect_task(got) == task
            assert got.headers["etag"] == '"1"'

            listed = client.get("/tasks")
            assert listed.status_code == 200, describe(listed)
            assert_schema("TaskPage", listed.json())
            assert listed.json()["items"] == [task]

            put = client.put(f"/tasks/{task_id}", json={"title": "Write the Q3 report"})
            after_put = expect_task(put)
            assert put.headers["etag"] == '"2"'
            # PUT is partial, like PATCH: the fields not sent are unchanged.
            assert after_put == {
                **task,
                "title": "Write the Q3 report",
                "version": 2,
                "updatedAt": after_put["updatedAt"],
            }

            patch = client.patch(
                f"/tasks/{task_id}",
                json={"status": "in_progress", "tags": ["finance"]},
                headers={"If-Match": '"2"'},
            )
            after_patch = expect_task(patch)
            assert after_patch["status"] == "in_progress"
            assert after_patch["tags"] == ["finance"]
            assert after_patch["version"] == 3  # one request, one version

            unchanged = client.patch(f"/tasks/{task_id}", json={"title": "Write the Q3 report"})
            assert expect_task(unchanged) == after_patch  # a no-op makes no version

            complete = client.post(f"/tasks/{task_id}/complete")
            done = expect_task(complete)
            assert done["status"] == "completed"
            assert done["completedAt"] is not None
            assert done["version"] == 4
            again = client.post(f"/tasks/{task_id}/complete", json={})
            assert expect_task(again) == done  # completing a completed task changes nothing

            stale = client.delete(f"/tasks/{task_id}", headers={"If-Match": '"3"'})
            expect_problem(stale, 412, "precondition-failed")
            deleted = client.delete(f"/tasks/{task_id}", headers={"If-Match": '"4"'})
            assert deleted.status_code == 204, describe(deleted)
            assert deleted.content == b""

            expect_problem(client.get(f"/tasks/{task_id}"), 404, "not-found")
            expect_problem(client.delete(f"/tasks/{task_id}"), 404, "not-found")
            assert list_all(client) == []

    def test_lifecycle_rules_are_409(self, platform: Platform) -> None:
        with api(platform, new_user()) as client:
            task = create(client)
            refused = client.post(f"/tasks/{task['id']}/complete")
            expect_problem(refused, 409, "invalid-transition")  # no pending -> completed
            cancelled = expect_task(
                client.patch(f"/tasks/{task['id']}", json={"status": "cancelled"})
            )
            assert cancelled["status"] == "cancelled"
            edit = client.patch(f"/tasks/{task['id']}", json={"title": "too late"})
            expect_problem(edit, 409, "invalid-transition")
            assert snapshot(client, task["id"])[0] == cancelled

    def test_stats(self, platform: Platform) -> None:
        with api(platform, new_user()) as client:
            response = client.get("/stats")
        assert response.status_code == 200, describe(response)
        assert_schema("Stats", response.json())
        assert response.json()["completedThisWeek"] == 0
        assert response.json()["medianCompletionSeconds"] is None


class TestApprovals:
    def test_an_approver_approves_a_high_priority_task(self, platform: Platform) -> None:
        owner, approver, bystander = new_user("owner"), new_user("approver"), new_user()
        with (
            api(platform, owner) as client,
            api(platform, approver, "approvers") as approvers,
            api(platform, bystander) as other,
            api(platform, owner, "approvers") as owner_as_approver,
        ):
            task = create(client, "Buy a server", priority="high")
            assert task["approval"] == "pending"
            start = client.patch(f"/tasks/{task['id']}", json={"status": "in_progress"})
            expect_problem(start, 409, "invalid-transition")

            queued = self._find_in_queue(approvers, task["id"])
            assert queued == task

            expect_problem(other.get("/approvals"), 403, "forbidden")
            not_approver = other.post(f"/tasks/{task['id']}/approval", json={"decision": "approve"})
            expect_problem(not_approver, 403, "forbidden")
            own = owner_as_approver.post(
                f"/tasks/{task['id']}/approval", json={"decision": "approve"}
            )
            expect_problem(own, 403, "forbidden")
            bad = approvers.post(f"/tasks/{task['id']}/approval", json={"decision": "maybe"})
            expect_problem(bad, 422, "invalid-task")

            decided = approvers.post(f"/tasks/{task['id']}/approval", json={"decision": "approve"})
            approved = expect_task(decided)
            assert approved["approval"] == "approved"
            assert approved["approvalDecidedBy"] == approver
            assert approved["approvalDecidedAt"] is not None
            assert approved["ownerId"] == owner
            assert approved["version"] == 2

            # Out of the queue now: deciding again is 404, as for any task not awaiting one.
            twice = approvers.post(f"/tasks/{task['id']}/approval", json={"decision": "reject"})
            expect_problem(twice, 404, "not-found")
            # The approver never reaches the task itself.
            expect_problem(approvers.get(f"/tasks/{task['id']}"), 404, "not-found")

            started = expect_task(
                client.patch(f"/tasks/{task['id']}", json={"status": "in_progress"})
            )
            assert started["status"] == "in_progress"
            done = expect_task(client.post(f"/tasks/{task['id']}/complete"))
            assert done["status"] == "completed"

    def test_a_rejection_cancels_the_task(self, platform: Platform) -> None:
        owner, approver = new_user("owner"), new_user("approver")
        with api(platform, owner) as client, api(platform, approver, "approvers") as approvers:
            task = create(client, "Buy a plane", priority="critical")
            self._find_in_queue(approvers, task["id"])
            rejected = approvers.post(f"/tasks/{task['id']}/approval", json={"decision": "reject"})
            body = expect_task(rejected)
            assert (body["approval"], body["status"]) == ("rejected", "cancelled")
            assert snapshot(client, task["id"])[0] == body

    def test_queue_query_rules(self, platform: Platform) -> None:
        with api(platform, new_user("approver"), "approvers") as approvers:
            expect_problem(
                approvers.get("/approvals", params={"status": "x"}), 400, "invalid-query"
            )
            expect_problem(approvers.get("/approvals", params={"limit": 0}), 400, "invalid-query")
            expect_problem(
                approvers.get("/approvals", params={"cursor": "nope"}), 400, "invalid-cursor"
            )

    @staticmethod
    def _find_in_queue(approvers: httpx.Client, task_id: str) -> dict[str, Any]:
        """The task as the queue lists it (the queue is a GSI: allow it a moment)."""
        deadline = time.monotonic() + 10
        while True:
            cursor: str | None = None
            for _ in range(100):
                params: dict[str, Any] = {"limit": 100}
                if cursor:
                    params["cursor"] = cursor
                response = approvers.get("/approvals", params=params)
                assert response.status_code == 200, describe(response)
                assert_schema("TaskPage", response.json())
                for item in response.json()["items"]:
                    if item["id"] == task_id:
                        found: dict[str, Any] = item
                        return found
                cursor = response.json()["nextCursor"]
                if cursor is None:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} never appeared in the approvers' queue")
            time.sleep(0.1)


class TestAttachments:
    @pytest.mark.parametrize(
        ("filename", "content_type", "data"),
        [
            ("notes.txt", "text/plain", b"hello, attachments\n"),
            ("résumé.pdf", "application/pdf", b"%PDF-1.4\n" + bytes(range(256)) * 40),
        ],
        ids=["ascii", "non-ascii"],
    )
    def test_upload_then_download(
        self, platform: Platform, filename: str, content_type: str, data: bytes
    ) -> None:
        with api(platform, new_user()) as client, s3_client() as s3:
            task = create(client)
            response = client.post(
                f"/tasks/{task['id']}/attachments",
                json={"filename": filename, "contentType": content_type, "size": len(data)},
            )
            assert response.status_code == 201, describe(response)
            body = response.json()
            assert_schema("AttachmentCreated", body)
            attachment = body["attachment"]
            assert attachment["filename"] == filename
            assert attachment["contentType"] == content_type
            assert attachment["size"] == len(data)
            location = f"/tasks/{task['id']}/attachments/{attachment['id']}"
            assert response.headers["location"] == location
            assert response.headers["etag"] == '"2"'  # recording the attachment is a version
            assert parse_time(body["upload"]["expiresAt"]) > parse_time(task["createdAt"])

            upload = body["upload"]
            uploaded = s3.post(
                upload["url"],
                data=upload["fields"],
                files={"file": (filename, data, content_type)},
            )
            assert uploaded.status_code in (200, 201, 204), describe(uploaded)

            now = snapshot(client, task["id"])[0]
            assert now["attachments"] == [attachment]
            assert now["version"] == 2

            link = client.get(location)
            assert link.status_code == 200, describe(link)
            assert_schema("DownloadLink", link.json())
            downloaded = s3.get(link.json()["url"])
            assert downloaded.status_code == 200, describe(downloaded)
            assert downloaded.content == data
            assert downloaded.headers["content-type"].split(";")[0] == content_type
            disposition = downloaded.headers["content-disposition"]
            assert disposition.startswith("attachment;"), disposition
            encoded = re.search(r"filename\*=UTF-8''([^;\s]+)", disposition)
            assert encoded is not None, disposition
            assert unquote(encoded.group(1), encoding="utf-8") == filename
            assert encoded.group(1) == quote(filename, safe="!#$&+^`|~")
            fallback = re.search(r'filename="([^"]*)"', disposition)
            assert fallback is not None, disposition
            assert fallback.group(1).isascii()
            if filename.isascii():
                assert fallback.group(1) == filename

    @pytest.mark.parametrize("filename", ["../x", "..", "a/b", "a\\b", "", "x\ny"])
    def test_a_path_or_bad_filename_is_422(self, platform: Platform, filename: str) -> None:
        with api(platform, new_user()) as client:
            task = create(client)
            before = snapshot(client, task["id"])
            response = client.post(
                f"/tasks/{task['id']}/attachments",
                json={"filename": filename, "contentType": "text/plain", "size": 3},
            )
            body = expect_problem(response, 422, "invalid-task")
            assert [e["field"] for e in body["errors"]] == ["filename"]
            assert snapshot(client, task["id"]) == before

    def test_unknown_attachment_is_404(self, platform: Platform) -> None:
        with api(platform, new_user()) as client:
            task = create(client)
            missing = client.get(f"/tasks/{task['id']}/attachments/{MISSING_ULID}")
            expect_problem(missing, 404, "not-found")
            expect_problem(client.get(f"/tasks/{task['id']}/attachments/nope"), 404, "not-found")


class TestOwnership:
    def test_another_user_gets_404_on_every_task_route(self, platform: Platform) -> None:
        alice, mallory = new_user("alice"), new_user("mallory")
        with api(platform, alice) as owner, api(platform, mallory, "approvers") as intruder:
            task = create(owner, "Alice's secret", tags=["private"])
            task_id = task["id"]
            attached = owner.post(
                f"/tasks/{task_id}/attachments",
                json={"filename": "secret.txt", "contentType": "text/plain", "size": 6},
            )
            assert attached.status_code == 201, describe(attached)
            attachment_id = attached.json()["attachment"]["id"]
            before = snapshot(owner, task_id)
            version = before[1]

            attempts: dict[str, Callable[[], httpx.Response]] = {
                "GET": lambda: intruder.get(f"/tasks/{task_id}"),
                "PUT": lambda: intruder.put(f"/tasks/{task_id}", json={"title": "pwned"}),
                "PATCH": lambda: intruder.patch(f"/tasks/{task_id}", json={"status": "cancelled"}),
                "PATCH If-Match": lambda: intruder.patch(
                    f"/tasks/{task_id}", json={"title": "pwned"}, headers={"If-Match": version}
                ),
                "DELETE": lambda: intruder.delete(f"/tasks/{task_id}"),
                "DELETE If-Match": lambda: intruder.delete(
                    f"/tasks/{task_id}", headers={"If-Match": version}
                ),
                "complete": lambda: intruder.post(f"/tasks/{task_id}/complete"),
                "attachments POST": lambda: intruder.post(
                    f"/tasks/{task_id}/attachments",
                    json={"filename": "evil.txt", "contentType": "text/plain", "size": 4},
                ),
                "attachment GET": lambda: intruder.get(
                    f"/tasks/{task_id}/attachments/{attachment_id}"
                ),
            }
            # A task of Alice's must look exactly like one that does not exist.
            missing = intruder.get(f"/tasks/{MISSING_ULID}").json()
            for name, attempt in attempts.items():
                response = attempt()
                body = expect_problem(response, 404, "not-found")
                assert "etag" not in response.headers, name
                assert {k: v for k, v in body.items() if k != "detail"} == {
                    k: v for k, v in missing.items() if k != "detail"
                }, name
                assert "secret" not in response.text, name

            listed = intruder.get("/tasks")
            assert listed.status_code == 200, describe(listed)
            assert listed.json()["items"] == []
            assert snapshot(owner, task_id) == before


PAGED_TASKS = 250


@pytest.fixture(scope="module")
def owner_and_ids(platform: Platform) -> tuple[str, list[str]]:
    """A user with 250 tasks, created by 8 concurrent clients; their ids."""
    owner = new_user("pager")

    def create_some(titles: list[str]) -> list[str]:
        with api(platform, owner) as client:
            return [create(client, title)["id"] for title in titles]

    titles = [f"task {i:03d}" for i in range(PAGED_TASKS)]
    chunks = [titles[i::8] for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = [task_id for chunk in pool.map(create_some, chunks) for task_id in chunk]
    assert len(set(ids)) == PAGED_TASKS
    return owner, ids


class TestPagination:
    @staticmethod
    def walk(client: httpx.Client, limits: Callable[[int], int]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for page_number in range(1000):
            limit = limits(page_number)
            params: dict[str, Any] = {"limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            response = client.get("/tasks", params=params)
            assert response.status_code == 200, describe(response)
            page = response.json()
            assert_schema("TaskPage", page)
            assert len(page["items"]) <= limit
            if page["nextCursor"] is not None:  # only the last page may be short
                assert len(page["items"]) == limit, (page_number, limit, len(page["items"]))
            items += page["items"]
            cursor = page["nextCursor"]
            if cursor is None:
                return items
        raise AssertionError("the cursor never ends")

    def check_order(self, items: list[dict[str, Any]], ids: list[str]) -> None:
        listed = [item["id"] for item in items]
        assert len(listed) == len(set(listed)), "a task was listed twice"
        assert set(listed) == set(ids), (
            f"missing {sorted(set(ids) - set(listed))}, extra {sorted(set(listed) - set(ids))}"
        )
        # Newest first: ULIDs sort by creation time (to the millisecond).
        assert listed == sorted(ids, reverse=True)
        times = [parse_time(item["createdAt"]) for item in items]
        tolerance = timedelta(milliseconds=2)  # two ids minted in one millisecond
        assert all(later <= earlier + tolerance for earlier, later in itertools.pairwise(times))

    @pytest.mark.parametrize(
        "limits",
        [
            pytest.param(lambda _: 7, id="7"),
            pytest.param(lambda _: 100, id="100"),
            pytest.param(lambda _: 1, id="1"),
            pytest.param(
                lambda n: [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 100, 99, 50, 7][n % 14], id="mixed"
            ),
        ],
    )
    def test_every_task_once_newest_first(
        self, platform: Platform, owner_and_ids: tuple[str, list[str]], limits: Callable[[int], int]
    ) -> None:
        owner, ids = owner_and_ids
        with api(platform, owner) as client:
            self.check_order(self.walk(client, limits), ids)

    def test_default_page_is_50(
        self, platform: Platform, owner_and_ids: tuple[str, list[str]]
    ) -> None:
        owner, ids = owner_and_ids
        with api(platform, owner) as client:
            response = client.get("/tasks")
        assert response.status_code == 200, describe(response)
        assert [t["id"] for t in response.json()["items"]] == sorted(ids, reverse=True)[:50]
        assert response.json()["nextCursor"]

    def test_bad_cursors_and_limits_are_400(
        self, platform: Platform, owner_and_ids: tuple[str, list[str]]
    ) -> None:
        owner, _ = owner_and_ids
        with api(platform, owner) as client, api(platform, new_user("thief")) as thief:
            first = client.get("/tasks", params={"limit": 10})
            cursor = first.json()["nextCursor"]
            assert isinstance(cursor, str)
            body, signature = cursor.split(".")
            flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
            for tampered in (f"{flipped}.{signature}", f"{body}.{signature[::-1]}", "garbage"):
                response = client.get("/tasks", params={"limit": 10, "cursor": tampered})
                problem = expect_problem(response, 400, "invalid-cursor")
                assert problem["errors"], problem
            # Another user's cursor, and the owner's cursor with another filter.
            stolen = thief.get("/tasks", params={"limit": 10, "cursor": cursor})
            expect_problem(stolen, 400, "invalid-cursor")
            other_filter = client.get(
                "/tasks", params={"limit": 10, "status": "completed", "cursor": cursor}
            )
            expect_problem(other_filter, 400, "invalid-cursor")
            # Still good for its owner afterwards.
            second = client.get("/tasks", params={"limit": 10, "cursor": cursor})
            assert second.status_code == 200, describe(second)
            assert len(second.json()["items"]) == 10

            for params in ({"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"colour": "red"}):
                expect_problem(client.get("/tasks", params=params), 400, "invalid-query")
            filtered = client.get("/tasks", params={"status": "completed"})
            assert filtered.status_code == 200, describe(filtered)
            assert filtered.json() == {"items": [], "nextCursor": None}


class TestConditionalUpdates:
    def test_one_of_sixteen_racing_if_match_writers_wins(self, platform: Platform) -> None:
        user = new_user("racer")
        with api(platform, user) as client:
            task = create(client)
        clients = [platform.client(user) for _ in range(16)]
        for racer in clients:
            racer.event_hooks = {"request": [], "response": [check_response]}
        try:
            responses = run_together(
                16,
                lambda i: clients[i].patch(
                    f"/tasks/{task['id']}",
                    json={"title": f"writer {i}"},
                    headers={"If-Match": '"1"'},
                ),
            )
        finally:
            for racer in clients:
                racer.close()
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(200) == 1, statuses
        assert all(s in (409, 412) for s in statuses if s != 200), statuses
        winner = next(r for r in responses if r.status_code == 200)
        for loser in responses:
            if loser.status_code != 200:
                assert problem_type(loser) in ("precondition-failed", "concurrent-modification")

        with api(platform, user) as client:
            current, current_etag = snapshot(client, task["id"])
            assert current["version"] == 2
            assert current_etag == '"2"'
            assert current == winner.json()

            # Sequential conditional updates, each with the ETag the previous one returned.
            etag = current_etag
            for step in range(10):
                response = client.patch(
                    f"/tasks/{task['id']}",
                    json={"description": f"step {step}"},
                    headers={"If-Match": etag},
                )
                body = expect_task(response)
                assert body["version"] == 3 + step
                assert body["description"] == f"step {step}"
                etag = response.headers["etag"]
            final, final_etag = snapshot(client, task["id"])
            assert final["version"] == 12
            assert final_etag == '"12"'

            for stale in ('"11"', 'W/"12"', '"12", "13"', "12"):
                response = client.patch(
                    f"/tasks/{task['id']}", json={"title": "late"}, headers={"If-Match": stale}
                )
                expect_problem(response, 412, "precondition-failed")
            assert snapshot(client, task["id"]) == (final, final_etag)

    def test_unconditional_racing_writers_lose_no_update(self, platform: Platform) -> None:
        """Without If-Match a lost race is 409, never a silent overwrite: every 200 is a
        version of its own."""
        user = new_user("racer")
        with api(platform, user) as client:
            task = create(client)
        clients = [platform.client(user) for _ in range(16)]
        for racer in clients:
            racer.event_hooks = {"request": [], "response": [check_response]}
        try:
            responses = run_together(
                16,
                lambda i: clients[i].patch(f"/tasks/{task['id']}", json={"description": f"d{i}"}),
            )
        finally:
            for racer in clients:
                racer.close()
        winners = [r for r in responses if r.status_code == 200]
        assert winners, [r.status_code for r in responses]
        for response in responses:
            if response.status_code != 200:
                expect_problem(response, 409, "concurrent-modification")
        versions = sorted(expect_task(r)["version"] for r in winners)
        assert versions == list(range(2, 2 + len(winners))), versions
        with api(platform, user) as client:
            final = snapshot(client, task["id"])[0]
        assert final["version"] == 1 + len(winners)
        assert final == next(r.json() for r in winners if r.json()["version"] == final["version"])


class TestIdempotentCreate:
    def test_twenty_concurrent_retries_make_one_task(self, platform: Platform) -> None:
        user = new_user("retrier")
        key = f"create-{uuid.uuid4()}"
        payload = {"title": "Pay the invoice", "tags": ["money"]}
        clients = [platform.client(user) for _ in range(20)]
        for retrier in clients:
            retrier.event_hooks = {"request": [], "response": [check_response]}
        try:
            responses = run_together(
                20,
                lambda i: clients[i].post("/tasks", json=payload, headers={"Idempotency-Key": key}),
            )
        finally:
            for retrier in clients:
                retrier.close()
        statuses = [r.status_code for r in responses]
        assert statuses.count(201) == 1, statuses
        assert statuses.count(200) == 19, statuses
        bodies = [expect_task(r, r.status_code) for r in responses]
        task_ids = {body["id"] for body in bodies}
        assert len(task_ids) == 1, task_ids
        task_id = task_ids.pop()
        assert {r.headers["location"] for r in responses} == {f"/tasks/{task_id}"}
        first = next(b for b, r in zip(bodies, responses, strict=True) if r.status_code == 201)
        assert all(body == first for body in bodies)

        with api(platform, user) as client:
            assert [t["id"] for t in list_all(client)] == [task_id]
            replay = client.post("/tasks", json=payload, headers={"Idempotency-Key": key})
            assert expect_task(replay, 200)["id"] == task_id

            other_body = client.post(
                "/tasks", json={"title": "Pay another invoice"}, headers={"Idempotency-Key": key}
            )
            expect_problem(other_body, 422, "idempotency-key-reused")
            bad_key = client.post("/tasks", json=payload, headers={"Idempotency-Key": "bad key!"})
            expect_problem(bad_key, 400, "invalid-header")
            assert [t["id"] for t in list_all(client)] == [task_id]

        # Keys are per caller: another user's same key creates that user's own task.
        with api(platform, new_user()) as stranger:
            theirs = stranger.post("/tasks", json=payload, headers={"Idempotency-Key": key})
            assert expect_task(theirs, 201)["id"] != task_id


class TestThrottling:
    def test_a_burst_is_429_then_recovers(self, throttled_platform: Platform) -> None:
        with raw_api(throttled_platform) as client:
            responses = [client.get("/health") for _ in range(10)]
            statuses = [r.status_code for r in responses]
            assert set(statuses) <= {200, 429}, statuses
            throttled = [r for r in responses if r.status_code == 429]
            assert throttled, f"no 429 in a burst of 10 at burst 5: {statuses}"
            waits = []
            for response in throttled:
                expect_gateway(response, 429, "Too Many Requests")
                retry_after = response.headers["retry-after"]
                assert retry_after.isdigit(), retry_after
                assert int(retry_after) >= 1
                waits.append(int(retry_after))
            time.sleep(max(waits))
            recovered = client.get("/health")
            assert recovered.status_code == 200, describe(recovered)


class TestCors:
    @pytest.mark.parametrize("origin", [ORIGIN, OTHER_ALLOWED_ORIGIN])
    def test_preflight_needs_no_token(self, platform: Platform, origin: str) -> None:
        with raw_api(platform) as anonymous:
            response = anonymous.options(
                "/tasks",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
                },
            )
        assert response.status_code == 204, describe(response)
        assert response.headers["access-control-allow-origin"] == origin
        methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
        assert {"POST", "GET", "PATCH", "DELETE", "PUT"} <= methods
        allowed = {
            h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
        }
        assert {"authorization", "content-type", "idempotency-key", "if-match"} <= allowed
        assert "Origin" in response.headers.get("vary", "")

    def test_a_disallowed_origin_gets_no_cors_headers(self, platform: Platform) -> None:
        with raw_api(platform) as anonymous:
            preflight = anonymous.options(
                "/tasks",
                headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
            )
            simple = anonymous.get("/health", headers={"Origin": "http://evil.example"})
        for response in (preflight, simple):
            assert "access-control-allow-origin" not in response.headers, describe(response)
            assert "access-control-allow-methods" not in response.headers, describe(response)

    def test_an_allowed_origin_sees_the_etag(self, platform: Platform) -> None:
        with api(platform, new_user()) as client:
            task = create(client)
            response = client.get(f"/tasks/{task['id']}", headers={"Origin": ORIGIN})
            assert response.status_code == 200, describe(response)
            assert response.headers["access-control-allow-origin"] == ORIGIN
            exposed = {
                h.strip().lower()
                for h in response.headers["access-control-expose-headers"].split(",")
            }
            assert {"etag", "location"} <= exposed
            assert response.headers["etag"] == '"1"'
        # The gateway's own errors carry them too, or a browser could not read a 401.
        with raw_api(platform) as anonymous:
            denied = anonymous.get("/tasks", headers={"Origin": ORIGIN})
        expect_gateway(denied, 401, "Unauthorized")
        assert denied.headers["access-control-allow-origin"] == ORIGIN


class TestAuthentication:
    def test_no_token_is_401(self, platform: Platform) -> None:
        with raw_api(platform) as anonymous:
            for method, path in [
                ("GET", "/tasks"),
                ("POST", "/tasks"),
                ("GET", f"/tasks/{MISSING_ULID}"),
                ("GET", "/stats"),
                ("GET", "/approvals"),
                ("GET", "/no-such-route"),
            ]:
                response = anonymous.request(method, path, json={"title": "x"})
                expect_gateway(response, 401, "Unauthorized")
                assert response.headers["www-authenticate"].startswith("Bearer"), describe(response)

    @pytest.mark.parametrize("how", ["expired", "foreign-key", "garbage", "wrong-audience"])
    def test_a_bad_token_is_401(self, platform: Platform, tmp_path: Path, how: str) -> None:
        user = new_user()
        if how == "expired":
            token = platform.issuer.mint(user, (), ttl=timedelta(seconds=-60))
        elif how == "foreign-key":
            token = DevIssuer(key_dir=tmp_path / "issuer").mint(user)
        elif how == "wrong-audience":
            token = platform.issuer.mint(user, aud="someone-else")
        else:
            token = "not.a.jwt"
        with raw_api(platform, {"Authorization": f"Bearer {token}"}) as client:
            response = client.get("/tasks")
            expect_gateway(response, 401, "Unauthorized")
            assert "invalid_token" in response.headers["www-authenticate"]
            created = client.post("/tasks", json={"title": "should not exist"})
            expect_gateway(created, 401, "Unauthorized")
        with api(platform, user) as client:
            assert list_all(client) == []  # the refused create wrote nothing


class TestBadInput:
    def test_bad_requests_are_problems_and_write_nothing(self, platform: Platform) -> None:
        user = new_user()
        with api(platform, user) as client:
            json_headers = {"Content-Type": JSON}
            malformed = client.post("/tasks", content=b'{"title": ', headers=json_headers)
            expect_problem(malformed, 400, "malformed-json")
            nan = client.post("/tasks", content=b'{"title": NaN}', headers=json_headers)
            expect_problem(nan, 400, "malformed-json")
            missing = client.post("/tasks", headers=json_headers)
            expect_problem(missing, 400, "missing-body")
            text = client.post(
                "/tasks", content=b'{"title": "x"}', headers={"Content-Type": "text/plain"}
            )
            expect_problem(text, 415, "unsupported-media-type")
            form = client.post("/tasks", data={"title": "x"})
            expect_problem(form, 415, "unsupported-media-type")

            big = json.dumps({"title": "big", "description": "a" * (1024 * 1024)})
            too_large = client.post("/tasks", content=big, headers=json_headers)
            expect_problem(too_large, 413, "body-too-large")
            huge = b'{"title": "huge", "description": "' + b"a" * (11 * 1024 * 1024) + b'"}'
            over_quota = client.post("/tasks", content=huge, headers=json_headers)
            expect_gateway(over_quota, 413, "Request Entity Too Large")

            invalid = client.post(
                "/tasks",
                json={"title": "", "priority": "urgent", "tags": ["a", "a"], "ownerId": user},
            )
            problem = expect_problem(invalid, 422, "invalid-task")
            fields = {e["field"] for e in problem["errors"]}
            assert {"title", "priority", "ownerId"} <= fields, problem
            past = client.post("/tasks", json={"title": "late", "dueDate": "2001-01-01"})
            expect_problem(past, 422, "invalid-task")

            no_route = client.get("/no-such-route")
            expect_problem(no_route, 404, "no-route")
            for method, path, allow in [
                ("DELETE", "/tasks", "GET, POST"),
                ("POST", "/health", "GET"),
                ("GET", f"/tasks/{MISSING_ULID}/complete", "POST"),
                ("POST", f"/tasks/{MISSING_ULID}", "DELETE, GET, PATCH, PUT"),
            ]:
                response = client.request(method, path)
                expect_problem(response, 405, "method-not-allowed")
                assert response.headers["allow"] == allow, describe(response)

            expect_problem(client.get("/tasks/not-a-ulid"), 404, "not-found")
            expect_problem(client.get(f"/tasks/{MISSING_ULID}"), 404, "not-found")
            assert list_all(client) == []

    def test_bad_update_bodies_change_nothing(self, platform: Platform) -> None:
        with api(platform, new_user()) as client:
            task = create(client)
            before = snapshot(client, task["id"])
            path = f"/tasks/{task['id']}"
            json_headers = {"Content-Type": JSON}
            expect_problem(
                client.patch(path, content=b"{", headers=json_headers), 400, "malformed-json"
            )
            expect_problem(client.patch(path, json={}), 422, "invalid-task")
            expect_problem(client.patch(path, json={"status": "done"}), 422, "invalid-task")
            expect_problem(client.patch(path, json={"version": 7}), 422, "invalid-task")
            big = json.dumps({"description": "a" * (1024 * 1024)})
            expect_problem(
                client.put(path, content=big, headers=json_headers), 413, "body-too-large"
            )
            expect_problem(
                client.post(f"{path}/complete", json={"force": True}), 422, "invalid-task"
            )
            assert snapshot(client, task["id"]) == before
