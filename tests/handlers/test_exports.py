"""The export worker (`handlers.exports`), driven with EventBridge events as the rule delivers
them: with in-memory adapters, and end to end through the real composition root on DynamoDB
Local and moto's S3 server (5,000 tasks, downloaded through the presigned link and parsed back).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import httpx
import pytest

from handlers import bootstrap, exports
from handlers.settings import Settings
from local_platform.dynamodb_local import DynamoDBLocal
from local_platform.lambda_runtime import handler_context
from stack.manifest import EXPORTS, function
from taskcore.adapters.dynamodb import create_table
from taskcore.adapters.s3 import build_client
from taskcore.commands import CreateTask
from taskcore.errors import DeadlineExceeded, Unavailable
from taskcore.model import ExportStatus, Task, TaskId, UserId
from taskcore.serialization import task_to_json
from taskcore.services import export_key
from taskcore.testing import Fakes, InMemoryObjectSink, SequentialIds, in_memory_service, principal

ALICE = principal("alice")


def export_requested(export_id: str, owner_id: str, **overrides: Any) -> dict[str, Any]:
    """An EventBridge event as the `export-requested` rule delivers it to its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ExportRequested",
        "source": "tasks",
        "account": "123456789012",
        "time": "2026-11-22T23:28:06Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {"exportId": export_id, "ownerId": owner_id},
        **overrides,
    }


def test_the_manifest_routes_export_requested_here() -> None:
    worker = function("exports")
    assert worker is EXPORTS
    assert worker.handler == "handlers.exports:worker"
    ((rule,),) = (worker.rules,)
    assert rule.pattern == {"source": ["tasks"], "detail-type": ["ExportRequested"]}
    event = export_requested("01JD00000000000000000000AB", "alice")
    assert event["source"] in rule.pattern["source"]
    assert event["detail-type"] in rule.pattern["detail-type"]
    assert worker.permissions == {"table.read", "table.write", "bucket.write"}
    assert dict(worker.environment) == {"TABLE_NAME": "table.name", "BUCKET_NAME": "bucket.name"}
    assert worker.timeout_s == 900


# -- with in-memory adapters --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    """`handle` adds metrics that only the entry point's decorator flushes: start clean."""
    exports.metrics.clear_metrics()
    yield
    exports.metrics.clear_metrics()


@pytest.fixture
def fakes() -> Fakes:
    return in_memory_service()


def requested_with_tasks(fakes: Fakes, count: int) -> tuple[str, list[Task]]:
    tasks = [fakes.service.create_task(ALICE, CreateTask(title=f"t{n}")).task for n in range(count)]
    return fakes.export_service.request_export(ALICE).id, tasks


class TestHandle:
    def test_runs_the_export_the_event_names(self, fakes: Fakes) -> None:
        export_id, tasks = requested_with_tasks(fakes, 3)
        result = exports.handle(
            export_requested(export_id, "alice"), handler_context(EXPORTS), fakes.export_service
        )
        body = fakes.objects.objects[export_key("alice", export_id)]
        assert result == {
            "exportId": export_id,
            "status": "completed",
            "itemsWritten": 3,
            "bytesWritten": len(body),
        }
        lines = [json.loads(line) for line in body.decode().splitlines()]
        assert lines == [task_to_json(t) for t in reversed(tasks)]

    def test_a_redelivered_event_is_skipped(self, fakes: Fakes) -> None:
        export_id, _ = requested_with_tasks(fakes, 2)
        event = export_requested(export_id, "alice")
        exports.handle(event, handler_context(EXPORTS), fakes.export_service)
        again = exports.handle(event, handler_context(EXPORTS), fakes.export_service)
        assert again == {"exportId": export_id, "status": "skipped"}
        assert len(fakes.objects.completed) == 1

    def test_the_owner_comes_with_the_event_so_another_owner_finds_nothing(
        self, fakes: Fakes
    ) -> None:
        export_id, _ = requested_with_tasks(fakes, 2)
        result = exports.handle(
            export_requested(export_id, "mallory"), handler_context(EXPORTS), fakes.export_service
        )
        assert result["status"] == "skipped"
        assert fakes.objects.objects == {}

    @pytest.mark.parametrize(
        ("event", "reason"),
        [
            (["not", "an", "object"], "not a JSON object"),
            (export_requested("01JD00000000000000000000AB", "a", source="other"), "not an"),
            (export_requested("01JD00000000000000000000AB", "a", **{"detail-type": "X"}), "not"),
            (export_requested("01JD00000000000000000000AB", "a", detail="{}"), "no detail"),
            (export_requested("../../etc", "alice"), "exportId"),
            (export_requested("01JD00000000000000000000AB", ""), "ownerId"),
            (export_requested("01JD00000000000000000000AB", 7), "ownerId"),  # type: ignore[arg-type]
        ],
    )
    def test_malformed_events_are_dropped(self, fakes: Fakes, event: Any, reason: str) -> None:
        result = exports.handle(event, handler_context(EXPORTS), fakes.export_service)
        assert result["status"] == "ignored"
        assert reason in result["reason"]
        assert fakes.objects.uploads == {}

    def test_a_failed_run_is_raised_for_a_retry(self, fakes: Fakes) -> None:
        class Down(InMemoryObjectSink):
            def upload_part(self, *_: Any, **__: Any) -> Any:
                raise Unavailable("S3 is down")

        export_id, _ = requested_with_tasks(fakes, 1)
        service = attrs.evolve(fakes.export_service, objects=Down())
        with pytest.raises(Unavailable):
            exports.handle(export_requested(export_id, "alice"), handler_context(EXPORTS), service)
        stored = next(iter(fakes.exports.exports.values()))
        assert stored.status is ExportStatus.FAILED

    def test_the_runtime_deadline_comes_from_the_context(self, fakes: Fakes) -> None:
        export_id, _ = requested_with_tasks(fakes, 1)
        context = handler_context(EXPORTS, remaining_ms=10_000)  # less than the service's margin
        with pytest.raises(DeadlineExceeded):
            exports.handle(export_requested(export_id, "alice"), context, fakes.export_service)


def test_the_entry_point_logs_and_emits_metrics(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bootstrap, "export_service", lambda: fakes.export_service)
    export_id, _ = requested_with_tasks(fakes, 4)
    result = exports.worker(export_requested(export_id, "alice"), handler_context(EXPORTS))
    assert result["status"] == "completed"
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    metrics = next(e for e in emitted if "ExportsCompleted" in e)
    assert (metrics["ExportsCompleted"], metrics["TasksExported"]) == ([1.0], [4.0])
    assert metrics["service"] == "exports"


# -- end to end: the real worker on DynamoDB Local and moto's S3 --------------------------------


@pytest.fixture
def environment(
    dynamodb_local: DynamoDBLocal, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The worker's environment as the manifest declares it, resolved to local stand-ins."""
    table, bucket = f"tasks-{uuid.uuid4().hex[:10]}", f"bucket-{uuid.uuid4().hex[:10]}"
    client = dynamodb_local.client()
    create_table(client, table)
    build_client(s3_endpoint, "us-east-1").create_bucket(Bucket=bucket)
    env = {
        "TABLE_NAME": table,
        "BUCKET_NAME": bucket,
        "DYNAMODB_ENDPOINT": dynamodb_local.endpoint_url,
        "S3_ENDPOINT": s3_endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    assert set(EXPORTS.environment) <= set(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bootstrap.export_service.cache_clear()
    try:
        yield env
    finally:
        bootstrap.export_service.cache_clear()
        client.delete_table(TableName=table)


def seed(env: dict[str, str], owner: str, count: int) -> list[Task]:
    """`count` tasks, written straight through the repository by 16 threads; newest first."""
    repo = bootstrap.build_task_repository(Settings.from_environment(env))
    ids = SequentialIds()
    start = datetime(2030, 1, 1, 9, 0, 0, 123456, tzinfo=UTC)
    tasks = [
        Task.new(
            id=TaskId(ids.new_id()),
            owner_id=UserId(owner),
            title=f"Task {n}: ünïcødé ✓",
            description=f"line one\nline two of {n}",
            tags=("export", f"batch-{n % 10}"),
            now=start + timedelta(milliseconds=n),
        )
        for n in range(count)
    ]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(repo.add, tasks))
    return sorted(tasks, key=lambda t: t.id, reverse=True)


def test_worker_exports_5000_tasks_end_to_end(environment: dict[str, str]) -> None:
    expected = seed(environment, "alice", 5000)
    seed(environment, "bob", 50)
    # The API side: what POST /exports does (same adapters, from the same environment).
    api = bootstrap.build_export_service(Settings.from_environment(environment))
    requested = api.request_export(ALICE)
    event = export_requested(requested.id, "alice")

    result = exports.worker(event, handler_context(EXPORTS))

    assert (result["status"], result["itemsWritten"]) == ("completed", 5000)
    view = api.get_export(ALICE, requested.id)
    assert view.export.status is ExportStatus.COMPLETED
    assert view.export.items_written == 5000
    assert view.download_url is not None
    download = httpx.get(view.download_url, trust_env=False, timeout=30)
    assert download.status_code == 200
    lines = download.content.decode("utf-8").splitlines()
    assert len(download.content) == view.export.bytes_written == result["bytesWritten"]
    assert [json.loads(line) for line in lines] == [task_to_json(t) for t in expected]

    # Redelivered, even twice at once: nothing is uploaded again, nothing changes.
    s3 = build_client(environment["S3_ENDPOINT"], "us-east-1")
    bucket, key = environment["BUCKET_NAME"], export_key("alice", requested.id)
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    with ThreadPoolExecutor(2) as pool:
        again = list(pool.map(lambda _: exports.worker(event, handler_context(EXPORTS)), range(2)))
    assert [r["status"] for r in again] == ["skipped", "skipped"]
    assert s3.head_object(Bucket=bucket, Key=key)["ETag"] == etag
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert api.get_export(ALICE, requested.id).export == view.export


def test_two_workers_racing_on_one_event_export_once(environment: dict[str, str]) -> None:
    expected = seed(environment, "alice", 300)
    api = bootstrap.build_export_service(Settings.from_environment(environment))
    requested = api.request_export(ALICE)
    event = export_requested(requested.id, "alice")
    services = [
        bootstrap.build_export_service(Settings.from_environment(environment)) for _ in range(2)
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(
                lambda service: exports.handle(event, handler_context(EXPORTS), service), services
            )
        )
    assert sorted(r["status"] for r in results) == ["completed", "skipped"]
    s3 = build_client(environment["S3_ENDPOINT"], "us-east-1")
    bucket = environment["BUCKET_NAME"]
    body = s3.get_object(Bucket=bucket, Key=export_key("alice", requested.id))["Body"].read()
    assert [json.loads(line) for line in body.splitlines()] == [task_to_json(t) for t in expected]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    final = api.get_export(ALICE, requested.id).export
    assert (final.status, final.attempts) == (ExportStatus.COMPLETED, 1)
