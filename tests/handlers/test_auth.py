"""`handlers.auth`, the one bearer-token verifier (the local gateway's authorizer and the
functions behind a Function URL): the refusals, and the issuer's keys fetched over HTTP (once,
again for an unknown `kid` at most once per cool-down, with a timeout)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from handlers.auth import (
    REASON_MAX,
    RemoteKeys,
    StaticKeys,
    Unauthorized,
    Verifier,
    bearer_token,
    jwks_uri,
)
from handlers.settings import ConfigurationError
from local_platform.auth import DevIssuer
from taskcore.errors import Unavailable
from tests.e2e.tokens import claims_for, private_key, unauthorized_headers_for


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(key_dir=tmp_path_factory.mktemp("issuer"))


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(key_dir=tmp_path_factory.mktemp("other"))


def static(issuer: DevIssuer) -> Verifier:
    return Verifier(issuer.issuer, issuer.audience, StaticKeys(issuer.jwks))


def test_a_good_token_gives_its_claims(issuer: DevIssuer) -> None:
    claims = static(issuer).verify(issuer.mint("alice", ["approvers"]))
    assert (claims["sub"], claims["cognito:groups"]) == ("alice", ["approvers"])


def test_client_id_stands_in_for_a_missing_aud(issuer: DevIssuer) -> None:
    token = jwt.encode(
        {k: v for k, v in claims_for(issuer, client_id=issuer.audience).items() if k != "aud"},
        private_key(issuer),
        algorithm="RS256",
        headers={"kid": issuer.kid},
    )
    assert static(issuer).verify(token)["client_id"] == issuer.audience


def test_every_refusable_token_is_refused_with_a_short_reason(
    issuer: DevIssuer, other: DevIssuer
) -> None:
    verifier = static(issuer)
    for kind, headers in unauthorized_headers_for(issuer, other).items():
        with pytest.raises(Unauthorized) as refused:
            verifier.verify(bearer_token(None if headers is None else headers["Authorization"]))
        assert 0 < len(refused.value.reason) <= REASON_MAX, kind


def test_a_callers_alg_is_never_repeated_unless_it_is_a_plain_name(issuer: DevIssuer) -> None:
    """The reason goes into a response header: a CR/LF from the token must not reach it."""
    payload = jwt.encode(claims_for(issuer), private_key(issuer), algorithm="RS256")
    body = payload.split(".", 1)[1]
    verifier = static(issuer)
    for alg, shown in (("none", "none"), ("RS256\r\nX-Evil: 1", "?"), ("A" * 200, "?")):
        header = jwt.utils.base64url_encode(json.dumps({"alg": alg, "kid": issuer.kid}).encode())
        with pytest.raises(Unauthorized) as refused:
            verifier.verify(f"{header.decode()}.{body}")
        assert refused.value.reason == f"signing method {shown} is invalid"


def test_the_clock_decides_expiry(issuer: DevIssuer) -> None:
    token = issuer.mint("alice")
    later = Verifier(
        issuer.issuer, issuer.audience, StaticKeys(issuer.jwks), clock=lambda: time.time() + 7200
    )
    with pytest.raises(Unauthorized, match="expired"):
        later.verify(token)


@pytest.mark.parametrize(
    ("header", "reason"),
    [(None, "no bearer token"), ("Basic abc", "not a bearer token"), ("Bearer  t ", None)],
)
def test_bearer_token(header: str | None, reason: str | None) -> None:
    if reason is None:
        assert bearer_token(header) == "t"
    else:
        with pytest.raises(Unauthorized, match=reason):
            bearer_token(header)


def test_jwks_uri_is_cognitos_place() -> None:
    assert jwks_uri("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_x/") == (
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_x/.well-known/jwks.json"
    )


class JwksServer:
    """The issuer's JWKS over loopback HTTP, counting fetches; `jwks` may be swapped."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks, self.fetches, self.delay = jwks, 0, 0.0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                time.sleep(server.delay)
                body = json.dumps(server.jwks).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def served(issuer: DevIssuer) -> Iterator[JwksServer]:
    server = JwksServer(issuer.jwks)
    yield server
    server.httpd.shutdown()


def test_the_jwks_is_fetched_once_per_container(issuer: DevIssuer, served: JwksServer) -> None:
    verifier = Verifier(issuer.issuer, issuer.audience, RemoteKeys(served.uri))
    for _ in range(5):
        assert verifier.verify(issuer.mint("alice"))["sub"] == "alice"
    assert served.fetches == 1


def test_an_unknown_kid_fetches_again_at_most_once_per_cooldown(
    issuer: DevIssuer, other: DevIssuer, served: JwksServer
) -> None:
    keys = RemoteKeys(served.uri, cooldown_s=30)
    verifier = Verifier(issuer.issuer, issuer.audience, keys)
    verifier.verify(issuer.mint("alice"))
    forged = other.mint("mallory")  # another key pair's kid, our issuer's claims
    for _ in range(20):
        with pytest.raises(Unauthorized, match="kid"):
            verifier.verify(forged)
    assert served.fetches == 1  # inside the cool-down: forged kids cost no fetch


def test_a_rotated_key_is_found_by_fetching_again(
    issuer: DevIssuer, other: DevIssuer, served: JwksServer
) -> None:
    keys = RemoteKeys(served.uri, cooldown_s=0)
    rotated = Verifier(other.issuer, other.audience, keys)
    with pytest.raises(Unauthorized):
        rotated.verify(other.mint("alice"))
    served.jwks = {"keys": issuer.jwks["keys"] + other.jwks["keys"]}  # the issuer adds a key
    assert rotated.verify(other.mint("alice"))["sub"] == "alice"
    assert served.fetches == 3  # first fetch; refetch for the unknown kid, twice


def test_an_unreachable_or_slow_issuer_is_unavailable(
    issuer: DevIssuer, served: JwksServer
) -> None:
    served.delay = 2.0
    slow = Verifier(issuer.issuer, issuer.audience, RemoteKeys(served.uri, timeout_s=0.3))
    with pytest.raises(Unavailable):
        slow.verify(issuer.mint("alice"))
    gone = Verifier(
        issuer.issuer, issuer.audience, RemoteKeys("http://127.0.0.1:9/.well-known/jwks.json")
    )
    with pytest.raises(Unavailable):
        gone.verify(issuer.mint("alice"))


def test_a_jwks_uri_that_is_not_http_is_a_configuration_error(
    issuer: DevIssuer, tmp_path: Path
) -> None:
    verifier = Verifier(issuer.issuer, issuer.audience, RemoteKeys((tmp_path / "j").as_uri()))
    with pytest.raises(ConfigurationError, match="JWKS URI"):
        verifier.verify(issuer.mint("alice"))
