"""One table, one botocore client: every DynamoDB adapter of a table shares PynamoDB's
connection, whichever arguments it binds the models with (no request is sent here)."""

from __future__ import annotations

from taskcore.adapters.dynamodb import (
    DynamoExportRepository,
    DynamoStatsStore,
    DynamoTaskRepository,
    TableClient,
    bind_models,
)

ENDPOINT = "http://127.0.0.1:9"  # never contacted: building a client sends nothing


def test_a_default_argument_binds_the_same_models_as_an_explicit_one() -> None:
    assert bind_models("binding", ENDPOINT, "eu-west-1") is bind_models(
        "binding", ENDPOINT, "eu-west-1", 3
    )
    assert bind_models("binding", ENDPOINT, "eu-west-1", retries=1) is not bind_models(
        "binding", ENDPOINT, "eu-west-1"
    )


def test_every_adapter_of_a_table_uses_one_client() -> None:
    tasks = DynamoTaskRepository("shared", endpoint_url=ENDPOINT, region="eu-west-1")
    stats = DynamoStatsStore("shared", endpoint_url=ENDPOINT, region="eu-west-1")
    table = TableClient("shared", endpoint_url=ENDPOINT, region="eu-west-1")
    exports = DynamoExportRepository("shared", endpoint_url=ENDPOINT, region="eu-west-1")
    client = tasks.models.connection.client
    assert stats._client is client
    assert table.client is client
    assert exports.model._get_connection().connection.client is client
