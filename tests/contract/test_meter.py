"""The meter counts what AWS bills, on the wire, against the real emulators.

DynamoDB Local answers `ReturnConsumedCapacity` per table and index; moto takes PutEvents and
Publish. What the sandboxes and the gateway record is tested through the platform
(tests/e2e/test_meter_e2e.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from local_platform.dynamodb_local import DynamoDBLocal
from local_platform.meter import CHUNK_BYTES, Meter, WireMeter, chunks, read_records
from taskcore.adapters.dynamodb import create_table


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(proxies={}),
    )


@pytest.fixture
def table(dynamodb_local: DynamoDBLocal) -> Iterator[tuple[Any, str]]:
    dynamodb = client("dynamodb", dynamodb_local.endpoint_url)
    name = f"meter-{uuid.uuid4().hex[:8]}"
    create_table(dynamodb, name)
    yield dynamodb, name
    dynamodb.delete_table(TableName=name)


def task_item(pk: str, **extra: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "TASK#1"}, "lsi1sk": {"S": "x"}, **extra}


def test_a_write_counts_the_table_and_each_index_it_touches(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    meter = WireMeter().attach(dynamodb)
    dynamodb.put_item(
        TableName=name,
        Item=task_item("USER#a", gsi1pk={"S": "AWAITING_APPROVAL"}, gsi1sk={"S": "1"}),
    )
    taken = meter.take()
    assert taken["requests"] == {"dynamodb.PutItem": 1}
    assert taken["capacity"] == {
        f"{name}:write": 1.0,
        f"{name}/ByStatusIndex:write": 1.0,
        f"{name}/AwaitingApprovalIndex:write": 1.0,
    }
    assert meter.take() == {"requests": {}, "capacity": {}, "chunks": {}}  # taken, so reset


def test_a_write_of_several_kb_counts_a_unit_per_kb(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    meter = WireMeter().attach(dynamodb)
    dynamodb.put_item(
        TableName=name, Item={"pk": {"S": "USER#b"}, "sk": {"S": "X"}, "d": {"S": "x" * 2500}}
    )
    assert meter.take()["capacity"] == {f"{name}:write": 3.0}


def test_a_transaction_costs_two_units_per_item_even_where_dynamodb_local_says_less(
    table: tuple[Any, str],
) -> None:
    dynamodb, name = table
    meter = WireMeter().attach(dynamodb)
    answer = dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": name, "Item": {"pk": {"S": "USER#c"}, "sk": {"S": "EVENT#1"}}}},
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": {"S": "USER#c"}, "sk": {"S": "STATS"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
    )
    # What the emulator reports (the meter asked for it): 2 for the two items together.
    assert answer["ConsumedCapacity"][0]["CapacityUnits"] == 2.0
    assert meter.take()["capacity"] == {f"{name}:write": 4.0}


def test_reads_count_read_units(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    dynamodb.put_item(TableName=name, Item=task_item("USER#d"))
    meter = WireMeter().attach(dynamodb)
    dynamodb.query(
        TableName=name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "USER#d"}},
    )
    dynamodb.get_item(
        TableName=name, Key={"pk": {"S": "USER#d"}, "sk": {"S": "TASK#1"}}, ConsistentRead=True
    )
    taken = meter.take()
    assert taken["requests"] == {"dynamodb.Query": 1, "dynamodb.GetItem": 1}
    assert taken["capacity"] == {f"{name}:read": 1.5}  # 0.5 eventually + 1 strongly consistent


def test_events_and_messages_are_counted_in_64_kb_chunks(s3_endpoint: str) -> None:
    events, sns = client("events", s3_endpoint), client("sns", s3_endpoint)
    meter = WireMeter().attach(events)
    meter.attach(sns)
    entry = {"Source": "tasks", "DetailType": "T", "Detail": json.dumps({"a": "b"})}
    big = {**entry, "Detail": json.dumps({"a": "x" * (CHUNK_BYTES + 10)})}
    events.put_events(Entries=[entry, entry, big])
    topic = sns.create_topic(Name=f"meter-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.publish(TopicArn=topic, Message="y" * (CHUNK_BYTES * 2 + 1))
    taken = meter.take()
    assert taken["chunks"] == {"eventbridge.PutEvents": 4, "sns.Publish": 3}
    assert taken["requests"] == {
        "eventbridge.PutEvents": 1,
        "sns.CreateTopic": 1,
        "sns.Publish": 1,
    }


def test_chunks_are_at_least_one() -> None:
    assert [chunks(n) for n in (0, 1, CHUNK_BYTES, CHUNK_BYTES + 1)] == [1, 1, 1, 2]


def test_the_meter_file_is_read_a_complete_line_at_a_time(tmp_path: Any) -> None:
    path = tmp_path / "meter.jsonl"
    assert read_records(path) == ([], 0)
    meter = Meter(path)
    meter.record("api", status=200)
    records, offset = read_records(path)
    assert records == [{"kind": "api", "status": 200}]
    line = json.dumps({"kind": "invocation", "function": "api"})
    with path.open("a") as file:
        file.write(line[:10])  # a line half written
    assert read_records(path, offset) == ([], offset)
    with path.open("a") as file:
        file.write(line[10:] + "\n")
    records, _ = read_records(path, offset)
    assert records == [{"kind": "invocation", "function": "api"}]
