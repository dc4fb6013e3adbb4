"""The cursor secret from Secrets Manager (moto's, over HTTP), through Powertools Parameters:
read on first use, cached, rotated without breaking a cursor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.secrets import SecretCursors, codec_from_value
from handlers.settings import ConfigurationError
from taskcore.adapters.clients import build_client
from taskcore.cursors import CursorCodec
from taskcore.errors import InvalidCursor, Unavailable

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
TTL = timedelta(hours=1)
OLD, NEW = "o" * 48, "n" * 48
SCOPE, POSITION = "alice|all", {"pk": "USER#alice", "sk": "TASK#01"}


class CountingClient:
    """Secrets Manager's botocore client, counting GetSecretValue calls."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.reads = 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.reads += 1
        return self._client.get_secret_value(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@pytest.fixture
def secrets(s3_endpoint: str) -> CountingClient:
    return CountingClient(build_client("secretsmanager", s3_endpoint))


def put(secrets: CountingClient, name: str, value: object) -> None:
    text = json.dumps(value)
    try:
        secrets.create_secret(Name=name, SecretString=text)
    except Exception:  # it exists: put a new version
        secrets.put_secret_value(SecretId=name, SecretString=text)


def test_cursors_are_signed_with_the_current_key_read_once_and_cached(
    secrets: CountingClient,
) -> None:
    put(secrets, "cached", {"current": NEW})
    cursors = SecretCursors("cached", secrets, TTL)
    assert secrets.reads == 0  # nothing is read before the first use
    token = cursors.encode(SCOPE, POSITION, NOW)
    assert cursors.decode(SCOPE, token, NOW) == POSITION
    assert CursorCodec(NEW.encode()).decode(SCOPE, token, NOW) == POSITION
    for _ in range(5):
        cursors.decode(SCOPE, token, NOW)
    assert secrets.reads == 1


def test_a_rotation_keeps_cursors_signed_with_the_previous_key(secrets: CountingClient) -> None:
    put(secrets, "rotated", {"current": OLD})
    before = SecretCursors("rotated", secrets, TTL, max_age_s=0)  # re-read every time
    token = before.encode(SCOPE, POSITION, NOW)
    put(secrets, "rotated", {"current": NEW, "previous": OLD})
    assert before.decode(SCOPE, token, NOW) == POSITION  # signed with OLD: still accepted
    fresh = before.encode(SCOPE, POSITION, NOW)
    assert CursorCodec(NEW.encode()).decode(SCOPE, fresh, NOW) == POSITION
    put(secrets, "rotated", {"current": NEW})  # OLD retired
    with pytest.raises(InvalidCursor, match="invalid signature"):
        before.decode(SCOPE, token, NOW)


def test_a_secret_that_cannot_be_read_is_unavailable_not_a_crash(
    secrets: CountingClient,
) -> None:
    with pytest.raises(Unavailable, match="cursor secret could not be read"):
        SecretCursors("no-such-secret", secrets, TTL).encode(SCOPE, POSITION, NOW)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json at all", "JSON object"),
        (["a"], "JSON object"),
        ({"previous": OLD}, "JSON object"),
        ({"current": "short"}, '"current" must be at least 32'),
        ({"current": NEW, "previous": "short"}, '"previous" must be at least 32'),
        ({"current": NEW, "previous": 7}, '"previous" must be at least 32'),
    ],
)
def test_a_malformed_value_says_what_is_wrong_and_never_shows_it(
    value: object, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        codec_from_value(value, TTL)
    assert NEW not in str(raised.value)
    assert OLD not in str(raised.value)


def test_a_malformed_secret_in_the_store_is_a_configuration_error(
    secrets: CountingClient,
) -> None:
    put(secrets, "malformed", "plain text")
    with pytest.raises(ConfigurationError, match="JSON object"):
        SecretCursors("malformed", secrets, TTL).encode(SCOPE, POSITION, NOW)
