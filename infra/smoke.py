"""`make smoke STACK=dev`: a short check of a deployed stack, as a user would make it.

1. Reads the stack's outputs (`pulumi stack output --json`).
2. Creates two throw-away Cognito users in the stack's pool (an owner, and an approver in the
   `approvers` group) with random passwords, and signs both in with SRP, the only flow the app
   client allows (pycognito); the API gets their access tokens.
3. Over HTTPS: `GET /health`; creates a high-priority task (which asks for approval); the
   approver finds it in `GET /approvals` and approves it; the owner sees it approved; the
   approval workflow's execution for that task succeeds (Step Functions), which proves the
   stream, the bus, the consumers and `SendTaskSuccess` all work; the task is deleted.
4. Deletes the two users, whatever happened.

It needs the operator's AWS credentials (Cognito admin calls, Step Functions reads) and the
Pulumi CLI logged in to the stack's backend. Nothing here imports Pulumi: the same round trip
runs in the tests against the local platform.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import boto3
import httpx

APPROVERS = "approvers"
Say = Callable[[str], None]


class SmokeFailed(Exception):
    """A step of the smoke check did not do what it should."""


@attrs.frozen
class Target:
    """Where the round trip runs: the API, two users' tokens, and the workflow to watch."""

    api_url: str
    owner_token: str
    approver_token: str
    stepfunctions: Any  # a boto3 Step Functions client
    state_machine_arn: str


def eventually(check: Callable[[], Any], what: str, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        if result := check():
            return result
        if time.monotonic() > deadline:
            raise SmokeFailed(f"{what}: not within {seconds:.0f} s")
        time.sleep(1)


def _expect(response: httpx.Response, status: int, what: str) -> Any:
    if response.status_code != status:
        raise SmokeFailed(f"{what}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


def workflow_succeeded(target: Target, task_id: str) -> bool:
    """Whether the approval workflow's execution for `task_id` succeeded (its input is the
    `ApprovalRequested` event, which names the task)."""
    pages = target.stepfunctions.get_paginator("list_executions").paginate(
        stateMachineArn=target.state_machine_arn,
        statusFilter="SUCCEEDED",
        PaginationConfig={"MaxItems": 100},
    )
    for page in pages:
        for run in page["executions"]:
            described = target.stepfunctions.describe_execution(executionArn=run["executionArn"])
            if task_id in described.get("input", ""):
                return True
    return False


def round_trip(target: Target, say: Say = print, seconds: float = 120.0) -> str:
    """Health, create, approve, see it approved, see the workflow succeed, delete. Returns the
    task's id."""

    def client(token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=target.api_url, headers=headers, timeout=30)

    with client(None) as anyone, client(target.owner_token) as owner:
        started = time.monotonic()
        _expect(anyone.get("/health"), 200, "GET /health")
        say(f"ok  GET /health ({(time.monotonic() - started) * 1000:.0f} ms)")
        _expect(anyone.get("/tasks"), 401, "GET /tasks without a token")
        say("ok  GET /tasks without a token is 401")
        task = _expect(
            owner.post("/tasks", json={"title": "smoke check", "priority": "high"}),
            201,
            "POST /tasks",
        )
        task_id: str = task["id"]
        if task.get("approval") != "pending":
            raise SmokeFailed(f"a high-priority task should await approval: {task}")
        say(f"ok  POST /tasks -> {task_id}, approval pending")
        try:
            with client(target.approver_token) as approver:
                eventually(
                    lambda: any(
                        t["id"] == task_id
                        for t in _expect(
                            approver.get("/approvals", params={"limit": "100"}),
                            200,
                            "GET /approvals",
                        )["items"]
                    ),
                    "the task in the approver's queue",
                    seconds,
                )
                say("ok  GET /approvals lists it for the approver")
                decided = _expect(
                    approver.post(f"/tasks/{task_id}/approval", json={"decision": "approve"}),
                    200,
                    "POST /tasks/{id}/approval",
                )
                if decided.get("approval") != "approved":
                    raise SmokeFailed(f"the decision was not recorded: {decided}")
                say("ok  POST /tasks/{id}/approval approve -> approved")
            seen = _expect(owner.get(f"/tasks/{task_id}"), 200, "GET /tasks/{id}")
            if seen.get("approval") != "approved":
                raise SmokeFailed(f"the owner does not see the approval: {seen}")
            say("ok  GET /tasks/{id}: the owner sees it approved")
            eventually(
                lambda: workflow_succeeded(target, task_id),
                "the approval workflow's execution to succeed",
                seconds,
            )
            say("ok  the approval workflow's execution succeeded (stream, bus, consumers)")
        finally:
            owner.delete(f"/tasks/{task_id}")
        _expect(owner.get(f"/tasks/{task_id}"), 404, "GET /tasks/{id} after DELETE")
        say("ok  DELETE /tasks/{id}")
    return task_id


# -- against a deployed stack -------------------------------------------------------------------


def stack_outputs(stack: str) -> dict[str, Any]:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise SmokeFailed("the Pulumi CLI is not on PATH (it reads the stack's outputs)")
    result = subprocess.run(  # noqa: S603 - our own command line, no shell
        [pulumi, "stack", "output", "--json", "--stack", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SmokeFailed(f"pulumi stack output --stack {stack}: {result.stderr.strip()}")
    outputs: dict[str, Any] = json.loads(result.stdout)
    return outputs


def _password() -> str:
    """Random, and within the pool's policy (12+ characters, every character class)."""
    return f"Sm0ke-{secrets.token_urlsafe(18)}"


def srp_access_token(cognito: Any, pool_id: str, client_id: str, user: str, password: str) -> str:
    """Sign in with SRP (USER_SRP_AUTH), the app client's only password flow."""
    from pycognito.aws_srp import AWSSRP  # type: ignore[import-untyped]

    srp = AWSSRP(
        username=user, password=password, pool_id=pool_id, client_id=client_id, client=cognito
    )
    tokens = srp.authenticate_user()
    token: str = tokens["AuthenticationResult"]["AccessToken"]
    return token


@contextmanager
def throwaway_users(
    cognito: Any, pool_id: str, client_id: str, say: Say
) -> Iterator[tuple[str, str]]:
    """Two signed-in users (owner, approver): their access tokens; both deleted afterwards."""
    suffix = secrets.token_hex(4)
    users = {
        "owner": f"smoke-owner-{suffix}@example.invalid",
        "approver": f"smoke-approver-{suffix}@example.invalid",
    }
    created: list[str] = []
    try:
        tokens = {}
        for role, user in users.items():
            password = _password()
            cognito.admin_create_user(
                UserPoolId=pool_id,
                Username=user,
                MessageAction="SUPPRESS",
                UserAttributes=[
                    {"Name": "email", "Value": user},
                    {"Name": "email_verified", "Value": "true"},
                ],
            )
            created.append(user)
            cognito.admin_set_user_password(
                UserPoolId=pool_id, Username=user, Password=password, Permanent=True
            )
            if role == "approver":
                cognito.admin_add_user_to_group(
                    UserPoolId=pool_id, Username=user, GroupName=APPROVERS
                )
            tokens[role] = srp_access_token(cognito, pool_id, client_id, user, password)
            say(f"ok  Cognito user {user} signed in (SRP)")
        yield tokens["owner"], tokens["approver"]
    finally:
        for user in created:
            cognito.admin_delete_user(UserPoolId=pool_id, Username=user)
        if created:
            say(f"ok  deleted {len(created)} smoke users")


def check_stack(outputs: Mapping[str, Any], say: Say = print, **clients: Any) -> str:
    """The whole smoke check against a deployed stack's outputs."""
    if not outputs.get("userPoolId"):
        raise SmokeFailed(
            "the stack uses an external issuer (tasks:jwtIssuer): get two tokens from it and "
            "run infra.smoke.round_trip yourself"
        )
    region = outputs["region"]
    cognito = clients.get("cognito") or boto3.client("cognito-idp", region_name=region)
    stepfunctions = clients.get("stepfunctions") or boto3.client(
        "stepfunctions", region_name=region
    )
    with throwaway_users(cognito, outputs["userPoolId"], outputs["userPoolClientId"], say) as (
        owner,
        approver,
    ):
        target = Target(
            api_url=outputs["apiUrl"],
            owner_token=owner,
            approver_token=approver,
            stepfunctions=stepfunctions,
            state_machine_arn=outputs["stateMachineArns"]["approval"],
        )
        return round_trip(target, say)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stack", default="dev", help="the deployed stack to check")
    args = parser.parse_args(argv)
    try:
        check_stack(stack_outputs(args.stack))
    except SmokeFailed as failure:
        print(f"FAILED  {failure}", file=sys.stderr)
        return 1
    print(f"smoke check of stack {args.stack}: passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
