"""The cursor-signing secret, kept in Secrets Manager (encrypted with the stack's key) and read
through Powertools Parameters, never from the function's environment.

The secret's value is a JSON object: `{"current": "...", "previous": "..."}`. Cursors are
signed with `current`; cursors signed with `previous` are still accepted, so a rotation breaks
no cursor a client holds (docs/deploying.md has the steps). Both keys are in one secret value,
read with one `GetSecretValue`: Powertools caches a secret by its name (and transform) only, so
reading the `AWSPREVIOUS` stage of the same secret would hit the `AWSCURRENT` entry's cache.

The value is read on first use (the first request that pages), not at init, and cached for
`MAX_AGE_S`: a cold start that serves no list request never pays for Powertools Parameters'
import (it imports boto3) or the call, and after a rotation each container has the new value
within `MAX_AGE_S`. A read that fails (throttled, the endpoint down) is `Unavailable` (503,
retry), not a 500.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

import attrs

from handlers.settings import MIN_CURSOR_SECRET, ConfigurationError
from taskcore.adapters.clients import LazyClient
from taskcore.cursors import CursorCodec, Position
from taskcore.errors import Unavailable

MAX_AGE_S = 300
"""How long a container keeps the secret's value before it reads it again (Powertools'
default is 5 s; the value changes only when an operator rotates it)."""


def codec_from_value(value: Any, ttl: timedelta) -> CursorCodec:
    """The codec for one value of the secret; a value that is not what it must be is a
    deployment error, reported with what is wrong and never with the value."""
    if not isinstance(value, dict) or not isinstance(value.get("current"), str):
        raise ConfigurationError(
            'the cursor secret must be a JSON object with a "current" key (and optionally '
            '"previous"), each a string'
        )
    keys = {"current": value["current"]}
    if value.get("previous") is not None:
        keys["previous"] = value["previous"]
    for name, key in keys.items():
        if not isinstance(key, str) or len(key) < MIN_CURSOR_SECRET:
            raise ConfigurationError(
                f'the cursor secret\'s "{name}" must be at least {MIN_CURSOR_SECRET} characters'
            )
    previous = (keys["previous"].encode(),) if "previous" in keys else ()
    return CursorCodec(keys["current"].encode(), ttl=ttl, previous=previous)


def prepare_first_read() -> None:
    """Import what the first read needs (Powertools Parameters, and boto3 with it), without
    reading: before a SnapStart snapshot, so no restored container pays for the import. The
    value itself is not read there: a snapshot keeps no secret, and a restore made after a
    rotation reads the rotated value."""
    import aws_lambda_powertools.utilities.parameters  # noqa: F401 - imported to be ready


@attrs.define
class SecretCursors:
    """`taskcore.ports.Cursors` whose signing keys come from a Secrets Manager secret."""

    secret_id: str
    client: LazyClient | Any
    """A Secrets Manager client (botocore's, as every other client here), or a `LazyClient`
    building it on first use."""
    ttl: timedelta
    max_age_s: int = MAX_AGE_S
    _provider: Any = None
    _codec: tuple[str, CursorCodec] | None = None
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def codec(self) -> CursorCodec:
        """The codec for the secret's value now (read, or from Powertools' cache)."""
        from aws_lambda_powertools.utilities.parameters import (  # on first use: it imports boto3
            GetParameterError,
            SecretsProvider,
        )

        with self._lock:
            if self._provider is None:
                client = self.client.get() if isinstance(self.client, LazyClient) else self.client
                self._provider = SecretsProvider(boto3_client=client)
            try:
                raw = self._provider.get(self.secret_id, max_age=self.max_age_s)
            except GetParameterError as error:
                raise Unavailable(f"the cursor secret could not be read: {error}") from None
            if self._codec is None or self._codec[0] != raw:
                try:
                    value = json.loads(raw)
                except ValueError:
                    value = None
                self._codec = (raw, codec_from_value(value, self.ttl))
            return self._codec[1]

    def encode(self, scope: str, position: Position, now: datetime) -> str:
        return self.codec().encode(scope, position, now)

    def decode(self, scope: str, token: str, now: datetime) -> dict[str, str]:
        return self.codec().decode(scope, token, now)
