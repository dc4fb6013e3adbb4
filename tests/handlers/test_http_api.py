"""The HTTP API handler, driven with API Gateway payload-2.0 events and in-memory adapters."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
import pytest

from handlers import bootstrap, http_api
from handlers.settings import Settings
from local_platform.gateway.payload import http_event
from local_platform.lambda_runtime import handler_context
from stack.manifest import API
from taskcore import services
from taskcore.errors import Unavailable
from taskcore.model import ExportId, UserId
from taskcore.testing import (
    Fakes,
    InMemoryExportRepository,
    InMemoryTaskRepository,
    in_memory_service,
)

Call = Callable[..., tuple[int, dict[str, str], Any]]


@pytest.fixture
def fakes() -> Fakes:
    return in_memory_service()


@pytest.fixture
def containers(fakes: Fakes) -> list[bootstrap.Container]:
    """The container the handler uses: the last one (tests may push one with other adapters)."""
    return [
        bootstrap.Container(
            service=fakes.service,
            clock=fakes.clock,
            max_body_bytes=2048,
            exports=fakes.export_service,
        )
    ]


@pytest.fixture
def call(containers: list[bootstrap.Container], monkeypatch: pytest.MonkeyPatch) -> Call:
    monkeypatch.setattr(http_api, "app", http_api.create_app(lambda: containers[-1]))

    def invoke(method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
        response = http_api.handler(http_event(method, path, **kwargs), handler_context(API))
        body = response.get("body") or ""
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        parsed: Any = json.loads(body) if body else None
        if response["statusCode"] >= 400:
            assert headers["content-type"] == "application/problem+json"
            assert parsed["status"] == response["statusCode"]
            assert parsed["type"].startswith("urn:tasks:problem:")
        return response["statusCode"], headers, parsed

    return invoke


def create(call: Call, user: str = "alice", **fields: Any) -> dict[str, Any]:
    status, _, body = call("POST", "/tasks", user=user, body={"title": "A task", **fields})
    assert status == 201
    return body


class TestCreate:
    def test_created_with_location_and_etag(self, call: Call) -> None:
        status, headers, body = call("POST", "/tasks", body={"title": "Write", "tags": ["a"]})
        assert status == 201
        assert headers["location"] == f"/tasks/{body['id']}"
        assert headers["etag"] == '"1"'
        assert (body["ownerId"], body["status"], body["tags"]) == ("alice", "pending", ["a"])

    def test_idempotency_key_replays_the_same_body(self, call: Call, fakes: Fakes) -> None:
        request = {"body": {"title": "Once"}, "headers": {"Idempotency-Key": "abc-1"}}
        first = call("POST", "/tasks", **request)
        fakes.clock.advance(timedelta(minutes=1))
        again = call("POST", "/tasks", **request)
        assert (first[0], again[0]) == (201, 200)
        assert again[2] == first[2]
        assert len(fakes.tasks.tasks) == 1
        other = call("POST", "/tasks", body={"title": "Else"}, headers={"Idempotency-Key": "abc-1"})
        assert other[0] == 422
        assert other[2]["type"].endswith("idempotency-key-reused")

    def test_owner_comes_from_the_token_not_the_body(self, call: Call) -> None:
        status, _, body = call("POST", "/tasks", body={"title": "x", "ownerId": "mallory"})
        assert status == 422
        assert body["errors"] == [{"field": "ownerId", "message": "is not a known field"}]

    def test_every_bad_field_is_listed(self, call: Call, fakes: Fakes) -> None:
        status, _, body = call(
            "POST",
            "/tasks",
            body={"title": "", "priority": "urgent", "tags": ["x" * 40], "dueDate": "2020-13-01"},
        )
        assert status == 422
        assert {e["field"] for e in body["errors"]} == {"title", "priority", "tags/0", "dueDate"}
        assert fakes.tasks.tasks == {}

    @pytest.mark.parametrize(
        ("kwargs", "status", "kind"),
        [
            (
                {"raw_body": "{not json", "headers": {"content-type": "application/json"}},
                400,
                "malformed-json",
            ),
            (
                {
                    "raw_body": "[" * 5000 + "]" * 5000,
                    "headers": {"content-type": "application/json"},
                },
                413,
                "body-too-large",
            ),
            (
                {
                    "raw_body": "[" * 1000 + "]" * 1000,
                    "headers": {"content-type": "application/json"},
                },
                400,
                "malformed-json",
            ),
            (
                {"raw_body": '{"title": "x"}', "headers": {"content-type": "text/plain"}},
                415,
                "unsupported-media-type",
            ),
            ({"raw_body": '{"title": "x"}'}, 415, "unsupported-media-type"),
            ({}, 400, "missing-body"),
            (
                {"raw_body": "x" * 3000, "headers": {"content-type": "application/json"}},
                413,
                "body-too-large",
            ),
            ({"body": ["a", "list"]}, 422, "invalid-task"),
            # Lone surrogates are JSON grammar but not Unicode: refused wherever they are.
            (
                {
                    "raw_body": '{"title": "\\ud800"}',
                    "headers": {"content-type": "application/json"},
                },
                400,
                "malformed-json",
            ),
            (
                {
                    "raw_body": '{"\\udc00": 1, "title": "x"}',
                    "headers": {"content-type": "application/json"},
                },
                400,
                "malformed-json",
            ),
            (
                {
                    "raw_body": '{"title": "x\ud800"}',
                    "headers": {"content-type": "application/json"},
                },
                400,
                "malformed-json",
            ),
            # Bodies are UTF-8 (base64 bytes here, as the gateway passes what is not UTF-8).
            (
                {
                    "raw_body": '{"title": "x"}'.encode("utf-16"),
                    "headers": {"content-type": "application/json"},
                },
                400,
                "malformed-json",
            ),
            (
                {
                    "raw_body": b'{"title": "a\xed\xa0\x80"}',
                    "headers": {"content-type": "application/json"},
                },
                400,
                "malformed-json",
            ),
        ],
    )
    def test_bad_bodies_are_4xx(self, call: Call, fakes: Fakes, kwargs, status, kind) -> None:
        got, _, body = call("POST", "/tasks", **kwargs)
        assert (got, body["type"]) == (status, f"urn:tasks:problem:{kind}")
        assert fakes.tasks.tasks == {}

    @pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
    def test_non_json_numbers_are_malformed(self, call: Call, constant: str) -> None:
        raw = '{"title": "x", "description": %s}' % constant  # noqa: UP031
        status, _, body = call(
            "POST", "/tasks", raw_body=raw, headers={"content-type": "application/json"}
        )
        assert (status, body["type"]) == (400, "urn:tasks:problem:malformed-json")

    def test_unauthenticated_is_401_before_the_body_is_judged(self, call: Call) -> None:
        status, _, _ = call("POST", "/tasks", user=None, body={"title": ""})
        assert status == 401

    @pytest.mark.parametrize("subject", ["a" * 256, "al ice", "ålice", "a\u0000"])
    def test_a_subject_openid_connect_would_not_issue_is_401_and_stores_nothing(
        self, call: Call, fakes: Fakes, subject: str
    ) -> None:
        status, _, body = call("POST", "/tasks", user=subject, body={"title": "t"})
        assert (status, body["type"]) == (401, "urn:tasks:problem:unauthenticated")
        assert "255" in body["detail"]
        assert call("POST", "/tasks", user="a" * 255, body={"title": "t"})[0] == 201
        assert len(fakes.tasks.events()) == 1  # the 255-character one only

    def test_base64_bodies_are_decoded(self, call: Call) -> None:
        """API Gateway sends text media types as text, but a body may arrive base64-encoded
        (`isBase64Encoded`, as Function URLs and binary media types send it): it is decoded."""
        payload = json.dumps({"title": "Ünïcode"}).encode()
        event = http_event(
            "POST", "/tasks", raw_body=payload, headers={"content-type": "application/json"}
        )
        event["isBase64Encoded"], event["body"] = True, base64.b64encode(payload).decode()
        response = http_api.handler(event, handler_context(API))
        assert response["statusCode"] == 201
        assert json.loads(response["body"])["title"] == "Ünïcode"

    def test_broken_base64_is_400(self, call: Call) -> None:
        event = http_event(
            "POST", "/tasks", raw_body="{}", headers={"content-type": "application/json"}
        )
        event["isBase64Encoded"], event["body"] = True, "!!!"
        response = http_api.handler(event, handler_context(API))
        assert response["statusCode"] == 400


class TestRead:
    def test_get_with_etag(self, call: Call) -> None:
        task = create(call)
        status, headers, body = call("GET", f"/tasks/{task['id']}")
        assert (status, headers["etag"], body) == (200, '"1"', task)

    def test_list_filters_and_pages(self, call: Call) -> None:
        ids = [create(call, title=f"t{n}", priority="low")["id"] for n in range(5)]
        create(call, user="bob")
        status, _, page = call("GET", "/tasks", query={"limit": "2", "priority": "low"})
        assert status == 200
        seen = [t["id"] for t in page["items"]]
        while page["nextCursor"]:
            _, _, page = call(
                "GET",
                "/tasks",
                query={"limit": "2", "priority": "low", "cursor": page["nextCursor"]},
            )
            seen += [t["id"] for t in page["items"]]
        assert seen == list(reversed(ids))

    @pytest.mark.parametrize(
        "query",
        [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"status": "done"}, {"sort": "asc"}],
    )
    def test_bad_query_is_400(self, call: Call, query: dict[str, str]) -> None:
        status, _, body = call("GET", "/tasks", query=query)
        assert status == 400
        assert body["errors"]

    def test_tampered_cursor_is_400(self, call: Call) -> None:
        for n in range(3):
            create(call, title=f"t{n}")
        _, _, page = call("GET", "/tasks", query={"limit": "1"})
        cursor = page["nextCursor"]
        tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
        status, _, body = call("GET", "/tasks", query={"cursor": tampered})
        assert (status, body["type"]) == (400, "urn:tasks:problem:invalid-cursor")
        status, _, _ = call("GET", "/tasks", user="bob", query={"limit": "1", "cursor": cursor})
        assert status == 400


class TestOwnership:
    """User B gets 404 on every one of user A's task routes, and A's task is unchanged."""

    @pytest.mark.parametrize(
        ("method", "suffix", "body"),
        [
            ("GET", "", None),
            ("PUT", "", {"title": "mine"}),
            ("PATCH", "", {"title": "mine"}),
            ("DELETE", "", None),
            ("POST", "/complete", None),
            ("POST", "/attachments", {"filename": "a.txt", "contentType": "text/plain", "size": 1}),
            ("GET", "/attachments/01JD00000000000000000000AC", None),
        ],
    )
    def test_other_users_get_404(self, call: Call, fakes: Fakes, method, suffix, body) -> None:
        task = create(call)
        before = dict(fakes.tasks.tasks)
        status, _, _ = call(method, f"/tasks/{task['id']}{suffix}", user="mallory", body=body)
        assert status == 404
        assert fakes.tasks.tasks == before

    def test_no_subject_is_401(self, call: Call) -> None:
        status, _, _ = call("GET", "/tasks", user=None)
        assert status == 401


class TestUpdate:
    def test_patch_and_if_match(self, call: Call) -> None:
        task = create(call)
        path = f"/tasks/{task['id']}"
        status, headers, body = call(
            "PATCH", path, body={"title": "v2"}, headers={"If-Match": '"1"'}
        )
        assert (status, headers["etag"], body["title"]) == (200, '"2"', "v2")
        status, _, body = call("PUT", path, body={"title": "v3"}, headers={"If-Match": '"1"'})
        assert (status, body["type"]) == (412, "urn:tasks:problem:precondition-failed")
        assert call("GET", path)[2]["title"] == "v2"
        assert call("PATCH", path, body={"title": "v3"}, headers={"If-Match": "*"})[0] == 200
        assert call("PATCH", path, body={"title": "v4"}, headers={"If-Match": "garbage"})[0] == 412

    def test_status_changes_and_illegal_transitions(self, call: Call) -> None:
        task = create(call)
        path = f"/tasks/{task['id']}"
        status, _, body = call("POST", f"{path}/complete")
        assert (status, body["type"]) == (409, "urn:tasks:problem:invalid-transition")
        assert call("PATCH", path, body={"status": "in_progress"})[0] == 200
        status, _, body = call("POST", f"{path}/complete")
        assert (status, body["status"]) == (200, "completed")
        assert call("POST", f"{path}/complete", body={"force": True})[0] == 422

    def test_empty_patch_is_422(self, call: Call) -> None:
        task = create(call)
        assert call("PATCH", f"/tasks/{task['id']}", body={})[0] == 422


class TestDelete:
    def test_delete_then_404(self, call: Call) -> None:
        task = create(call)
        path = f"/tasks/{task['id']}"
        assert call("DELETE", path, headers={"If-Match": '"2"'})[0] == 412
        assert call("DELETE", path)[0] == 204
        assert call("GET", path)[0] == 404
        assert call("DELETE", path)[0] == 404


class TestAttachments:
    def test_presigned_upload_and_download(self, call: Call, fakes: Fakes) -> None:
        task = create(call)
        status, headers, body = call(
            "POST",
            f"/tasks/{task['id']}/attachments",
            body={"filename": "notes.txt", "contentType": "text/plain", "size": 5},
        )
        assert status == 201
        attachment_id = body["attachment"]["id"]
        assert headers["location"] == f"/tasks/{task['id']}/attachments/{attachment_id}"
        fakes.attachments.upload(body["upload"]["fields"]["key"], "text/plain", b"hello")
        status, _, body = call("GET", f"/tasks/{task['id']}/attachments/{attachment_id}")
        assert status == 200
        assert "filename=notes.txt" in body["url"]

    @pytest.mark.parametrize(
        "fields",
        [
            {"filename": "../../etc/passwd", "contentType": "text/plain", "size": 5},
            {"filename": "a.txt", "contentType": "text plain", "size": 5},
            {"filename": "a.txt", "contentType": "text/plain", "size": 0},
            {"filename": "a.txt", "contentType": "text/plain", "size": 10**9},
            {"filename": "a.txt"},
        ],
    )
    def test_bad_attachments_are_422(self, call: Call, fakes: Fakes, fields) -> None:
        task = create(call)
        status, _, _ = call("POST", f"/tasks/{task['id']}/attachments", body=fields)
        assert status == 422
        assert fakes.attachments.uploads == {}


class TestApprovals:
    def test_queue_and_decision(self, call: Call) -> None:
        task = create(call, priority="critical")
        assert task["approval"] == "pending"
        approver = {"user": "bob", "groups": ("approvers", "staff")}
        status, _, page = call("GET", "/approvals", **approver)
        assert (status, [t["id"] for t in page["items"]]) == (200, [task["id"]])
        status, _, body = call(
            "POST", f"/tasks/{task['id']}/approval", body={"decision": "approve"}, **approver
        )
        assert (status, body["approval"], body["approvalDecidedBy"]) == (200, "approved", "bob")
        again = call(
            "POST", f"/tasks/{task['id']}/approval", body={"decision": "reject"}, **approver
        )
        assert again[0] == 404

    def test_rules(self, call: Call) -> None:
        own = create(call, user="bob", priority="high")
        approver = {"user": "bob", "groups": ("approvers",)}
        status, _, _ = call(
            "POST", f"/tasks/{own['id']}/approval", body={"decision": "approve"}, **approver
        )
        assert status == 403
        assert call("GET", "/approvals")[0] == 403
        assert (
            call("GET", "/approvals", query={"cursor": "x", "limit": "5", "x": "1"}, **approver)[0]
            == 400
        )
        status, _, body = call(
            "POST", f"/tasks/{own['id']}/approval", body={"decision": "maybe"}, **approver
        )
        assert (status, body["errors"][0]["field"]) == (422, "decision")


class TestStatsAndHealth:
    def test_stats_follow_events(self, call: Call, fakes: Fakes) -> None:
        task = create(call)
        call("PATCH", f"/tasks/{task['id']}", body={"status": "in_progress"})
        call("POST", f"/tasks/{task['id']}/complete")
        for event in fakes.tasks.events():
            services.record_stats(fakes.stats, event)
        status, _, body = call("GET", "/stats")
        assert status == 200
        assert body["byStatus"]["completed"] == 1
        assert body["completedThisWeek"] == 1

    def test_health_needs_no_token(self, call: Call) -> None:
        assert call("GET", "/health", user=None)[0] == 200


class TestRouting:
    def test_unknown_route_404_and_wrong_method_405(self, call: Call) -> None:
        status, _, body = call("GET", "/nope", route_key="$default")
        assert (status, body["type"]) == (404, "urn:tasks:problem:no-route")
        status, headers, _ = call("DELETE", "/tasks", route_key="$default")
        assert (status, headers["allow"]) == (405, "GET, POST")

    @pytest.mark.parametrize("task_id", ["\u00a6", "a\x0cb", "x#y", "emoji\U0001f600"])
    def test_ids_the_resolver_cannot_match_are_404_not_405(self, call: Call, task_id: str) -> None:
        status, _, body = call("GET", f"/tasks/{task_id}", route_key="GET /tasks/{taskId}")
        assert (status, body["type"]) == (404, "urn:tasks:problem:not-found")
        status, _, _ = call("POST", f"/tasks/{task_id}/complete", route_key="$default")
        assert status == 404

    def test_every_manifest_route_is_implemented(self) -> None:
        assert {r.key for r in API.routes} == set(http_api.IMPLEMENTATIONS)


class TestExports:
    def test_request_is_202_with_location_and_no_body(self, call: Call, fakes: Fakes) -> None:
        status, headers, body = call("POST", "/exports")
        assert status == 202
        assert headers["location"] == f"/exports/{body['id']}"
        assert headers["cache-control"] == "no-store"
        assert body["status"] == "requested"
        assert body["download"] is None
        ((owner, export_id),) = fakes.exports.exports
        assert (owner, export_id) == ("alice", body["id"])  # the owner is the token's subject

    @pytest.mark.parametrize(
        ("kwargs", "status", "kind"),
        [
            ({"body": {"ownerId": "mallory"}}, 422, "invalid-input"),
            ({"raw_body": "{", "headers": {"content-type": "application/json"}}, 400, ""),
            ({"raw_body": "{}", "headers": {"content-type": "text/plain"}}, 415, ""),
            ({"raw_body": "x" * 3000, "headers": {"content-type": "application/json"}}, 413, ""),
            ({"user": None}, 401, "unauthenticated"),
        ],
    )
    def test_bad_requests_are_4xx_and_record_nothing(
        self, call: Call, fakes: Fakes, kwargs: dict[str, Any], status: int, kind: str
    ) -> None:
        got, _, body = call("POST", "/exports", **kwargs)
        assert got == status
        assert body["type"].endswith(kind)
        assert fakes.exports.exports == {}

    def test_progress_then_download_link(self, call: Call, fakes: Fakes) -> None:
        for n in range(3):
            create(call, title=f"t{n}")
        _, _, requested = call("POST", "/exports")
        status, _, shown = call("GET", f"/exports/{requested['id']}")
        assert (status, shown) == (200, requested)
        fakes.export_service.run_export(UserId("alice"), ExportId(requested["id"]))
        status, headers, done = call("GET", f"/exports/{requested['id']}")
        assert (status, done["status"], done["itemsWritten"]) == (200, "completed", 3)
        assert done["download"]["url"].startswith("memory://objects/exports/alice/")
        assert done["download"]["expiresAt"] == "2030-01-01T09:15:00.000000Z"
        assert headers["cache-control"] == "no-store"

    @pytest.mark.parametrize("who", ["mallory", "bob"])
    def test_other_users_get_404(self, call: Call, who: str) -> None:
        _, _, requested = call("POST", "/exports")
        status, _, body = call("GET", f"/exports/{requested['id']}", user=who)
        assert (status, body["type"]) == (404, "urn:tasks:problem:not-found")

    @pytest.mark.parametrize("export_id", ["nope", "01JD00000000000000000000AB", "x" * 300])
    def test_unknown_ids_are_404(self, call: Call, export_id: str) -> None:
        assert call("GET", f"/exports/{export_id}")[0] == 404

    def test_storage_down_is_503(self, call: Call, containers) -> None:
        class Down(InMemoryExportRepository):
            def add(self, *_: Any, **__: Any) -> None:
                raise Unavailable("the task store is unavailable (no connection)")

        container = containers[-1]
        assert container.exports is not None
        exports = attrs.evolve(container.exports, exports=Down())
        containers.append(attrs.evolve(container, exports=exports))
        status, headers, _ = call("POST", "/exports")
        assert (status, headers["retry-after"]) == (503, "1")

    def test_a_container_without_exports_is_a_500_not_a_crash(self, call: Call, containers) -> None:
        containers.append(attrs.evolve(containers[-1], exports=None))
        status, _, body = call("POST", "/exports")
        assert (status, body["type"]) == (500, "urn:tasks:problem:internal")


def with_tasks(containers: list[bootstrap.Container], tasks: Any) -> None:
    container = containers[-1]
    service = attrs.evolve(container.service, tasks=tasks)
    containers.append(attrs.evolve(container, service=service))


class TestFailures:
    def test_storage_down_is_503_with_retry_after(self, call: Call, containers) -> None:
        class Down(InMemoryTaskRepository):
            def get(self, *_: Any, **__: Any) -> None:
                raise Unavailable("the task store is unavailable (no connection)")

        with_tasks(containers, Down())
        status, headers, _ = call("GET", "/tasks/01JD00000000000000000000AB")
        assert (status, headers["retry-after"]) == (503, "1")

    def test_unexpected_errors_are_500_problems_without_traces(
        self, call: Call, containers
    ) -> None:
        class Broken(InMemoryTaskRepository):
            def list_owned(self, *_: Any, **__: Any) -> Any:
                raise RuntimeError("secret internals")

        with_tasks(containers, Broken())
        status, _, body = call("GET", "/tasks")
        assert status == 500
        assert "secret" not in json.dumps(body)


class TestGroups:
    @pytest.mark.parametrize(
        ("claim", "groups"),
        [
            ("[approvers]", {"approvers"}),
            ("[approvers staff]", {"approvers", "staff"}),
            ("[]", set()),
            (["approvers"], {"approvers"}),
            (None, set()),
            ("approvers,staff", {"approvers", "staff"}),
        ],
    )
    def test_parse_groups(self, claim: Any, groups: set[str]) -> None:
        assert http_api.parse_groups(claim) == groups


def test_container_needs_the_cursor_secrets_arn() -> None:
    with pytest.raises(RuntimeError, match="CURSOR_SECRET_ARN is not set"):
        bootstrap.build_container(
            Settings.from_environment({"TABLE_NAME": "t", "BUCKET_NAME": "b"})
        )


def test_base64_helper_matches_aws() -> None:
    assert base64.b64encode(b"{}").decode() == "e30="
    assert attrs.has(bootstrap.Container)
