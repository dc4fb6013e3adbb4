"""Shared pytest configuration: the DynamoDB Local engine and the local platform are available
to every test folder (both start lazily, on first use)."""

pytest_plugins = ["tests.fixtures_dynamodb", "tests.fixtures_platform"]
