"""Opaque, signed pagination cursors.

A cursor carries the storage position (DynamoDB's LastEvaluatedKey, as strings), the query it
belongs to and an expiry, signed with HMAC-SHA256. A tampered, expired or foreign cursor (issued
to another user, or for another filter) is rejected with `InvalidCursor` before any storage
call, so it can never page through someone else's data.

Rotating the signing secret does not break the cursors clients hold: a codec signs with its
`secret` and also accepts cursors signed with any of its `previous` secrets (the one it
replaced, for as long as a cursor lives).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import attrs

from taskcore.errors import InvalidCursor

Position = Mapping[str, str]
CURSOR_MAX = 2048


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _secrets(values: Iterable[bytes]) -> tuple[bytes, ...]:
    return tuple(values)


@attrs.frozen
class CursorCodec:
    secret: bytes = attrs.field(repr=False)
    ttl: timedelta = timedelta(hours=24)
    previous: tuple[bytes, ...] = attrs.field(default=(), repr=False, converter=_secrets)
    """Secrets that signed cursors before `secret` did: accepted, never used to sign."""

    def _sign(self, body: str, secret: bytes | None = None) -> str:
        key = self.secret if secret is None else secret
        digest = hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()
        return _b64encode(digest[:24])

    def _signed_by_us(self, body: str, signature: str) -> bool:
        """Whether `signature` is the current or a previous secret's (each compared in
        constant time, all of them always: no timing tells which secret matched)."""
        matches = [
            hmac.compare_digest(signature, self._sign(body, key))
            for key in (self.secret, *self.previous)
        ]
        return any(matches)

    @staticmethod
    def _scope_digest(scope: str) -> str:
        return hashlib.sha256(scope.encode()).hexdigest()[:16]

    def encode(self, scope: str, position: Position, now: datetime) -> str:
        payload = {
            "p": dict(position),
            "s": self._scope_digest(scope),
            "e": int((now + self.ttl).timestamp()),
        }
        body = _b64encode(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._sign(body)}"

    def decode(self, scope: str, token: str, now: datetime) -> dict[str, str]:
        if len(token) > CURSOR_MAX or token.count(".") != 1:
            raise InvalidCursor("is malformed")
        body, signature = token.split(".")
        if not (body.isascii() and signature.isascii()) or not self._signed_by_us(body, signature):
            raise InvalidCursor("has an invalid signature")
        try:
            payload = json.loads(_b64decode(body))
            position = payload["p"]
            expires = int(payload["e"])
            issued_for = payload["s"]
        except (ValueError, KeyError, TypeError, OverflowError, binascii.Error) as exc:
            raise InvalidCursor("is malformed") from exc
        if issued_for != self._scope_digest(scope):
            raise InvalidCursor("was issued for another query")
        if expires < now.timestamp():
            raise InvalidCursor("has expired")
        if not isinstance(position, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in position.items()
        ):
            raise InvalidCursor("is malformed")
        return position
