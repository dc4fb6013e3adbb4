"""The `backend` fixture: the same contract tests against every TaskRepository/StatsStore.

Each test gets a fresh store: the in-memory adapters, the DynamoDB adapters on moto, or the
DynamoDB adapters on the session's DynamoDB Local engine (a new, uniquely named table).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from taskcore.testing import FixedClock, InMemoryStatsStore, InMemoryTaskRepository, SequentialIds
from tests.contract.backends import REGION, START, Backend

BACKENDS = ["memory", "moto", "dynamodb_local"]


def unique_table_name() -> str:
    return f"contract-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and no endpoint overrides or proxies: nothing can reach real AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Backend]:
    with _backend(request, request.param, approval_shards=1) as made:
        yield made


SHARDED = [(kind, shards) for kind in BACKENDS for shards in (3, 16)]
DYNAMO = [kind for kind in BACKENDS if kind != "memory"]
DYNAMO_SHARDED = [(kind, shards) for kind, shards in SHARDED if kind in DYNAMO]


@pytest.fixture(params=DYNAMO)
def dynamo_backend(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Backend]:
    """`backend` on the DynamoDB adapter only (moto, DynamoDB Local): for what only it has,
    requests on the wire and stored keys."""
    with _backend(request, request.param, approval_shards=1) as made:
        yield made


@pytest.fixture(params=DYNAMO_SHARDED, ids=[f"{kind}-{shards}" for kind, shards in DYNAMO_SHARDED])
def sharded_dynamo_backend(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Backend]:
    kind, shards = request.param
    with _backend(request, kind, approval_shards=shards) as made:
        yield made


@pytest.fixture(params=SHARDED, ids=[f"{kind}-{shards}" for kind, shards in SHARDED])
def sharded_backend(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Backend]:
    """A fresh store whose approvers' queue has several shards (`approvalQueueShards`)."""
    kind, shards = request.param
    with _backend(request, kind, approval_shards=shards) as made:
        yield made


@contextlib.contextmanager
def _backend(request: pytest.FixtureRequest, kind: str, approval_shards: int) -> Iterator[Backend]:
    clock = FixedClock(START)
    ids = SequentialIds()
    if kind == "memory":
        yield Backend(
            name=kind,
            repo=InMemoryTaskRepository(clock=clock, approval_shards=approval_shards),
            stats=InMemoryStatsStore(),
            clock=clock,
            ids=ids,
        )
        return

    from taskcore.adapters.dynamodb import DynamoStatsStore, DynamoTaskRepository, create_table

    table = unique_table_name()
    if kind == "moto":
        import boto3
        import moto

        with moto.mock_aws():
            create_table(boto3.client("dynamodb", region_name=REGION), table)
            yield Backend(
                name=kind,
                repo=DynamoTaskRepository(
                    table,
                    endpoint_url=None,
                    region=REGION,
                    clock=clock,
                    approval_shards=approval_shards,
                ),
                stats=DynamoStatsStore(table, endpoint_url=None, region=REGION),
                clock=clock,
                ids=ids,
            )
        return

    assert kind == "dynamodb_local", kind
    server = request.getfixturevalue("dynamodb_local")
    client = server.client()
    create_table(client, table)
    try:
        yield Backend(
            name=kind,
            repo=DynamoTaskRepository(
                table,
                endpoint_url=server.endpoint_url,
                region=REGION,
                clock=clock,
                approval_shards=approval_shards,
            ),
            stats=DynamoStatsStore(table, endpoint_url=server.endpoint_url, region=REGION),
            clock=clock,
            ids=ids,
        )
    finally:
        client.delete_table(TableName=table)
