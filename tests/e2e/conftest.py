"""The e2e suite's collection rule: the fuzzing-volume check runs exactly when the fuzzing does."""

from __future__ import annotations

import pytest

VOLUME_CHECK = "test_schemathesis.py::test_zz_fuzzing_volume"
FUZZ = "test_schemathesis.py::test_api"


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what they will
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the volume check when `test_api` was deselected (`-k`, a node id): it counts
    that run's requests, so without the run there is nothing to count (rather than a skip)."""
    if any(FUZZ in item.nodeid for item in items):
        return
    checks = [item for item in items if item.nodeid.endswith(VOLUME_CHECK)]
    if checks:
        config.hook.pytest_deselected(items=checks)
        items[:] = [item for item in items if item not in checks]
