"""Ids as they arrive from outside, checked before an id reaches storage: what a ULID looks
like (path parameters; shared by the task and the export use cases), and what a user id (a
token's `sub`) may be."""

from __future__ import annotations

ULID_ALPHABET = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def is_ulid(value: str) -> bool:
    return len(value) == 26 and value[0] in "01234567" and set(value) <= ULID_ALPHABET


USER_ID_MAX = 255
"""OpenID Connect Core 1.0, section 2: the `sub` claim "MUST NOT exceed 255 ASCII characters in
length". A longer one would also make cursors longer than the API takes back, and keys longer
than DynamoDB stores."""


def is_user_id(value: str) -> bool:
    """1 to `USER_ID_MAX` printable ASCII characters, no spaces (OIDC's `sub`)."""
    return 0 < len(value) <= USER_ID_MAX and all("!" <= c <= "~" for c in value)
