"""Pytest plugin: a real DynamoDB Local engine for the whole test session.

Register it in tests/conftest.py with `pytest_plugins = ["tests.fixtures_dynamodb"]`.
"""

from collections.abc import Iterator

import pytest

from local_platform.dynamodb_local import DynamoDBLocal


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """A started in-memory engine, shared by the session: give each test its own tables."""
    # Fails (rather than skips) when java or the jar is missing: a skip would hide a broken
    # install, and the error says what to install.
    with DynamoDBLocal() as server:
        yield server
