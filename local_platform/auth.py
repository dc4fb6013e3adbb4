"""A development token issuer, and the JWT checks API Gateway's JWT authorizer makes.

`DevIssuer` keeps one RSA key pair under `.local/issuer/` (git-ignored), created on first use,
and mints RS256 tokens shaped like Cognito ID tokens (`cognito:groups` is a JSON list, as
Cognito puts it; `token_use` is "id"). `DevIssuer.verify` is what the gateway runs for every
authorized route: the documented workflow of an HTTP API JWT authorizer, in the one
implementation the functions behind a Function URL run too (`handlers.auth`: algorithm
allow-list, `kid` in the issuer's JWKS, signature, `exp`/`nbf`, `iss`, `aud` or `client_id`).

Clock skew: none. AWS documents no leeway ("must be after/before the current time"), and the
issuer and the gateway share one clock here, so `leeway` defaults to 0 seconds.

    python -m local_platform.auth token --user alice --groups approvers --ttl 3600
    python -m local_platform.auth jwks
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from handlers.auth import StaticKeys, Unauthorized, Verifier

__all__ = ["DevIssuer", "Unauthorized"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KEY_DIR = REPO_ROOT / ".local" / "issuer"
DEV_ISSUER = "http://127.0.0.1:8000/dev-issuer"
DEV_AUDIENCE = "tasks-local"
ALGORITHM = "RS256"
PRIVATE_KEY_FILE = "private_key.pem"
JWKS_FILE = "jwks.json"
KEY_BITS = 2048


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256) of an RSA public key: a stable `kid`."""
    canonical = json.dumps(
        {"e": public_jwk["e"], "kty": "RSA", "n": public_jwk["n"]},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` with `mode` from the first byte on, then rename into place."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@attrs.frozen
class _KeyPair:
    private_key: rsa.RSAPrivateKey
    kid: str
    jwks: dict[str, Any]


def _load_or_create(key_dir: Path) -> _KeyPair:
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path = key_dir / PRIVATE_KEY_FILE
    if not key_path.exists():
        created = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        pem = created.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Another process may create the key at the same moment: link() fails if the name
        # exists, so exactly one key wins and everyone loads it.
        fd, temp = tempfile.mkstemp(dir=key_dir, prefix=f".{PRIVATE_KEY_FILE}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(pem)
            with contextlib.suppress(FileExistsError):
                os.link(temp, key_path)
        finally:
            Path(temp).unlink(missing_ok=True)
    loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{key_path} does not hold an RSA private key")
    public_jwk: dict[str, Any] = RSAAlgorithm.to_jwk(loaded.public_key(), as_dict=True)
    public_jwk.pop("key_ops", None)  # `use` says it; RFC 7517 advises against both
    kid = _thumbprint(public_jwk)
    jwks = {"keys": [{**public_jwk, "kid": kid, "use": "sig", "alg": ALGORITHM}]}
    # The JWKS is derived from the private key; rewrite it if missing or stale.
    jwks_path = key_dir / JWKS_FILE
    text = json.dumps(jwks, indent=2) + "\n"
    if not jwks_path.exists() or jwks_path.read_text() != text:
        _write_atomically(jwks_path, text.encode(), 0o644)
    return _KeyPair(private_key=loaded, kid=kid, jwks=jwks)


@attrs.define
class DevIssuer:
    """The local stand-in for the Cognito user pool: mints tokens and verifies them."""

    key_dir: Path = DEFAULT_KEY_DIR
    issuer: str = DEV_ISSUER
    audience: str = DEV_AUDIENCE
    clock: Callable[[], float] = time.time  # seconds since the epoch
    leeway: timedelta = timedelta(0)
    _keys: _KeyPair | None = attrs.field(default=None, init=False, repr=False)

    def _key_pair(self) -> _KeyPair:
        if self._keys is None:
            self._keys = _load_or_create(self.key_dir)
        return self._keys

    @property
    def kid(self) -> str:
        return self._key_pair().kid

    @property
    def jwks(self) -> dict[str, Any]:
        """The public JWKS, as the issuer's `jwks_uri` would serve it."""
        return self._key_pair().jwks

    @property
    def jwks_path(self) -> str:
        """The URL path the gateway serves the JWKS at (under the issuer URL's path)."""
        return urlsplit(self.issuer).path.rstrip("/") + "/.well-known/jwks.json"

    def mint(
        self,
        sub: str,
        groups: Sequence[str] = (),
        ttl: timedelta = timedelta(hours=1),
        **extra_claims: Any,
    ) -> str:
        """An RS256 ID token for `sub`. `extra_claims` are added last, so they may also
        override the standard ones (tests use that for wrong `iss`/`aud`, future `nbf`)."""
        keys = self._key_pair()
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": now,
            "nbf": now,
            "exp": now + int(ttl.total_seconds()),
            "token_use": "id",
        }
        if groups:  # Cognito leaves the claim out for a user in no group
            claims["cognito:groups"] = list(groups)
        claims.update(extra_claims)
        return jwt.encode(
            claims, keys.private_key, algorithm=ALGORITHM, headers={"kid": keys.kid, "typ": "JWT"}
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims if it passes every authorizer check; else `Unauthorized`. The
        checks are `handlers.auth`'s, the ones a function behind a Function URL makes."""
        return Verifier(
            issuer=self.issuer,
            audience=self.audience,
            keys=StaticKeys(self.jwks),
            clock=self.clock,
            leeway_s=self.leeway.total_seconds(),
        ).verify(token)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_platform.auth",
        description="The local development token issuer.",
    )
    parser.add_argument(
        "--key-dir",
        type=Path,
        default=DEFAULT_KEY_DIR,
        help="where the key pair lives (default: .local/issuer/ in the repository)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print a signed ID token (and nothing else)")
    token.add_argument("--user", required=True, help="the subject (sub claim)")
    token.add_argument(
        "--groups",
        action="append",
        default=[],
        help="a group, or comma-separated groups; repeatable (cognito:groups claim)",
    )
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default: 3600)")
    commands.add_parser("jwks", help="print the public JWKS")
    args = parser.parse_args(argv)

    issuer = DevIssuer(key_dir=args.key_dir)
    if args.command == "jwks":
        print(json.dumps(issuer.jwks, indent=2))
        return 0
    groups = [g.strip() for value in args.groups for g in value.split(",") if g.strip()]
    print(issuer.mint(args.user, groups, timedelta(seconds=args.ttl)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
