"""Ids as they arrive from outside (path parameters): what a ULID looks like, checked before
an id reaches storage. Shared by the task and the export use cases."""

from __future__ import annotations

ULID_ALPHABET = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def is_ulid(value: str) -> bool:
    return len(value) == 26 and value[0] in "01234567" and set(value) <= ULID_ALPHABET
