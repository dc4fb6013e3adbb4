"""Tokens for tests of the JWT checks: forged, expired, mis-signed and otherwise refusable
authorization headers, and the pieces that build them. Shared by `tests/e2e` (the gateway) and
`tests/reliability` (abuse over HTTP); no test lives here."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt

from local_platform import auth
from local_platform.auth import DevIssuer


def b64url(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(issuer: DevIssuer, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": issuer.issuer, "aud": issuer.audience, "sub": "mallory"}
    return claims | {"iat": now, "nbf": now, "exp": now + 3600} | overrides


def private_key(issuer: DevIssuer) -> Any:
    return _load_private_key(issuer.key_dir, issuer.kid)


@functools.cache
def _load_private_key(key_dir: Path, kid: str) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(
        (key_dir / auth.PRIVATE_KEY_FILE).read_bytes(), password=None
    )


def public_pem(issuer: DevIssuer) -> bytes:
    from cryptography.hazmat.primitives import serialization

    public_key = private_key(issuer).public_key()
    pem: bytes = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def unauthorized_headers_for(
    issuer: DevIssuer, other: DevIssuer
) -> dict[str, dict[str, str] | None]:
    now = int(time.time())
    good = issuer.mint("alice")
    header, _, signature = good.split(".")
    forged_payload = b64url(claims_for(issuer, sub="mallory"))
    unsigned = f"{b64url({'alg': 'none', 'typ': 'JWT', 'kid': issuer.kid})}.{forged_payload}."
    hs_header = b64url({"alg": "HS256", "typ": "JWT", "kid": issuer.kid})
    hs_input = f"{hs_header}.{forged_payload}".encode()
    hs_signature = b64url(hmac.new(public_pem(issuer), hs_input, hashlib.sha256).digest())
    other_key_our_kid = jwt.encode(
        claims_for(issuer), private_key(other), algorithm="RS256", headers={"kid": issuer.kid}
    )
    no_exp = claims_for(issuer)
    del no_exp["exp"]
    cases: dict[str, str | None] = {
        "missing-header": None,
        "empty-header": "",
        "wrong-scheme": "Basic YWxpY2U6cGFzc3dvcmQ=",
        "bearer-without-token": "Bearer ",
        "not-a-jwt": "Bearer not.a.jwt",
        "expired": f"Bearer {issuer.mint('alice', ttl=timedelta(seconds=-1))}",
        "nbf-in-future": f"Bearer {issuer.mint('alice', nbf=now + 600)}",
        "no-exp": "Bearer "
        + jwt.encode(no_exp, private_key(issuer), algorithm="RS256", headers={"kid": issuer.kid}),
        "wrong-iss": f"Bearer {issuer.mint('alice', iss='https://evil.example/dev-issuer')}",
        "iss-trailing-slash": f"Bearer {issuer.mint('alice', iss=issuer.issuer + '/')}",
        "wrong-aud": f"Bearer {issuer.mint('alice', aud='someone-else')}",
        "aud-list-without-ours": f"Bearer {issuer.mint('alice', aud=['a', 'b'])}",
        "client-id-ignored-when-aud-present": "Bearer "
        + issuer.mint("alice", aud="someone-else", client_id=issuer.audience),
        "tampered-payload": f"Bearer {header}.{forged_payload}.{signature}",
        "tampered-signature": f"Bearer {header}.{good.split('.')[1]}.{signature[::-1]}",
        "alg-none": f"Bearer {unsigned}",
        "hs256-with-public-key-as-secret": f"Bearer {hs_header}.{forged_payload}.{hs_signature}",
        "unknown-kid": f"Bearer {other.mint('alice')}",
        "other-key-with-our-kid": f"Bearer {other_key_our_kid}",
        "no-kid": "Bearer "
        + jwt.encode(claims_for(issuer), private_key(issuer), algorithm="RS256"),
    }
    return {
        name: None if value is None else {"Authorization": value} for name, value in cases.items()
    }
