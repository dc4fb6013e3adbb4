"""What both HTTP functions read from a verified token, and how they answer a refused one:
plain functions with no dependency, so the download function does not import the API's
resolver to use them."""

from __future__ import annotations

import re

__all__ = ["challenge", "parse_groups"]


def challenge(reason: str) -> str:
    """The `WWW-Authenticate` value for a refused token (RFC 6750 section 3)."""
    if reason == "no bearer token":
        return "Bearer"
    return f'Bearer error="invalid_token", error_description="{reason.replace(chr(34), chr(39))}"'


def parse_groups(value: object) -> frozenset[str]:
    """Groups as API Gateway passes them: a list, or a string like "[approvers admins]"."""
    if isinstance(value, list):
        return frozenset(str(v) for v in value)
    if isinstance(value, str):
        return frozenset(re.split(r"[\s,]+", value.strip().strip("[]").strip())) - {""}
    return frozenset()
