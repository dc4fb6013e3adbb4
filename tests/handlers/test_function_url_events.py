"""The API handler behind its Function URL: an event shaped as Lambda sends it for a URL with
auth type NONE (`events/function_url_get.json`, after the request payload in AWS's "Invoking
Lambda function URLs", and Powertools' own fixture: `accountId` "anonymous", `routeKey`
"$default", no authorizer). With no authorizer in the event, the function verifies the bearer
token itself (`handlers.auth`); with one (API Gateway's), it never verifies twice."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from handlers import bootstrap, http_api
from handlers.auth import StaticKeys, Verifier
from local_platform.auth import DevIssuer
from local_platform.gateway.payload import http_event
from local_platform.lambda_runtime import handler_context
from stack.manifest import API
from taskcore.testing import Fakes, in_memory_service
from tests.e2e.tokens import unauthorized_headers_for

EVENT = json.loads((Path(__file__).parent / "events" / "function_url_get.json").read_text())


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(key_dir=tmp_path_factory.mktemp("issuer"))


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(key_dir=tmp_path_factory.mktemp("other"))


class CountingVerifier:
    def __init__(self, verifier: Verifier) -> None:
        self.verifier, self.calls = verifier, 0

    def verify(self, token: str) -> dict[str, Any]:
        self.calls += 1
        return self.verifier.verify(token)


@pytest.fixture
def fakes() -> Fakes:
    return in_memory_service()


@pytest.fixture
def verifier(issuer: DevIssuer) -> CountingVerifier:
    return CountingVerifier(
        Verifier(issuer=issuer.issuer, audience=issuer.audience, keys=StaticKeys(issuer.jwks))
    )


@pytest.fixture
def handle(fakes: Fakes, verifier: CountingVerifier, monkeypatch: pytest.MonkeyPatch) -> Any:
    container = bootstrap.Container(
        service=fakes.service,
        clock=fakes.clock,
        verifier=lambda: verifier,  # type: ignore[arg-type,return-value]
    )
    monkeypatch.setattr(http_api, "app", http_api.create_app(lambda: container))

    def invoke(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        response = http_api.handler(event, handler_context(API))
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        body = response.get("body") or ""
        return response["statusCode"], headers, json.loads(body) if body else None

    return invoke


def url_event(authorization: str | None) -> dict[str, Any]:
    event = copy.deepcopy(EVENT)
    if authorization is not None:
        event["headers"]["authorization"] = authorization
    return event


def test_a_verified_token_reads_its_owners_tasks(
    handle: Any, fakes: Fakes, issuer: DevIssuer, verifier: CountingVerifier
) -> None:
    from taskcore.commands import CreateTask
    from taskcore.testing import principal

    for title in ("one", "two", "three"):
        fakes.service.create_task(principal("alice"), CreateTask(title=title))
    fakes.service.create_task(principal("bob"), CreateTask(title="bob's"))
    status, _, body = handle(url_event(f"Bearer {issuer.mint('alice')}"))
    assert status == 200
    assert [t["title"] for t in body["items"]] == ["three", "two"]
    assert body["nextCursor"]
    assert verifier.calls == 1


def test_no_token_is_a_401_problem(handle: Any) -> None:
    status, headers, body = handle(url_event(None))
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert headers["www-authenticate"] == "Bearer"
    assert body["type"] == "urn:tasks:problem:unauthenticated"


def test_every_refusable_token_is_a_401_problem(
    handle: Any, issuer: DevIssuer, other: DevIssuer
) -> None:
    for kind, headers in unauthorized_headers_for(issuer, other).items():
        authorization = None if headers is None else headers["Authorization"]
        status, response_headers, body = handle(url_event(authorization))
        assert status == 401, kind
        assert body["type"] == "urn:tasks:problem:unauthenticated", kind
        assert response_headers["www-authenticate"].startswith("Bearer"), kind


def test_an_api_gateway_event_is_not_verified_again(
    handle: Any, verifier: CountingVerifier
) -> None:
    """The authorizer's claims are trusted as they come; the token is not even looked at."""
    event = http_event("GET", "/tasks", user="alice", route_key="GET /tasks")
    event["headers"]["authorization"] = "Bearer not-a-token"
    status, _, _ = handle(event)
    assert status == 200
    assert verifier.calls == 0


def test_a_function_without_an_issuer_refuses_url_requests(
    fakes: Fakes, issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = bootstrap.Container(service=fakes.service, clock=fakes.clock)
    monkeypatch.setattr(http_api, "app", http_api.create_app(lambda: container))
    response = http_api.handler(url_event(f"Bearer {issuer.mint('alice')}"), handler_context(API))
    assert response["statusCode"] == 401


def test_health_needs_no_token_through_the_url(handle: Any) -> None:
    event = url_event(None)
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/health"
    event.pop("queryStringParameters")
    event["rawQueryString"] = ""
    status, _, body = handle(event)
    assert status == 200
    assert body["status"] == "ok"
