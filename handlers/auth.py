"""Bearer-token verification: the checks API Gateway's JWT authorizer makes, in one
implementation (PyJWT) that the local gateway's authorizer and the functions behind a Function
URL share.

A request through API Gateway carries the claims its authorizer verified
(`requestContext.authorizer.jwt.claims`, which a caller cannot forge: Lambda builds the event)
and is not verified again. A request through a Function URL has no authorizer, so the function
verifies its `Authorization: Bearer` token itself, with `verify`:

1. the header names an allowed algorithm (RS256 only: `none`, HS256 and the rest are refused
   before any key is touched) and a `kid`;
2. the `kid` is a key of the issuer's JWKS (`RemoteKeys`: fetched once per container, cached,
   fetched again for an unknown `kid` at most once per cool-down, with a timeout), and the
   signature verifies with that key;
3. `exp` is after now, `nbf` (when present) is not after now;
4. `iss` equals the configured issuer exactly;
5. `aud` holds the configured audience, or, only when `aud` is absent, `client_id` equals it
   (Cognito's access tokens carry `client_id`, its ID tokens `aud`).

This is the documented workflow of an HTTP API JWT authorizer ("Control access to HTTP APIs
with JWT authorizers"), stricter in one way: AWS accepts any RSA algorithm, this accepts RS256,
the one Cognito and the development issuer sign with. No clock leeway, as AWS documents none.
A token that fails is `Unauthorized` (401); a JWKS that cannot be fetched is
`taskcore.errors.Unavailable` (503): the token may be valid, the key is not at hand.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeGuard

import attrs
import jwt

from handlers.settings import ConfigurationError
from taskcore.errors import Unavailable

ALGORITHMS = ("RS256",)
SHOWN_ALG = re.compile(r"^[A-Za-z0-9]{1,16}$")
REASON_MAX = 64
"""No refusal reason is longer (`tests/handlers/test_auth.py`): they are this module's own
words, never a caller's text, so the `WWW-Authenticate` challenge has a bounded length."""
JWKS_TIMEOUT_S = 3.0
"""Per JWKS fetch: a slow issuer fails one request with a 503, not the function's timeout."""
JWKS_LIFESPAN_S = 3600.0
"""How long a fetched JWKS is trusted before the next fetch (issuers publish a new key well
before they sign with it)."""
JWKS_COOLDOWN_S = 30.0
"""The least time between two fetches caused by unknown `kid`s: a stream of forged `kid`s
cannot turn each request into a fetch from the issuer."""


class Unauthorized(Exception):
    """The token fails one of the checks; `reason` says which (for logs and the
    `WWW-Authenticate` header's description, never more than that)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason[:REASON_MAX])
        self.reason = reason[:REASON_MAX]


class Keys(Protocol):
    """The issuer's verification keys, by `kid`."""

    def key(self, kid: str) -> Any:
        """The public key for `kid`; `Unauthorized` if the issuer has none by that id."""
        ...


@attrs.frozen
class StaticKeys:
    """A JWKS held in memory (the development issuer's own)."""

    jwks: Mapping[str, Any]

    def key(self, kid: str) -> Any:
        for jwk in self.jwks.get("keys", ()):
            if jwk.get("kid") == kid:
                return jwt.PyJWK(dict(jwk)).key
        raise Unauthorized("the token's kid matches no key of the issuer")


@attrs.define
class RemoteKeys:
    """The issuer's JWKS at `uri`, through PyJWT's `PyJWKClient`: fetched on first use, kept
    for `lifespan_s`, fetched again for an unknown `kid` (at most once per `cooldown_s`)."""

    uri: str
    timeout_s: float = JWKS_TIMEOUT_S
    lifespan_s: float = JWKS_LIFESPAN_S
    cooldown_s: float = JWKS_COOLDOWN_S
    _client: jwt.PyJWKClient | None = attrs.field(default=None, init=False, repr=False)

    def _jwks(self) -> jwt.PyJWKClient:
        if self._client is None:
            try:
                self._client = jwt.PyJWKClient(
                    self.uri,
                    cache_jwk_set=True,
                    lifespan=self.lifespan_s,
                    timeout=self.timeout_s,
                    cooldown_duration=self.cooldown_s,
                )
            except jwt.PyJWKClientError as error:  # an http(s) URI only: a deployment error
                raise ConfigurationError(f"the issuer's JWKS URI {self.uri!r}: {error}") from None
        return self._client

    def key(self, kid: str) -> Any:
        client = self._jwks()
        try:
            return client.get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError as error:
            raise Unavailable(f"the issuer's keys could not be fetched: {error}") from None
        except jwt.PyJWKClientError:
            # No key by that id, even after a fetch (or during the cool-down).
            raise Unauthorized("the token's kid matches no key of the issuer") from None
        except jwt.PyJWTError as error:  # a JWKS document that is not one
            raise Unavailable(f"the issuer's keys could not be read: {error}") from None


@attrs.frozen
class Verifier:
    """The rules a token must pass, and where the keys come from."""

    issuer: str
    audience: str
    keys: Keys
    clock: Callable[[], float] = time.time
    """Seconds since the epoch."""
    leeway_s: float = 0.0

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims if it passes every check; else `Unauthorized`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the token is malformed") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:  # before any key: no `none`, no HS256-with-an-RSA-key
            # API Gateway's words; the token's own `alg` only when it is a plain short name:
            # the reason goes into a response header, and a header must not carry what a
            # caller wrote (a CR/LF there would break the response).
            shown = algorithm if isinstance(algorithm, str) and SHOWN_ALG.match(algorithm) else "?"
            raise Unauthorized(f"signing method {shown} is invalid")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the token names no kid")
        key = self.keys.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                # Time, issuer and audience are checked below, by AWS's rules on our clock.
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                    # AWS does not type-check these; PyJWT would (sub/jti must be strings).
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token's signature is invalid") from None
        except jwt.PyJWTError:
            raise Unauthorized("the token is malformed") from None
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        exp = claims.get("exp")
        if not _is_number(exp):
            raise Unauthorized("the token has no valid exp claim")
        if now >= exp + self.leeway_s:
            raise Unauthorized("the token has expired")
        nbf = claims.get("nbf")
        if nbf is not None:
            if not _is_number(nbf):
                raise Unauthorized("the token has no valid nbf claim")
            if now < nbf - self.leeway_s:
                raise Unauthorized("the token is not valid yet")
        if claims.get("iss") != self.issuer:
            raise Unauthorized("the token does not have a valid issuer")
        if "aud" in claims:
            audience = claims["aud"]
            audiences = audience if isinstance(audience, list) else [audience]
        else:
            audiences = [claims.get("client_id")]
        if self.audience not in audiences:
            raise Unauthorized("the token does not have a valid audience")


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; `Unauthorized` otherwise."""
    if not authorization:
        raise Unauthorized("no bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header is not a bearer token")
    return token.strip()


def jwks_uri(issuer: str) -> str:
    """Where an issuer publishes its JWKS when it does not say otherwise: Cognito's place
    (`<issuer>/.well-known/jwks.json`), which the development issuer uses too."""
    return issuer.rstrip("/") + "/.well-known/jwks.json"


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
