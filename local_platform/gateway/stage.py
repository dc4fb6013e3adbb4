"""The `$default` stage's rules: its throttle (one token bucket) and the API's CORS
configuration, which the gateway applies before routing and to every response.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_ALLOW_HEADERS = ("authorization", "content-type", "idempotency-key", "if-match")
CORS_EXPOSE_HEADERS = ("etag", "location", "retry-after")
CORS_MAX_AGE_S = 600


@attrs.define
class TokenBucket:
    """API Gateway's throttle: `rate` tokens a second, at most `burst` in the bucket."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _tokens: float = attrs.field(init=False)
    _updated: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("throttle rate must be > 0 and burst >= 1")
        self._tokens = float(self.burst)
        self._updated = self.clock()

    def take(self) -> float:
        """0.0 if a request may pass (a token is taken); else the seconds until one may."""
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


@attrs.frozen
class Cors:
    allow_origins: tuple[str, ...]

    @property
    def enabled(self) -> bool:
        return bool(self.allow_origins)

    def allow_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for `origin`, or None if not allowed."""
        if origin is None or not self.enabled:
            return None
        if origin in self.allow_origins:
            return origin
        return "*" if "*" in self.allow_origins else None

    def headers(self, origin: str | None, *, preflight: bool) -> list[tuple[str, str]]:
        allowed = self.allow_origin(origin)
        if allowed is None:
            return []
        headers = [("access-control-allow-origin", allowed), ("vary", "Origin")]
        if preflight:
            headers += [
                ("access-control-allow-methods", ",".join(CORS_ALLOW_METHODS)),
                ("access-control-allow-headers", ",".join(CORS_ALLOW_HEADERS)),
                ("access-control-max-age", str(CORS_MAX_AGE_S)),
            ]
        headers.append(("access-control-expose-headers", ",".join(CORS_EXPOSE_HEADERS)))
        return headers
