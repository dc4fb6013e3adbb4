"""Events on the local platform: the DynamoDB Local stream feeds the stream function, moto's
EventBridge carries the events to the consumers, and moto's Step Functions executor runs the
real approval workflow, all from plain HTTP calls."""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local_platform.process import Platform, start_platform
from tests.e2e.bus_tap import moto_client
from tests.e2e.polling import eventually


def succeeded_executions(platform: Platform, task_id: str) -> list[dict[str, Any]]:
    """The approval workflow's succeeded executions for one task. Other tests start workflows
    on the same platform: page through them and keep those whose input is this task's event."""
    sfn = moto_client(platform, "stepfunctions")
    (machine,) = sfn.list_state_machines()["stateMachines"]
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=machine["stateMachineArn"], statusFilter="SUCCEEDED"
    )
    described = (
        sfn.describe_execution(executionArn=run["executionArn"])
        for page in pages
        for run in page["executions"]
    )
    return [run for run in described if task_id in run["input"]]


def states_entered(platform: Platform, execution_arn: str) -> list[str]:
    """The states an execution entered, in order (its history on moto's Step Functions)."""
    history = moto_client(platform, "stepfunctions").get_execution_history(
        executionArn=execution_arn
    )["events"]
    return [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]


def queued(approver: httpx.Client) -> list[str]:
    """The ids in the approvers' queue, every page."""
    ids, cursor = [], None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        page = approver.get("/approvals", params=params).json()
        ids += [t["id"] for t in page["items"]]
        cursor = page.get("nextCursor")
        if not cursor:
            return ids


def user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    """This module's own platform: it measures how soon events arrive, so it must not share a
    stream backlog with the other e2e modules (which create hundreds of tasks)."""
    running = start_platform("--no-throttle")
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def quick_expiry() -> Iterator[Platform]:
    """A platform whose approvals expire after 2 s."""
    running = start_platform("--no-throttle", "--approval-timeout", "2")
    yield running
    assert running.stop() == 0


class TestApprovalFlow:
    def test_high_priority_task_waits_for_an_approver(self, platform: Platform) -> None:
        alice, bob = user("alice"), user("bob")
        with platform.client(alice) as owner, platform.client(bob, "approvers") as approver:
            task = owner.post("/tasks", json={"title": "Ship", "priority": "high"}).json()
            assert task["approval"] == "pending"
            start = owner.patch(f"/tasks/{task['id']}", json={"status": "in_progress"})
            assert start.status_code == 409
            queue = approver.get("/approvals", params={"limit": "100"}).json()["items"]
            assert task["id"] in [t["id"] for t in queue]
            decided = approver.post(f"/tasks/{task['id']}/approval", json={"decision": "approve"})
            assert (decided.status_code, decided.json()["approval"]) == (200, "approved")
            started = owner.patch(f"/tasks/{task['id']}", json={"status": "in_progress"})
            assert started.status_code == 200

        (run,) = eventually(lambda: succeeded_executions(platform, task["id"]), 20)
        assert '"approval": "approved"' in run["output"]

    def test_a_leads_high_priority_task_starts_at_once(self, platform: Platform) -> None:
        """The dev stack's rule (`Pulumi.dev.yaml`: "leads: high by leads"): approved by the
        rule as it is created, never in the approvers' queue; its workflow runs the auto path."""
        lee, bob = user("lee"), user("bob")
        with platform.client(lee, "leads") as owner, platform.client(bob, "approvers") as approver:
            task = owner.post("/tasks", json={"title": "Ship", "priority": "high"}).json()
            assert (task["approval"], task["approvalDecidedBy"]) == ("approved", "auto:leads")
            assert task["approvalDecidedAt"] == task["createdAt"]
            started = owner.patch(f"/tasks/{task['id']}", json={"status": "in_progress"})
            assert (started.status_code, started.json()["status"]) == (200, "in_progress")

            (run,) = eventually(lambda: succeeded_executions(platform, task["id"]), 20)
            assert json.loads(run["output"])["decision"] == {
                "approval": "approved",
                "decidedBy": "auto:leads",
                "decidedAt": task["approvalDecidedAt"],
            }
            assert "AutoApproved" in states_entered(platform, run["executionArn"])
            assert "AskApprovers" not in states_entered(platform, run["executionArn"])
            assert task["id"] not in queued(approver)

    def test_a_leads_edit_to_high_priority_is_approved_by_the_rule(
        self, platform: Platform
    ) -> None:
        with platform.client(user("lee"), "leads") as owner:
            task = owner.post("/tasks", json={"title": "Later", "priority": "low"}).json()
            raised = owner.patch(f"/tasks/{task['id']}", json={"priority": "high"}).json()
            assert (raised["approval"], raised["approvalDecidedBy"]) == ("approved", "auto:leads")
            started = owner.patch(f"/tasks/{task['id']}", json={"status": "in_progress"})
            assert started.status_code == 200
        (run,) = eventually(lambda: succeeded_executions(platform, task["id"]), 20)
        assert "AutoApproved" in states_entered(platform, run["executionArn"])

    def test_outside_the_group_a_high_priority_task_waits_for_an_approver(
        self, platform: Platform
    ) -> None:
        sam, bob = user("sam"), user("bob")
        with platform.client(sam, "staff") as owner, platform.client(bob, "approvers") as approver:
            task = owner.post("/tasks", json={"title": "Ship", "priority": "high"}).json()
            assert (task["approval"], task["approvalDecidedBy"]) == ("pending", None)
            assert (
                owner.patch(f"/tasks/{task['id']}", json={"status": "in_progress"}).status_code
                == 409
            )
            assert task["id"] in queued(approver)
            decided = approver.post(f"/tasks/{task['id']}/approval", json={"decision": "approve"})
            assert decided.json()["approvalDecidedBy"] == bob
            assert (
                owner.patch(f"/tasks/{task['id']}", json={"status": "in_progress"}).status_code
                == 200
            )
        (run,) = eventually(lambda: succeeded_executions(platform, task["id"]), 20)
        assert [
            s
            for s in states_entered(platform, run["executionArn"])
            if s in ("AskApprovers", "RecordDecision", "Complete", "AutoApproved")
        ] == ["AskApprovers", "RecordDecision", "Complete"]

    def test_every_approval_runs_its_own_workflow(self, platform: Platform) -> None:
        with (
            platform.client(user("alice")) as owner,
            platform.client(user("bob"), "approvers") as approver,
        ):
            tasks = [
                owner.post("/tasks", json={"title": f"t{n}", "priority": "high"}).json()
                for n in range(3)
            ]
            for task in tasks:
                decided = approver.post(
                    f"/tasks/{task['id']}/approval", json={"decision": "approve"}
                )
                assert decided.status_code == 200
        for task_id in [task["id"] for task in tasks]:
            (run,) = eventually(functools.partial(succeeded_executions, platform, task_id), 20)
            assert '"approval": "approved"' in run["output"]

    def test_stats_reflect_a_completion_within_five_seconds(self, platform: Platform) -> None:
        with platform.client(user("carol")) as client:
            task = client.post("/tasks", json={"title": "quick"}).json()
            client.patch(f"/tasks/{task['id']}", json={"status": "in_progress"})
            assert client.post(f"/tasks/{task['id']}/complete").status_code == 200
            began = time.monotonic()
            # Three events move stats here, delivered concurrently and in any order:
            # TaskCreated and two TaskUpdated (counts by status), TaskCompleted (this week,
            # median). All must be in within 5 s.
            expected = {"pending": 0, "in_progress": 0, "completed": 1}
            stats = eventually(
                lambda: (
                    (s := client.get("/stats").json())["completedThisWeek"] == 1
                    and s["byStatus"] == expected
                    and s
                ),
                5,
            )
            retried = [line for line in platform.output if "will be retried" in line]
            assert stats, f"stats did not reflect the completion within 5 s; {retried}"
            assert time.monotonic() - began < 5

    def test_deleting_a_task_removes_its_attachments(self, platform: Platform) -> None:
        owner = user("dave")
        with platform.client(owner) as client:
            task = client.post("/tasks", json={"title": "with file"}).json()
            created = client.post(
                f"/tasks/{task['id']}/attachments",
                json={"filename": "a.txt", "contentType": "text/plain", "size": 5},
            ).json()
            upload = created["upload"]
            with httpx.Client(trust_env=False) as s3:
                sent = s3.post(upload["url"], data=upload["fields"], files={"file": b"hello"})
            assert sent.status_code in (200, 204)
            s3_client = moto_client(platform, "s3")
            prefix = f"{owner}/{task['id']}/"

            def keys() -> list[str]:
                listed = s3_client.list_objects_v2(Bucket="tasks-local-attachments", Prefix=prefix)
                return [o["Key"] for o in listed.get("Contents", [])]

            assert len(keys()) == 1
            assert client.delete(f"/tasks/{task['id']}").status_code == 204
            assert eventually(lambda: not keys(), 10), "attachments still there"


class TestApprovalTimeout:
    def test_an_undecided_approval_expires_and_cancels_the_task(
        self, quick_expiry: Platform
    ) -> None:
        with quick_expiry.client(user("erin")) as client:
            task = client.post("/tasks", json={"title": "slow", "priority": "critical"}).json()
            expired = eventually(
                lambda: (
                    (t := client.get(f"/tasks/{task['id']}").json())["approval"] == "expired" and t
                ),
                20,
            )
            assert expired, "the approval did not expire"
            assert expired["status"] == "cancelled"
            assert expired["approvalDecidedAt"] is not None


class TestExport:
    TASKS = 5000

    # 5,000 quick creates, then the export: its `ExportRequested` event comes from the stream
    # behind all of theirs, so this also shows the stream and the bus keep up with the load.
    def test_export_downloads_as_exactly_the_stored_tasks(self, platform: Platform) -> None:
        from concurrent.futures import ThreadPoolExecutor

        owner = user("frank")
        clients = threading.local()

        def create(n: int) -> dict[str, Any]:
            if not hasattr(clients, "client"):  # one keep-alive connection per thread
                clients.client = platform.client(owner)
            response = clients.client.post("/tasks", json={"title": f"export {n}"})
            # On a failure, what the platform said about it (the timeout or the error).
            said = [line for line in list(platform.output)[-400:] if "api" in line][-8:]
            assert response.status_code == 201, (response.status_code, response.text, said)
            return dict(response.json())

        with ThreadPoolExecutor(16) as pool:
            created = list(pool.map(create, range(self.TASKS)))
        with platform.client(owner) as client:
            requested = client.post("/exports")
            assert requested.status_code == 202
            location = requested.headers["location"]
            done = eventually(
                lambda: (
                    (e := client.get(location).json())["status"] in ("completed", "failed") and e
                ),
                120,
            )
            assert done, "the export did not finish"
            assert (done["status"], done["itemsWritten"]) == ("completed", self.TASKS)
            with httpx.Client(trust_env=False, timeout=60) as s3:
                body = s3.get(done["download"]["url"])
            assert body.status_code == 200
        lines = [json.loads(line) for line in body.text.splitlines()]
        assert sorted(lines, key=lambda t: t["id"]) == sorted(created, key=lambda t: t["id"])


def subscribe_queue(platform: Platform, name: str, filter_policy: dict[str, Any]) -> str:
    """An SQS queue on the platform's moto, subscribed to the notifications topic with a filter
    policy, as an operator would subscribe an endpoint; its URL."""
    sns, sqs = moto_client(platform, "sns"), moto_client(platform, "sqs")
    [topic] = [
        t["TopicArn"]
        for t in sns.list_topics()["Topics"]
        if t["TopicArn"].endswith(":tasks-local-notifications")
    ]
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn["QueueArn"],
        Attributes={"FilterPolicy": json.dumps(filter_policy), "RawMessageDelivery": "true"},
    )
    return str(url)


def received(platform: Platform, queue_url: str) -> list[dict[str, Any]]:
    sqs = moto_client(platform, "sqs")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


class TestNotifications:
    def test_a_request_notifies_the_approvers_and_the_decision_the_owner(
        self, platform: Platform
    ) -> None:
        alice, bob = user("alice"), user("bob")
        owners = subscribe_queue(platform, f"owner-{alice}", {"recipient": [f"user:{alice}"]})
        with platform.client(alice) as owner, platform.client(bob, "approvers") as approver:
            task = owner.post("/tasks", json={"title": "Ship ✓", "priority": "high"}).json()

            def requested() -> dict[str, Any] | None:
                page = approver.get("/notifications", params={"inbox": "approvers"}).json()
                mine = [n for n in page["items"] if n["taskId"] == task["id"]]
                return mine[0] if mine else None

            request = eventually(requested, 20)
            assert request is not None
            assert (request["kind"], request["ownerId"], request["title"]) == (
                "approval_requested",
                alice,
                "Ship ✓",
            )
            assert owner.get("/notifications", params={"inbox": "approvers"}).status_code == 403
            decided = approver.post(f"/tasks/{task['id']}/approval", json={"decision": "approve"})
            assert decided.status_code == 200

            def told() -> list[dict[str, Any]]:
                return [
                    n
                    for n in owner.get("/notifications").json()["items"]
                    if n["taskId"] == task["id"]
                ]

            [note] = eventually(told, 20)
            assert (note["kind"], note["outcome"], note["decidedBy"]) == (
                "approval_decided",
                "approved",
                bob,
            )
            with platform.client(user("mallory")) as mallory:
                assert mallory.get("/notifications").json()["items"] == []
                assert mallory.post(f"/notifications/{note['id']}/read").status_code == 404
            read = owner.post(f"/notifications/{note['id']}/read")
            assert (read.status_code, read.json()["id"]) == (200, note["id"])
            assert read.json()["readAt"] is not None
            assert told()[0]["readAt"] == read.json()["readAt"]

        # The topic got the same notification once, filtered to its recipient.
        published = eventually(lambda: received(platform, owners), 10)
        assert published == [note]
