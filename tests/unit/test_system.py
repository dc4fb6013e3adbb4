from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import ulid

from taskcore.services import is_ulid
from taskcore.system import SystemClock, UlidGenerator


class TestSystemClock:
    def test_now_is_timezone_aware_utc(self) -> None:
        now = SystemClock().now()
        assert now.tzinfo is UTC
        assert now.utcoffset() == timedelta(0)

    def test_now_is_the_current_time(self) -> None:
        before = datetime.now(UTC)
        now = SystemClock().now()
        after = datetime.now(UTC)
        assert before <= now <= after

    def test_time_moves_forward(self) -> None:
        clock = SystemClock()
        first = clock.now()
        time.sleep(0.002)
        assert clock.now() > first


class TestUlidGenerator:
    def test_an_id_is_a_26_character_ulid(self) -> None:
        new_id = UlidGenerator().new_id()
        assert type(new_id) is str
        assert len(new_id) == 26
        assert is_ulid(new_id)
        assert new_id == new_id.upper()

    def test_ids_are_unique(self) -> None:
        generator = UlidGenerator()
        ids = [generator.new_id() for _ in range(200)]
        assert len(set(ids)) == len(ids)
        assert all(is_ulid(i) for i in ids)

    def test_ids_made_milliseconds_apart_increase(self) -> None:
        generator = UlidGenerator()
        ids = []
        for _ in range(5):
            ids.append(generator.new_id())
            time.sleep(0.002)
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)

    def test_the_timestamp_prefix_never_decreases(self) -> None:
        generator = UlidGenerator()
        prefixes = [generator.new_id()[:10] for _ in range(20)]
        assert prefixes == sorted(prefixes)

    def test_the_id_encodes_the_current_time(self) -> None:
        before = datetime.now(UTC) - timedelta(milliseconds=1)
        minted = ulid.ULID.from_str(UlidGenerator().new_id()).datetime
        after = datetime.now(UTC) + timedelta(milliseconds=1)
        assert before <= minted <= after


def test_an_id_made_at_a_time_carries_that_time() -> None:
    """Ids carry their record's own creation time, so ids sort as creation times do even when
    several processes mint them (the clock is read once, for both)."""
    at = datetime(2030, 1, 1, 9, 0, 0, 123456, tzinfo=UTC)
    made = [UlidGenerator().new_id(at) for _ in range(3)]
    assert {ulid.ULID.from_str(i).datetime for i in made} == {at.replace(microsecond=123000)}
    assert len(set(made)) == 3
