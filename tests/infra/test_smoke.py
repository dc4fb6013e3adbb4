"""`make smoke`: its round trip against the local platform (the same handlers, bus and workflow
as a deployed stack), and its Cognito part (users, SRP sign-in, clean-up) against moto."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra import smoke
from local_platform.process import Platform, start_platform


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    """A platform of this module's own: the moto endpoint is read from its banner, which the
    session platform's output (a bounded buffer) has long scrolled past by the time this runs."""
    running = start_platform("--no-throttle")
    yield running
    assert running.stop() == 0, "\n".join(running.output)


def _moto_stepfunctions(platform: Platform) -> Any:
    return platform.moto_client("stepfunctions")


def test_the_round_trip_passes_on_the_local_platform(platform: Platform) -> None:
    stepfunctions = _moto_stepfunctions(platform)
    (machine,) = stepfunctions.list_state_machines()["stateMachines"]
    target = smoke.Target(
        api_url=platform.url,
        owner_token=platform.token("smoke-owner"),
        approver_token=platform.token("smoke-approver", "approvers"),
        stepfunctions=stepfunctions,
        state_machine_arn=machine["stateMachineArn"],
    )
    said: list[str] = []
    task_id = smoke.round_trip(target, said.append, seconds=60)
    assert said[-1] == "ok  DELETE /tasks/{id}"
    assert any("workflow's execution succeeded" in line for line in said)
    assert smoke.workflow_succeeded(target, task_id)


def test_the_round_trip_fails_loudly_when_the_api_refuses(platform: Platform) -> None:
    target = smoke.Target(
        api_url=platform.url,
        owner_token="not-a-token",
        approver_token="not-a-token",
        stepfunctions=None,
        state_machine_arn="",
    )
    with pytest.raises(smoke.SmokeFailed, match="POST /tasks: 401"):
        smoke.round_trip(target, lambda _: None, seconds=5)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


@mock_aws
def test_throwaway_users_sign_in_with_srp_and_are_deleted() -> None:
    cognito = boto3.client("cognito-idp", region_name="eu-west-1")
    pool = cognito.create_user_pool(PoolName="tasks-dev-users", UsernameAttributes=["email"])
    pool_id = pool["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="tasks-dev-api",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    cognito.create_group(UserPoolId=pool_id, GroupName="approvers")
    said: list[str] = []
    with smoke.throwaway_users(cognito, pool_id, client_id, said.append) as (owner, approver):
        assert _claims(owner)["client_id"] == client_id
        assert _claims(approver)["cognito:groups"] == ["approvers"]
        assert "cognito:groups" not in _claims(owner)
        assert len(cognito.list_users(UserPoolId=pool_id)["Users"]) == 2
    assert cognito.list_users(UserPoolId=pool_id)["Users"] == []
    assert said[-1] == "ok  deleted 2 smoke users"


def test_a_stack_with_an_external_issuer_is_told_what_to_do() -> None:
    with pytest.raises(smoke.SmokeFailed, match="external issuer"):
        smoke.check_stack({"userPoolId": "", "apiUrl": "https://api.example.com"})
