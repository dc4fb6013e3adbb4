"""The production clock and id generator: pure Python, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime

import ulid


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UlidGenerator:
    def new_id(self) -> str:
        return str(ulid.ULID())
