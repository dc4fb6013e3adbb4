"""The local gateway behaves like API Gateway HTTP API (payload 2.0) with a JWT authorizer.

Driven in-process through `starlette.testclient.TestClient`, against handlers in
`tests.e2e.fake_handlers` that echo the event, raise, or answer in the ways API Gateway maps.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import stat
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import jwt
import pytest
from starlette.testclient import TestClient

from local_platform import auth
from local_platform.auth import DevIssuer, Unauthorized
from local_platform.gateway import MAX_PAYLOAD_BYTES, Gateway, build_app
from local_platform.gateway.app import _problem_detail
from local_platform.gateway.payload import stringify_claim
from local_platform.gateway.responses import HttpResponse
from local_platform.gateway.routes import decode_path
from local_platform.lambda_runtime import LambdaContext, invoke_handler
from local_platform.meter import Meter, read_records
from stack import access_log
from stack.config import StackConfig
from stack.manifest import Function, Route
from tests.e2e.fake_handlers import PNG
from tests.e2e.tokens import claims_for, private_key, unauthorized_headers_for

ORIGIN = "http://localhost:3000"  # allowed by Pulumi.dev.yaml
BASE_URL = "http://127.0.0.1:8000"
CLIENT_IP = "203.0.113.7"
UNAUTHORIZED = b'{"message":"Unauthorized"}'


def fake(name: str, *routes: Route, timeout_s: int = 10) -> Function:
    return Function(
        name=name,
        handler=f"tests.e2e.fake_handlers:{name}",
        description=f"test handler {name}",
        routes=routes,
        memory_mb=1024,
        timeout_s=timeout_s,
    )


TASK = "/tasks/{taskId}"
ECHO = fake(
    "echo",
    Route("GET", "/health", authorized=False),
    Route("GET", "/tasks"),
    Route("POST", "/tasks"),
    Route("GET", "/tasks/mine"),
    Route("GET", TASK),
    Route("PUT", TASK),
    Route("POST", f"{TASK}/complete"),
    Route("GET", f"{TASK}/attachments/{{attachmentId}}"),
    Route("GET", "/files/{path+}", authorized=False),
)
FUNCTIONS = (
    ECHO,  # first with routes: the $default route's function
    fake("boom", Route("GET", "/boom", authorized=False)),
    fake("no_status", Route("GET", "/no-status", authorized=False)),
    fake("plain_string", Route("GET", "/plain-string", authorized=False)),
    fake("binary", Route("GET", "/binary", authorized=False)),
    fake("own_cors", Route("GET", "/own-cors", authorized=False)),
    fake("untyped", Route("GET", "/untyped", authorized=False)),
    fake("bad_status", Route("GET", "/bad-status", authorized=False)),
    fake("not_json", Route("GET", "/not-json", authorized=False)),
    fake("slow", Route("GET", "/slow", authorized=False), timeout_s=1),
)

# An HTTP API payload 2.0 event as AWS sends it: the structure of the AWS docs' example
# ("Create AWS Lambda proxy integrations for HTTP APIs", format 2.0) for a JWT-authorized route
# (no mTLS `authentication`, no Lambda/IAM authorizer, no stage variables: this API has none),
# with headers, cookies and ids shaped like a live capture (x-forwarded-*, x-amzn-trace-id,
# repeated headers joined with commas, the Cookie header moved to `cookies`).
AWS_SAMPLE_EVENT: dict[str, Any] = {
    "version": "2.0",
    "routeKey": "GET /tasks/{taskId}",
    "rawPath": "/tasks/01JD0X7E5Z",
    "rawQueryString": "parameter1=value1&parameter1=value2&parameter2=value",
    "cookies": ["session=abc123", "theme=dark"],
    "headers": {
        "accept": "*/*",
        "authorization": "Bearer eyJraWQiOi...",
        "header2": "value1,value2",
        "host": "id.execute-api.us-east-1.amazonaws.com",
        "user-agent": "curl/8.7.1",
        "x-amzn-trace-id": "Root=1-6a5145a9-1bae89e2512ec92d5d9438a0",
        "x-forwarded-for": "192.0.2.1",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    },
    "queryStringParameters": {"parameter1": "value1,value2", "parameter2": "value"},
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "api-id",
        "authorizer": {
            "jwt": {
                "claims": {
                    "aud": "client-id",
                    "cognito:groups": "[approvers admins]",
                    "exp": "1583352238",
                    "iat": "1583348638",
                    "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example",
                    "sub": "alice",
                    "token_use": "id",
                },
                "scopes": None,
            }
        },
        "domainName": "id.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "id",
        "http": {
            "method": "GET",
            "path": "/tasks/01JD0X7E5Z",
            "protocol": "HTTP/1.1",
            "sourceIp": "192.0.2.1",
            "userAgent": "curl/8.7.1",
        },
        "requestId": "ATfSmjLgPHcESJw=",
        "routeKey": "GET /tasks/{taskId}",
        "stage": "$default",
        "time": "12/Mar/2020:19:03:58 +0000",
        "timeEpoch": 1583348638390,
    },
    "pathParameters": {"taskId": "01JD0X7E5Z"},
    "isBase64Encoded": False,
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(key_dir=tmp_path_factory.mktemp("issuer"))


@pytest.fixture(scope="session")
def other_issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    """Same issuer URL and audience, another key pair."""
    return DevIssuer(key_dir=tmp_path_factory.mktemp("other-issuer"))


@pytest.fixture(scope="session")
def config() -> StackConfig:
    return StackConfig.from_stack_file("dev")


def make_client(app: Gateway) -> TestClient:
    return TestClient(app, base_url=BASE_URL, client=(CLIENT_IP, 50000))


@pytest.fixture
def app(config: StackConfig, issuer: DevIssuer) -> Gateway:
    return build_app(FUNCTIONS, config, issuer, rate=1000, burst=1000)


@pytest.fixture
def client(app: Gateway) -> Iterator[TestClient]:
    with make_client(app) as test_client:
        yield test_client


@pytest.fixture
def token(issuer: DevIssuer) -> str:
    return issuer.mint("alice", ["approvers", "admins"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def echoed(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    event: dict[str, Any] = response.json()["event"]
    return event


# --- the event ------------------------------------------------------------------------------


def test_event_has_the_shape_of_an_aws_event(client: TestClient, token: str) -> None:
    started_ms = int(time.time() * 1000)
    response = client.get(
        "/tasks/01JD0X7E5Z?parameter1=value1&parameter1=value2&parameter2=value",
        headers=[
            ("Authorization", f"Bearer {token}"),
            ("Accept", "*/*"),
            ("Header2", "value1"),
            ("Header2", "value2"),
            ("Cookie", "session=abc123; theme=dark"),
            ("User-Agent", "curl/8.7.1"),
        ],
    )
    event = echoed(response)
    sample = AWS_SAMPLE_EVENT

    # Same fields, same types, at every level.
    assert list(event) == list(sample)
    assert set(event["requestContext"]) == set(sample["requestContext"])
    assert set(event["requestContext"]["http"]) == set(sample["requestContext"]["http"])
    assert set(event["requestContext"]["authorizer"]) == {"jwt"}
    assert set(event["requestContext"]["authorizer"]["jwt"]) == {"claims", "scopes"}
    for key, value in sample.items():
        assert type(event[key]) is type(value), key
    for key, value in sample["requestContext"].items():
        assert type(event["requestContext"][key]) is type(value), key
    for key, value in sample["requestContext"]["http"].items():
        assert type(event["requestContext"]["http"][key]) is type(value), key
    assert set(sample["headers"]) <= set(event["headers"])

    # Same values where the request is the same.
    for key in ("version", "routeKey", "rawPath", "rawQueryString", "cookies"):
        assert event[key] == sample[key], key
    assert event["queryStringParameters"] == sample["queryStringParameters"]
    assert event["pathParameters"] == sample["pathParameters"]
    assert event["isBase64Encoded"] is False
    assert "body" not in event  # a GET has none
    assert "stageVariables" not in event

    headers = event["headers"]
    assert headers["header2"] == "value1,value2"
    assert headers["user-agent"] == "curl/8.7.1"
    assert headers["accept"] == "*/*"
    assert headers["authorization"] == f"Bearer {token}"
    assert "cookie" not in headers
    assert "connection" not in headers  # hop-by-hop: consumed by the gateway
    assert all(name == name.lower() for name in headers)
    assert headers["x-forwarded-for"] == CLIENT_IP
    assert headers["x-forwarded-port"] == "8000"
    assert headers["x-forwarded-proto"] == "http"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", headers["x-amzn-trace-id"])

    context = event["requestContext"]
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == "local"
    assert context["domainName"] == "127.0.0.1"
    assert context["domainPrefix"] == "127"
    assert context["routeKey"] == "GET /tasks/{taskId}"
    assert context["stage"] == "$default"
    assert context["http"] == {
        "method": "GET",
        "path": "/tasks/01JD0X7E5Z",
        "protocol": "HTTP/1.1",
        "sourceIp": CLIENT_IP,
        "userAgent": "curl/8.7.1",
    }
    assert re.fullmatch(r"[A-Za-z0-9+/]{15}=", context["requestId"])
    assert response.headers["apigw-requestid"] == context["requestId"]
    assert started_ms <= context["timeEpoch"] <= int(time.time() * 1000)
    expected_time = time.strftime(
        "%d/%b/%Y:%H:%M:%S +0000", time.gmtime(context["timeEpoch"] / 1000)
    )
    assert context["time"] == expected_time
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["time"])
    assert context["authorizer"]["jwt"]["scopes"] is None


def test_request_ids_are_unique(client: TestClient) -> None:
    ids = {client.get("/health").headers["apigw-requestid"] for _ in range(20)}
    assert len(ids) == 20


def test_claims_arrive_as_strings_and_groups_as_a_bracketed_list(
    client: TestClient, issuer: DevIssuer
) -> None:
    token = issuer.mint("alice", ["approvers", "admins"], email_verified=True, score=1.5)
    claims = echoed(client.get("/tasks", headers=bearer(token)))["requestContext"]["authorizer"][
        "jwt"
    ]["claims"]
    decoded = jwt.decode(token, options={"verify_signature": False})
    assert claims["cognito:groups"] == "[approvers admins]"
    assert claims["exp"] == str(decoded["exp"])
    assert claims["iat"] == str(decoded["iat"])
    assert claims["nbf"] == str(decoded["nbf"])
    assert claims["email_verified"] == "true"
    assert claims["score"] == "1.5"
    assert claims["sub"] == "alice"
    assert claims["iss"] == issuer.issuer
    assert claims["aud"] == issuer.audience
    assert claims["token_use"] == "id"
    assert all(isinstance(value, str) for value in claims.values())


def test_a_user_in_no_group_has_no_groups_claim(client: TestClient, issuer: DevIssuer) -> None:
    token = issuer.mint("carol")
    claims = echoed(client.get("/tasks", headers=bearer(token)))["requestContext"]["authorizer"][
        "jwt"
    ]["claims"]
    assert "cognito:groups" not in claims  # as Cognito leaves it out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        (["approvers", "admins"], "[approvers admins]"),
        (["solo"], "[solo]"),
        ([], "[]"),
        (1795390990, "1795390990"),
        (1795390990.0, "1795390990"),
        (0.25, "0.25"),
        (True, "true"),
        (False, "false"),
        ({"b": 1, "a": ["x", "y"]}, "map[a:[x y] b:1]"),
        (None, "<nil>"),
    ],
)
def test_stringify_claim(value: Any, expected: str) -> None:
    assert stringify_claim(value) == expected


# --- paths, query strings, headers, cookies, bodies -----------------------------------------


@pytest.mark.parametrize(
    ("path", "route_key", "raw_path", "parameters"),
    [
        (
            "/tasks/hello%20world",
            "GET /tasks/{taskId}",
            "/tasks/hello world",
            {"taskId": "hello world"},
        ),
        ("/tasks/%CE%BB", "GET /tasks/{taskId}", "/tasks/λ", {"taskId": "λ"}),
        ("/tasks/a+b", "GET /tasks/{taskId}", "/tasks/a+b", {"taskId": "a+b"}),
        # HTTP APIs decode %2F before routing: two segments, so no {taskId} route matches.
        ("/tasks/a%2Fb", "$default", "/tasks/a/b", None),
        # ... and decode twice: %252F is a slash too; a decoded `?` cuts the path.
        ("/tasks/a%252Fb", "$default", "/tasks/a/b", None),
        ("/tasks/abc%3Fdef", "GET /tasks/{taskId}", "/tasks/abc", {"taskId": "abc"}),
        (
            "/tasks/t%201/attachments/a%2Cb",
            "GET /tasks/{taskId}/attachments/{attachmentId}",
            "/tasks/t 1/attachments/a,b",
            {"taskId": "t 1", "attachmentId": "a,b"},
        ),
        ("/tasks/mine", "GET /tasks/mine", "/tasks/mine", None),  # literal beats {taskId}
        ("/tasks/", "$default", "/tasks/", None),  # {taskId} needs a non-empty segment
        ("/Tasks", "$default", "/Tasks", None),  # case-sensitive
        ("/nowhere/at/all", "$default", "/nowhere/at/all", None),
    ],
)
def test_path_matching_and_decoding(  # noqa: PLR0917 - pytest passes parameters by name
    client: TestClient,
    token: str,
    path: str,
    route_key: str,
    raw_path: str,
    parameters: dict[str, str] | None,
) -> None:
    event = echoed(client.get(path, headers=bearer(token)))
    assert event["routeKey"] == route_key
    assert event["requestContext"]["routeKey"] == route_key
    assert event["rawPath"] == raw_path
    assert event["requestContext"]["http"]["path"] == raw_path
    if parameters is None:
        assert "pathParameters" not in event
    else:
        assert event["pathParameters"] == parameters


def test_a_decoded_slash_can_select_a_longer_route(client: TestClient, token: str) -> None:
    event = echoed(client.post("/tasks/a%2Fcomplete", headers=bearer(token)))
    assert event["routeKey"] == "POST /tasks/{taskId}/complete"
    assert event["pathParameters"] == {"taskId": "a"}


def test_greedy_path_parameter(client: TestClient) -> None:
    event = echoed(client.get("/files/a/b%20c/d.txt"))
    assert event["routeKey"] == "GET /files/{path+}"
    assert event["pathParameters"] == {"path": "a/b c/d.txt"}


def test_a_path_that_does_not_decode_twice_is_400(client: TestClient, token: str) -> None:
    response = client.get("/tasks/100%25done", headers=bearer(token))
    assert response.status_code == 400
    assert response.json() == {"message": "Bad Request"}


def test_decode_path() -> None:
    assert decode_path(b"/a/b") == "/a/b"
    assert decode_path(b"/literal%2525value") == "/literal%value"
    assert decode_path(b"/hash%23value") == "/hash#value"
    for bad in (b"/a%zz", b"/a%2", b"/%FF", b"/percent%25done"):
        with pytest.raises(ValueError, match=r"percent-escape|codec can't decode"):
            decode_path(bad)


def test_unknown_route_or_method_goes_to_default(client: TestClient, token: str) -> None:
    for method, path in (("GET", "/nope"), ("DELETE", "/tasks"), ("PATCH", "/tasks/1")):
        event = echoed(client.request(method, path, headers=bearer(token)))
        assert event["routeKey"] == "$default"
        assert event["requestContext"]["routeKey"] == "$default"
        assert event["requestContext"]["http"]["method"] == method
        assert "pathParameters" not in event
        assert "authorizer" in event["requestContext"]


def test_default_route_requires_a_token(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 401
    assert response.content == UNAUTHORIZED


def test_no_route_and_no_default_is_404(config: StackConfig, issuer: DevIssuer) -> None:
    with make_client(build_app([], config, issuer)) as client:
        response = client.get("/tasks")
    assert response.status_code == 404
    assert response.content == b'{"message":"Not Found"}'


def test_query_string_parameters(client: TestClient) -> None:
    query = "repeat=one&repeat=two&redirect=https%3A%2F%2Fexample.com%2Fa&plus=a+b&enc=a%2Bb&empty="
    event = echoed(client.get(f"/health?{query}"))
    assert event["rawQueryString"] == query
    assert event["queryStringParameters"] == {
        "repeat": "one,two",
        "redirect": "https://example.com/a",
        "plus": "a b",
        "enc": "a+b",
        "empty": "",
    }


def test_no_query_string(client: TestClient) -> None:
    event = echoed(client.get("/health"))
    assert event["rawQueryString"] == ""
    assert "queryStringParameters" not in event


def test_repeated_headers_are_joined_with_commas(client: TestClient) -> None:
    event = echoed(
        client.get(
            "/health",
            headers=[("X-Probe", "first"), ("x-probe", "second"), ("X-Single", "One Value")],
        )
    )
    assert event["headers"]["x-probe"] == "first,second"
    assert event["headers"]["x-single"] == "One Value"


def test_cookies_move_from_the_header_to_the_cookies_list(client: TestClient) -> None:
    event = echoed(client.get("/health", headers={"Cookie": "session=abc123; theme=dark;"}))
    assert event["cookies"] == ["session=abc123", "theme=dark"]
    assert "cookie" not in event["headers"]


def test_no_cookies_no_cookies_field(client: TestClient) -> None:
    assert "cookies" not in echoed(client.get("/health"))


def test_json_body_is_passed_as_text(client: TestClient, token: str) -> None:
    payload = {"title": "write tests", "note": "λ"}
    event = echoed(client.post("/tasks", json=payload, headers=bearer(token)))
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == payload
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["content-length"] == str(len(event["body"].encode()))


@pytest.mark.parametrize(
    ("content_type", "body", "encoded"),
    [
        ("text/plain; charset=utf-8", "héllo".encode(), False),
        ("application/problem+json", b'{"a":1}', False),
        ("application/xml", b"<a/>", False),
        ("image/png", PNG, True),
        ("application/octet-stream", b"abc", True),
        ("text/plain", b"\xff\xfe not utf-8", True),
        ("application/x-www-form-urlencoded", b"a=1&b=2", True),
        (None, b"no type", True),
    ],
)
def test_bodies_are_base64_unless_textual_utf8(
    client: TestClient, token: str, content_type: str | None, body: bytes, encoded: bool
) -> None:
    headers = bearer(token) | ({"Content-Type": content_type} if content_type else {})
    event = echoed(client.post("/tasks", content=body, headers=headers))
    assert event["isBase64Encoded"] is encoded
    if encoded:
        assert base64.b64decode(event["body"]) == body
    else:
        assert event["body"] == body.decode("utf-8")


def test_empty_post_has_no_body_field(client: TestClient, token: str) -> None:
    event = echoed(client.post("/tasks", headers=bearer(token)))
    assert "body" not in event
    assert event["isBase64Encoded"] is False


# --- the authorizer ------------------------------------------------------------------------


def test_health_needs_no_token(client: TestClient) -> None:
    event = echoed(client.get("/health"))
    assert "authorizer" not in event["requestContext"]
    assert event["routeKey"] == "GET /health"


def test_an_unauthorized_route_ignores_a_bad_token(client: TestClient) -> None:
    assert client.get("/health", headers=bearer("garbage")).status_code == 200


def test_valid_token(client: TestClient, token: str) -> None:
    event = echoed(client.get("/tasks", headers=bearer(token)))
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "alice"


@pytest.mark.parametrize(
    "make_header",
    [
        pytest.param(lambda t: t, id="bare-token"),  # AWS: "only the token, or Bearer-prefixed"
        pytest.param(lambda t: f"bearer {t}", id="lowercase-bearer"),
        pytest.param(lambda t: f"Bearer   {t}  ", id="extra-spaces"),
    ],
)
def test_identity_source_forms_aws_accepts(
    client: TestClient, token: str, make_header: Any
) -> None:
    assert client.get("/tasks", headers={"Authorization": make_header(token)}).status_code == 200


def test_access_token_with_client_id_and_no_aud(client: TestClient, issuer: DevIssuer) -> None:
    claims = claims_for(issuer, client_id=issuer.audience, token_use="access")
    del claims["aud"]
    token = jwt.encode(claims, private_key(issuer), algorithm="RS256", headers={"kid": issuer.kid})
    assert client.get("/tasks", headers=bearer(token)).status_code == 200


def test_aud_list_containing_the_audience(client: TestClient, issuer: DevIssuer) -> None:
    token = issuer.mint("alice", aud=["someone-else", issuer.audience])
    assert client.get("/tasks", headers=bearer(token)).status_code == 200


@pytest.fixture(scope="session")
def unauthorized_headers(
    issuer: DevIssuer, other_issuer: DevIssuer
) -> dict[str, dict[str, str] | None]:
    """Authorization headers the authorizer must refuse, by case name."""
    return unauthorized_headers_for(issuer, other_issuer)


UNAUTHORIZED_CASES = [
    "missing-header",
    "empty-header",
    "wrong-scheme",
    "bearer-without-token",
    "not-a-jwt",
    "expired",
    "nbf-in-future",
    "no-exp",
    "wrong-iss",
    "iss-trailing-slash",
    "wrong-aud",
    "aud-list-without-ours",
    "client-id-ignored-when-aud-present",
    "tampered-payload",
    "tampered-signature",
    "alg-none",
    "hs256-with-public-key-as-secret",
    "unknown-kid",
    "other-key-with-our-kid",
    "no-kid",
]


@pytest.mark.parametrize("case", UNAUTHORIZED_CASES)
def test_unauthorized(
    config: StackConfig,
    issuer: DevIssuer,
    unauthorized_headers: dict[str, dict[str, str] | None],
    case: str,
) -> None:
    calls: list[dict[str, Any]] = []

    def recording_invoke(function: Function, event: dict[str, Any], context: LambdaContext) -> Any:
        calls.append(event)
        return {"statusCode": 200}

    headers = unauthorized_headers[case]
    app = build_app(FUNCTIONS, config, issuer, recording_invoke, rate=1000, burst=1000)
    with make_client(app) as client:
        response = client.get("/tasks", headers=headers)
    assert response.status_code == 401
    assert response.content == UNAUTHORIZED  # exactly API Gateway's body, not problem+json
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "apigw-requestid" in response.headers
    assert calls == []  # the function is never invoked


@pytest.mark.parametrize(
    ("case", "description"),
    [
        ("expired", "the token has expired"),
        ("wrong-aud", "the token does not have a valid audience"),
        ("wrong-iss", "the token does not have a valid issuer"),
        ("alg-none", "signing method none is invalid"),
    ],
)
def test_www_authenticate_says_why(
    client: TestClient,
    unauthorized_headers: dict[str, dict[str, str] | None],
    case: str,
    description: str,
) -> None:
    response = client.get("/tasks", headers=unauthorized_headers[case])
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="" error="invalid_token" error_description="{description}"'
    )


def test_missing_token_challenge(client: TestClient) -> None:
    assert client.get("/tasks").headers["www-authenticate"] == "Bearer"


def test_verify_with_a_fixed_clock(tmp_path: Path, issuer: DevIssuer) -> None:
    clock = FakeClock()
    fixed = DevIssuer(key_dir=issuer.key_dir, clock=clock)
    token = fixed.mint("alice", ttl=timedelta(seconds=60))
    assert fixed.verify(token)["sub"] == "alice"
    clock.advance(59.9)
    fixed.verify(token)
    clock.advance(0.1)  # exp is exclusive: the token must expire *after* now
    with pytest.raises(Unauthorized, match="expired"):
        fixed.verify(token)
    lenient = DevIssuer(key_dir=issuer.key_dir, clock=clock, leeway=timedelta(seconds=5))
    lenient.verify(token)


# --- throttling ----------------------------------------------------------------------------


def test_throttling_after_the_burst_then_recovery(config: StackConfig, issuer: DevIssuer) -> None:
    clock = FakeClock()
    app = build_app(FUNCTIONS, config, issuer, rate=1, burst=2, clock=clock)
    with make_client(app) as client:
        assert [client.get("/health").status_code for _ in range(2)] == [200, 200]
        throttled = client.get("/health")
        assert throttled.status_code == 429
        assert throttled.content == b'{"message":"Too Many Requests"}'
        assert throttled.headers["retry-after"] == "1"
        assert "apigw-requestid" in throttled.headers
        clock.advance(0.5)
        assert client.get("/health").status_code == 429
        clock.advance(0.5)
        assert client.get("/health").status_code == 200
        assert client.get("/health").status_code == 429
        clock.advance(10)  # refills to the burst, no further
        assert [client.get("/health").status_code for _ in range(3)] == [200, 200, 429]


def test_retry_after_rounds_up_to_whole_seconds(config: StackConfig, issuer: DevIssuer) -> None:
    clock = FakeClock()
    app = build_app(FUNCTIONS, config, issuer, rate=0.25, burst=1, clock=clock)
    with make_client(app) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health").headers["retry-after"] == "4"
        clock.advance(2.5)
        assert client.get("/health").headers["retry-after"] == "2"


def test_stage_throttling_comes_from_the_stack_config(
    config: StackConfig, issuer: DevIssuer
) -> None:
    app = build_app(FUNCTIONS, config, issuer, clock=FakeClock())
    assert (app.bucket.rate, app.bucket.burst) == (20, 40)  # Pulumi.dev.yaml
    with make_client(app) as client:
        statuses = [client.get("/health").status_code for _ in range(41)]
    assert statuses == [200] * 40 + [429]


def test_unauthorized_requests_count_against_the_limit(
    config: StackConfig, issuer: DevIssuer
) -> None:
    app = build_app(FUNCTIONS, config, issuer, rate=1, burst=1, clock=FakeClock())
    with make_client(app) as client:
        assert client.get("/tasks").status_code == 401
        assert client.get("/health").status_code == 429


# --- CORS ----------------------------------------------------------------------------------


def preflight(client: TestClient, origin: str, path: str = "/tasks") -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def test_preflight_from_an_allowed_origin(config: StackConfig, issuer: DevIssuer) -> None:
    calls: list[Any] = []
    app = build_app(FUNCTIONS, config, issuer, lambda *a: calls.append(a), rate=100, burst=100)
    with make_client(app) as client:
        response = preflight(client, ORIGIN)
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-methods"] == "GET,POST,PUT,PATCH,DELETE,OPTIONS"
    assert (
        response.headers["access-control-allow-headers"]
        == "authorization,content-type,idempotency-key,if-match"
    )
    assert response.headers["access-control-max-age"] == "600"
    assert response.headers["access-control-expose-headers"] == "etag,location,retry-after"
    assert response.headers["vary"] == "Origin"
    assert calls == []  # no authorizer, no Lambda


def test_preflight_from_another_origin_gets_no_cors_headers(client: TestClient) -> None:
    response = preflight(client, "https://evil.example")
    assert response.status_code == 204
    assert not [h for h in response.headers if h.startswith("access-control-")]


def test_preflight_on_an_unknown_path_is_answered_too(client: TestClient) -> None:
    response = preflight(client, ORIGIN, "/anything/at/all")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_options_without_request_method_is_not_a_preflight(client: TestClient) -> None:
    response = client.options("/tasks", headers={"Origin": ORIGIN})
    assert response.status_code == 401  # routed to $default, which has the authorizer


def test_cors_headers_on_responses_for_an_allowed_origin(client: TestClient, token: str) -> None:
    for response in (
        client.get("/health", headers={"Origin": ORIGIN}),
        client.get("/tasks", headers={"Origin": ORIGIN} | bearer(token)),
        client.get("/tasks", headers={"Origin": ORIGIN}),  # the gateway's own 401
        client.get("/boom", headers={"Origin": ORIGIN}),
    ):
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert response.headers["access-control-expose-headers"] == "etag,location,retry-after"
        assert "Origin" in response.headers.get_list("vary")
        assert "access-control-allow-methods" not in response.headers


def test_no_cors_headers_for_another_origin_or_none(client: TestClient) -> None:
    for headers in ({"Origin": "https://evil.example"}, {}):
        response = client.get("/health", headers=headers)
        assert response.status_code == 200
        assert not [h for h in response.headers if h.startswith("access-control-")]


def test_the_functions_own_cors_headers_are_ignored(client: TestClient) -> None:
    response = client.get("/own-cors", headers={"Origin": "https://evil.example"})
    assert not [h for h in response.headers if h.startswith("access-control-")]
    assert response.headers["etag"] == '"3"'
    response = client.get("/own-cors", headers={"Origin": ORIGIN})
    assert response.headers.get_list("access-control-allow-origin") == [ORIGIN]
    assert "access-control-allow-credentials" not in response.headers


def test_wildcard_origin(config: StackConfig, issuer: DevIssuer) -> None:
    changes: dict[str, Any] = {"cors_allow_origins": ("*",)}
    wildcard = attrs.evolve(config, **changes)
    with make_client(build_app(FUNCTIONS, wildcard, issuer)) as client:
        response = client.get("/health", headers={"Origin": "https://anywhere.example"})
    assert response.headers["access-control-allow-origin"] == "*"


# --- payload limit -------------------------------------------------------------------------


def test_api_gateway_payload_limit_is_10_mb() -> None:
    assert MAX_PAYLOAD_BYTES == 10 * 1024 * 1024


def test_payload_over_the_limit_is_413(config: StackConfig, issuer: DevIssuer, token: str) -> None:
    app = build_app(FUNCTIONS, config, issuer, rate=100, burst=100, max_payload_bytes=1024)
    with make_client(app) as client:
        headers = bearer(token) | {"Content-Type": "application/json"}
        at_limit = client.post("/tasks", content=b"x" * 1024, headers=headers)
        assert at_limit.status_code == 200
        assert len(at_limit.json()["event"]["body"]) == 1024
        over = client.post("/tasks", content=b"x" * 1025, headers=headers)
        assert over.status_code == 413
        assert over.content == b'{"message":"Request Entity Too Large"}'
        # Without Content-Length (chunked), the limit holds while reading.
        chunked = client.post("/tasks", content=iter([b"x" * 1000, b"x" * 100]), headers=headers)
        assert chunked.status_code == 413


def test_payload_limit_applies_before_the_authorizer(
    config: StackConfig, issuer: DevIssuer
) -> None:
    app = build_app(FUNCTIONS, config, issuer, max_payload_bytes=10)
    with make_client(app) as client:
        assert client.post("/tasks", content=b"x" * 11).status_code == 413


# --- responses -----------------------------------------------------------------------------


def test_function_response_is_mapped(client: TestClient) -> None:
    response = client.get("/binary")
    assert response.status_code == 201
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers.get_list("set-cookie") == [
        "session=abc123; Path=/; HttpOnly",
        "theme=dark",
    ]
    assert response.headers["content-length"] == str(len(PNG))


def test_function_headers_pass_through(client: TestClient) -> None:
    response = client.get("/health")
    assert response.headers["x-echo"] == "yes"
    assert response.headers["content-type"] == "application/json"


def test_result_without_status_code_is_a_200_json_body(client: TestClient) -> None:
    response = client.get("/no-status")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "world", "amount": 1.5}


def test_string_result_is_the_body(client: TestClient) -> None:
    response = client.get("/plain-string")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == "Hello from Lambda!"


def test_body_without_content_type(client: TestClient) -> None:
    response = client.get("/untyped")
    assert response.text == "plain words"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("path", ["/boom", "/bad-status", "/not-json"])
def test_failed_invocation_is_a_500_like_api_gateway(
    client: TestClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    with caplog.at_level(logging.INFO, logger="local_platform.gateway"):
        response = client.get(path)
    assert response.status_code == 500
    assert response.content == b'{"message":"Internal Server Error"}'
    assert response.headers["content-type"] == "application/json"
    assert any(r.levelno >= logging.ERROR for r in caplog.records)


def test_handler_traceback_is_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="local_platform.gateway"):
        client.get("/boom")
    assert "RuntimeError: boom: the handler failed" in caplog.text
    assert "Traceback" in caplog.text


def test_function_timeout_is_a_500(client: TestClient) -> None:
    started = time.monotonic()
    response = client.get("/slow")
    assert response.status_code == 500
    assert response.content == b'{"message":"Internal Server Error"}'
    assert time.monotonic() - started < 1.25


def test_lambda_context(client: TestClient) -> None:
    body = client.get("/health").json()
    context = body["context"]
    assert context["function_name"] == "echo"
    assert context["function_version"] == "$LATEST"
    assert context["memory_limit_in_mb"] == "1024"  # a string, as the runtime gives it
    assert context["invoked_function_arn"] == (
        "arn:aws:lambda:eu-west-1:123456789012:function:echo"
    )
    assert context["log_group_name"] == "/aws/lambda/echo"
    assert re.fullmatch(r"[0-9a-f-]{36}", context["aws_request_id"])
    assert 9000 < context["remaining_ms"] <= 10_000


def test_default_invoke_imports_the_handler() -> None:
    context = LambdaContext(
        function_name="x",
        invoked_function_arn="arn",
        memory_limit_in_mb="128",
        aws_request_id="id",
        log_group_name="g",
        log_stream_name="s",
        deadline_ms=int(time.time() * 1000) + 1000,
    )
    assert invoke_handler(FUNCTIONS[3], {}, context) == "Hello from Lambda!"


def test_one_log_line_per_request(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="local_platform.gateway"):
        health = client.get("/health?x=1")
    lines = [r.getMessage() for r in caplog.records if r.name == "local_platform.gateway"]
    assert len(lines) == 1
    request_id = re.escape(health.headers["apigw-requestid"])  # the handler's correlation id
    assert re.fullmatch(rf"GET /health 200 \d+ ms  \[{request_id}\]", lines[0])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="local_platform.gateway"):
        refused = client.get("/tasks")
    [line] = [r.getMessage() for r in caplog.records if r.name == "local_platform.gateway"]
    request_id = re.escape(refused.headers["apigw-requestid"])
    assert re.fullmatch(
        rf"GET /tasks 401 \d+ ms  \[{request_id}\]  \(no token in the Authorization header\)",
        line,
    )


def test_jwks_is_served_without_auth_or_throttling(config: StackConfig, issuer: DevIssuer) -> None:
    app = build_app(FUNCTIONS, config, issuer, rate=1, burst=1, clock=FakeClock())
    with make_client(app) as client:
        for _ in range(3):
            response = client.get("/dev-issuer/.well-known/jwks.json")
            assert response.status_code == 200
            assert response.json() == issuer.jwks
        discovery = client.get("/dev-issuer/.well-known/openid-configuration").json()
    assert discovery["issuer"] == issuer.issuer
    assert discovery["jwks_uri"] == f"{issuer.issuer}/.well-known/jwks.json"


def test_lifespan(app: Gateway) -> None:
    with make_client(app) as client:  # `with` runs startup and shutdown
        assert client.get("/health").status_code == 200


# --- the dev issuer ------------------------------------------------------------------------


def test_minted_token(issuer: DevIssuer) -> None:
    token = issuer.mint("alice", ["approvers"], ttl=timedelta(minutes=5))
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == issuer.kid
    claims = issuer.verify(token)
    assert claims["iss"] == "http://127.0.0.1:8000/dev-issuer"
    assert claims["aud"] == "tasks-local"
    assert claims["sub"] == "alice"
    assert claims["cognito:groups"] == ["approvers"]  # a JSON list in the token itself
    assert claims["token_use"] == "id"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["nbf"] == claims["iat"]


def test_keys_persist_across_instances(tmp_path: Path) -> None:
    key_dir = tmp_path / "issuer"
    first = DevIssuer(key_dir=key_dir)
    token = first.mint("alice")
    second = DevIssuer(key_dir=key_dir)
    assert second.kid == first.kid
    assert second.jwks == first.jwks
    assert second.verify(token)["sub"] == "alice"
    assert first.verify(second.mint("bob"))["sub"] == "bob"
    assert DevIssuer(key_dir=tmp_path / "elsewhere").kid != first.kid


def test_key_files(tmp_path: Path) -> None:
    key_dir = tmp_path / "nested" / "issuer"
    issuer = DevIssuer(key_dir=key_dir)
    assert not key_dir.exists()  # created on first use, not before
    kid = issuer.kid
    private = key_dir / auth.PRIVATE_KEY_FILE
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert b"PRIVATE KEY" in private.read_bytes()
    jwks = json.loads((key_dir / auth.JWKS_FILE).read_text())
    [key] = jwks["keys"]
    assert key["kid"] == kid
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert "d" not in key  # public only
    assert sorted(p.name for p in key_dir.iterdir()) == [auth.JWKS_FILE, auth.PRIVATE_KEY_FILE]


def test_jwks_file_is_rewritten_from_theprivate_key(tmp_path: Path) -> None:
    assert DevIssuer(key_dir=tmp_path).kid
    (tmp_path / auth.JWKS_FILE).write_text("{}")
    issuer = DevIssuer(key_dir=tmp_path)
    jwks = issuer.jwks
    assert json.loads((tmp_path / auth.JWKS_FILE).read_text()) == jwks


def test_default_key_dir_is_git_ignored() -> None:
    assert auth.DEFAULT_KEY_DIR == auth.REPO_ROOT / ".local" / "issuer"
    assert "/.local/" in (auth.REPO_ROOT / ".gitignore").read_text().splitlines()


def test_cli_prints_only_the_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--key-dir", str(tmp_path), "token", "--user", "alice", "--groups", "approvers,admins"]
    assert auth.main([*argv, "--groups", "ops", "--ttl", "60"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    claims = DevIssuer(key_dir=tmp_path).verify(out.strip())
    assert claims["sub"] == "alice"
    assert claims["cognito:groups"] == ["approvers", "admins", "ops"]
    assert claims["exp"] - claims["iat"] == 60


def test_cli_jwks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert auth.main(["--key-dir", str(tmp_path), "jwks"]) == 0
    assert json.loads(capsys.readouterr().out) == DevIssuer(key_dir=tmp_path).jwks


def test_a_problems_detail_goes_into_the_request_log_line() -> None:
    problem = HttpResponse(
        422,
        (("content-type", "application/problem+json"),),
        json.dumps({"title": "Validation failed", "detail": "title: must not be empty"}).encode(),
    )
    assert _problem_detail(problem) == "title: must not be empty"
    long = attrs.evolve(problem, body=json.dumps({"detail": "x" * 200}).encode())
    assert _problem_detail(long) == "x" * 119 + "…"
    assert _problem_detail(attrs.evolve(problem, status=200)) == ""
    assert _problem_detail(attrs.evolve(problem, body=b"not json")) == ""
    assert _problem_detail(attrs.evolve(problem, headers=())) == ""


def test_a_metered_gateway_records_each_request_api_gateway_would_bill(
    config: StackConfig, issuer: DevIssuer, token: str, tmp_path: Path
) -> None:
    meter = Meter(tmp_path / "meter.jsonl")
    app = build_app(FUNCTIONS, config, issuer, rate=1000, burst=1000, meter=meter)
    with make_client(app) as client:
        ok = client.post("/tasks", json={"title": "t"}, headers=bearer(token))
        refused = client.get("/tasks")  # the authorizer answers: no route ran
    meter.close()
    answered, denied = read_records(tmp_path / "meter.jsonl")[0]
    assert answered["route"] == "POST /tasks"
    assert answered["status"] == ok.status_code
    assert answered["request_bytes"] == len(b'{"title":"t"}')
    assert answered["response_bytes"] == len(ok.content)
    assert answered["request_id"] == ok.headers["apigw-requestid"]
    assert (denied["route"], denied["status"]) == (None, refused.status_code)
    # The stage's access-log line, in its format, with this request's values.
    for record in (answered, denied):
        assert record["access_log_bytes"] > len(access_log.stage_format()) // 2


def test_the_access_log_line_fills_every_variable_of_the_stages_format() -> None:
    line = access_log.render({"requestId": "r1", "status": 201, "routeKey": None, "path": 'a"b'})
    document = json.loads(line)
    assert set(document) == set(access_log.FORMAT)
    assert (document["requestId"], document["status"], document["path"]) == ("r1", "201", 'a"b')
    assert document["routeKey"] == document["userAgent"] == "-"  # no value: what AWS writes
    assert "$context" not in line
