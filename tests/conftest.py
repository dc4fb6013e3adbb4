"""Shared pytest configuration: the DynamoDB Local engine is available to every test folder."""

pytest_plugins = ["tests.fixtures_dynamodb"]
