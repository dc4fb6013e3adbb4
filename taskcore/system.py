"""The production clock and id generator: pure Python, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime

import ulid


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UlidGenerator:
    def new_id(self, at: datetime | None = None) -> str:
        return str(ulid.ULID() if at is None else ulid.ULID.from_datetime(at))
