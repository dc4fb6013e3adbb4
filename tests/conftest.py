"""Shared pytest configuration: the DynamoDB Local engine, a moto server and the local platform
are available to every test folder (each starts lazily, on first use)."""

pytest_plugins = ["tests.fixtures_dynamodb", "tests.fixtures_moto", "tests.fixtures_platform"]
