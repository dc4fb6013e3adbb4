"""Pytest plugin: the local platform as a user runs it (`python -m local_platform` in a
subprocess, over HTTP), shared by the e2e and reliability suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_platform.process import Platform, start_platform


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    """One platform for the e2e session, unthrottled (bulk tests); see `throttled_platform`."""
    running = start_platform("--no-throttle")
    yield running
    assert running.stop() == 0, "\n".join(running.output)


@pytest.fixture(scope="session")
def throttled_platform() -> Iterator[Platform]:
    """A platform with a tiny stage limit (1 req/s, burst 5), to see 429s deterministically."""
    running = start_platform("--throttle-rate", "1", "--throttle-burst", "5")
    yield running
    assert running.stop() == 0, "\n".join(running.output)
