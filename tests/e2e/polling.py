"""Waiting for what happens asynchronously (events, consumers), shared by the e2e tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    """Poll until `check()` returns something truthy (events are asynchronous)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)
