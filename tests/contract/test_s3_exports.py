"""`S3ObjectSink` on moto's S3 server, and `DynamoExportRepository` on every backend.

- the `ObjectSink` contract (`object_sink_contract.py`) on S3 over real HTTP;
- a whole export through `ExportService` on DynamoDB Local + S3: more than one part (so
  multipart is really used), the object parses back to exactly the stored tasks, the
  presigned link downloads it; a failed run leaves no object and no open upload;
- the export repository's contract on memory, moto and DynamoDB Local (`backend`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from handlers.bootstrap import build_export_service
from handlers.settings import Settings
from local_platform.dynamodb_local import DynamoDBLocal, free_port
from taskcore.adapters.dynamodb import (
    DynamoExportRepository,
    DynamoTaskRepository,
    create_table,
    export_sk,
    user_pk,
)
from taskcore.adapters.s3 import S3ObjectSink
from taskcore.errors import ConcurrentModification, Conflict, NotFound, Unavailable
from taskcore.model import Export, ExportId, ExportStatus, Task, TaskId, UserId
from taskcore.ports import MIN_PART_SIZE, ExportRepository, ObjectSink
from taskcore.serialization import task_to_json
from taskcore.services import NDJSON, ExportService, export_key
from taskcore.testing import FixedClock, InMemoryExportRepository, SequentialIds
from tests.contract.backends import REGION, START, Backend
from tests.contract.object_sink_contract import CONTRACT, SinkUnderTest


@pytest.fixture
def sink(s3_endpoint: str) -> S3ObjectSink:
    bucket = f"exports-{uuid.uuid4().hex[:12]}"
    sink = S3ObjectSink(bucket, endpoint_url=s3_endpoint)
    sink.client.create_bucket(Bucket=bucket)
    return sink


def read(sink: S3ObjectSink, key: str) -> bytes | None:
    try:
        body: bytes = sink.client.get_object(Bucket=sink.bucket, Key=key)["Body"].read()
    except sink.client.exceptions.NoSuchKey:
        return None
    return body


def open_uploads(sink: S3ObjectSink) -> set[str]:
    listed = sink.client.list_multipart_uploads(Bucket=sink.bucket)
    return {u["UploadId"] for u in listed.get("Uploads", [])}


def under_test(sink: S3ObjectSink) -> SinkUnderTest:
    return SinkUnderTest(
        sink=sink, read=lambda key: read(sink, key), open_uploads=lambda: open_uploads(sink)
    )


# -- the sink contract on S3 ------------------------------------------------------------------


def test_satisfies_the_port(sink: S3ObjectSink) -> None:
    port: ObjectSink = sink
    assert port is sink


# Where moto's S3 is not S3 (S3 answers NoSuchUpload, which the adapter maps to NotFound):
# strict, so a moto that fixes them makes these fail until they are removed from the list.
MOTO_DEVIATIONS = {
    "a_finished_upload_takes_no_more_parts": "moto answers 500 for parts of an aborted upload "
    "and accepts a second completion",
    "an_upload_belongs_to_its_key": "moto does not tie an upload id to its key",
}


@pytest.mark.parametrize(
    "check",
    [
        pytest.param(
            check,
            id=check.__name__,
            marks=[pytest.mark.xfail(strict=True, reason=MOTO_DEVIATIONS[check.__name__])]
            if check.__name__ in MOTO_DEVIATIONS
            else [],
        )
        for check in CONTRACT
    ],
)
def test_contract(sink: S3ObjectSink, check: Any) -> None:
    check(under_test(sink), f"exports/alice/{uuid.uuid4().hex}.ndjson")


def test_content_type_and_download_link(sink: S3ObjectSink) -> None:
    key = "exports/alice/01JD00000000000000000000AB.ndjson"
    upload_id = sink.start_upload(key, content_type=NDJSON)
    sink.complete_upload(key, upload_id, [sink.upload_part(key, upload_id, 1, b'{"a":1}\n')])
    assert sink.client.head_object(Bucket=sink.bucket, Key=key)["ContentType"] == NDJSON
    url = sink.presign_download(key, filename="tasks-01JD.ndjson", expires_in=60)
    response = httpx.get(url, trust_env=False)
    assert response.status_code == 200
    assert response.content == b'{"a":1}\n'
    assert 'filename="tasks-01JD.ndjson"' in response.headers["content-disposition"]


def test_kms_key_is_requested_when_configured(sink: S3ObjectSink) -> None:
    calls: list[dict[str, Any]] = []
    sink.client.meta.events.register(
        "provide-client-params.s3.CreateMultipartUpload",
        lambda params, **_: calls.append(dict(params)),
    )
    encrypted = S3ObjectSink(sink.bucket, client=sink.client, sse_kms_key_id="alias/tasks")
    upload_id = encrypted.start_upload("k", content_type=NDJSON)
    encrypted.abort_upload("k", upload_id)
    assert calls[0]["ServerSideEncryption"] == "aws:kms"
    assert calls[0]["SSEKMSKeyId"] == "alias/tasks"


def test_built_from_settings() -> None:
    service = build_export_service(
        Settings.from_environment(
            {
                "TABLE_NAME": "t",
                "BUCKET_NAME": "b",
                "S3_ENDPOINT": "http://127.0.0.1:1",
                "AWS_REGION": "eu-west-1",
            }
        )
    )
    sink = service.objects
    assert isinstance(sink, S3ObjectSink)
    assert (sink.bucket, sink.endpoint_url, sink.region, sink.sse_kms_key_id) == (
        "b",
        "http://127.0.0.1:1",
        "eu-west-1",
        None,
    )


def test_errors_become_domain_errors(s3_endpoint: str) -> None:
    missing = S3ObjectSink("no-such-bucket", endpoint_url=s3_endpoint)
    with pytest.raises(Unavailable, match="misconfigured"):
        missing.start_upload("k", content_type=NDJSON)
    unreachable = S3ObjectSink("b", endpoint_url=f"http://127.0.0.1:{free_port()}", retries=0)
    with pytest.raises(Unavailable, match="unavailable"):
        unreachable.start_upload("k", content_type=NDJSON)


# -- a whole export on DynamoDB Local + S3 ------------------------------------------------------


@pytest.fixture
def table(dynamodb_local: DynamoDBLocal, aws_env: None) -> Iterator[str]:
    name = f"exports-{uuid.uuid4().hex[:12]}"
    client = dynamodb_local.client()
    create_table(client, name)
    try:
        yield name
    finally:
        client.delete_table(TableName=name)


def seed(
    repo: DynamoTaskRepository, owner: str, count: int, *, description: str = ""
) -> list[Task]:
    """`count` tasks of `owner`, written in parallel; returned newest first (export order)."""
    ids = SequentialIds()
    tasks = [
        Task.new(
            id=TaskId(ids.new_id()),
            owner_id=UserId(owner),
            title=f"task {n} ✓",
            description=description,
            tags=("export", f"n{n % 7}"),
            now=START + timedelta(seconds=n),
        )
        for n in range(count)
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(repo.add, tasks))
    return sorted(tasks, key=lambda t: t.id, reverse=True)


def parse(ndjson: bytes) -> list[dict[str, Any]]:
    assert ndjson.endswith(b"\n") or not ndjson
    return [json.loads(line) for line in ndjson.decode("utf-8").splitlines()]


def test_export_uses_multipart_and_parses_back(
    table: str, dynamodb_local: DynamoDBLocal, sink: S3ObjectSink
) -> None:
    repo = DynamoTaskRepository(table, endpoint_url=dynamodb_local.endpoint_url, region=REGION)
    expected = seed(repo, "alice", 1500, description="d" * 3800)  # ~5.9 MB: two parts
    seed(repo, "bob", 20)
    clock = FixedClock(START + timedelta(days=1))
    exports = DynamoExportRepository(table, endpoint_url=dynamodb_local.endpoint_url, region=REGION)
    parts: list[int] = []
    sink.client.meta.events.register(
        "provide-client-params.s3.UploadPart", lambda params, **_: parts.append(len(params["Body"]))
    )
    service = ExportService(
        exports=exports,
        tasks=repo,
        objects=sink,
        clock=clock,
        ids=SequentialIds(10_000),
        part_size=MIN_PART_SIZE,
    )
    requested = service.request_export(alice := _principal("alice"))
    done = service.run_export(UserId("alice"), requested.id)
    assert done is not None
    assert (done.status, done.items_written) == (ExportStatus.COMPLETED, 1500)
    assert len(parts) == 2
    assert parts[0] >= MIN_PART_SIZE
    body = read(sink, export_key("alice", requested.id))
    assert body is not None
    assert done.bytes_written == len(body)
    assert parse(body) == [task_to_json(t) for t in expected]
    assert open_uploads(sink) == set()
    view = service.get_export(alice, requested.id)
    assert view.download_url is not None
    assert httpx.get(view.download_url, trust_env=False).content == body


def test_a_failed_run_leaves_no_object_and_no_upload(
    table: str, dynamodb_local: DynamoDBLocal, sink: S3ObjectSink
) -> None:
    repo = DynamoTaskRepository(table, endpoint_url=dynamodb_local.endpoint_url, region=REGION)
    seed(repo, "alice", 1400, description="d" * 3800)  # the first part is sent, then it fails

    class FailsOnThePage(DynamoTaskRepository):
        pages = 0

        def list_owned(self, *args: Any, **kwargs: Any) -> Any:
            FailsOnThePage.pages += 1
            if FailsOnThePage.pages == 13:
                raise Unavailable("the task store is unavailable (throttled)")
            return super().list_owned(*args, **kwargs)

    failing = FailsOnThePage(table, endpoint_url=dynamodb_local.endpoint_url, region=REGION)
    exports = DynamoExportRepository(table, endpoint_url=dynamodb_local.endpoint_url, region=REGION)
    service = ExportService(
        exports=exports,
        tasks=failing,
        objects=sink,
        clock=FixedClock(START),
        ids=SequentialIds(10_000),
        part_size=MIN_PART_SIZE,
    )
    requested = service.request_export(_principal("alice"))
    with pytest.raises(Unavailable):
        service.run_export(UserId("alice"), requested.id)
    failed = exports.get(UserId("alice"), requested.id)
    assert failed is not None
    assert (failed.status, failed.error) == (ExportStatus.FAILED, "storage was unavailable")
    assert read(sink, export_key("alice", requested.id)) is None
    assert open_uploads(sink) == set()
    # A retry starts from scratch and completes.
    done = attrs_evolve(service, tasks=repo).run_export(UserId("alice"), requested.id)
    assert done is not None
    assert (done.status, done.attempts, done.items_written) == (ExportStatus.COMPLETED, 2, 1400)
    assert open_uploads(sink) == set()


def _principal(user: str) -> Any:
    from taskcore.testing import principal

    return principal(user)


def attrs_evolve(service: ExportService, **changes: Any) -> ExportService:
    import attrs

    return attrs.evolve(service, **changes)


# -- the export repository contract on every backend ---------------------------------------------


@pytest.fixture
def exports(backend: Backend) -> ExportRepository:
    if backend.name == "memory":
        return InMemoryExportRepository()
    repo = backend.repo
    assert isinstance(repo, DynamoTaskRepository)
    return DynamoExportRepository(repo.table_name, endpoint_url=repo.endpoint_url, region=REGION)


def new_export(backend: Backend, owner: str = "alice") -> Export:
    return Export.new(
        id=ExportId(backend.ids.new_id()),
        owner_id=UserId(owner),
        now=backend.clock.advance(timedelta(seconds=1)),
    )


class TestExportRepositoryContract:
    def test_round_trip_through_every_state(self, backend: Backend, exports: Any) -> None:
        export = new_export(backend)
        exports.add(export)
        assert exports.get(export.owner_id, export.id) == export
        now = backend.clock.advance(timedelta(seconds=1))
        running = export.start(now, "upload-ü-1")
        exports.save(running, expected_version=export.version)
        progressed = running.progress(now, items=1000, size=123_456)
        exports.save(progressed, expected_version=running.version)
        assert exports.get(export.owner_id, export.id) == progressed
        failed = progressed.fail(now, "storage was unavailable")
        exports.save(failed, expected_version=progressed.version)
        assert exports.get(export.owner_id, export.id) == failed
        again = failed.start(now, "upload-2")
        exports.save(again, expected_version=failed.version)
        done = again.complete(now, items=2000, size=10**10)
        exports.save(done, expected_version=again.version)
        assert exports.get(export.owner_id, export.id) == done

    def test_add_twice_is_a_conflict(self, backend: Backend, exports: Any) -> None:
        export = new_export(backend)
        exports.add(export)
        started = export.start(backend.clock.now(), "u")
        exports.save(started, expected_version=export.version)
        with pytest.raises(Conflict):
            exports.add(export)  # a redelivered request never resets an export
        assert exports.get(export.owner_id, export.id) == started

    def test_save_is_conditional_on_the_version(self, backend: Backend, exports: Any) -> None:
        export = new_export(backend)
        exports.add(export)
        first = export.start(backend.clock.now(), "first")
        second = export.start(backend.clock.now(), "second")
        exports.save(first, expected_version=export.version)
        with pytest.raises(ConcurrentModification):
            exports.save(second, expected_version=export.version)
        assert exports.get(export.owner_id, export.id) == first

    def test_save_of_a_missing_export_is_not_found(self, backend: Backend, exports: Any) -> None:
        export = new_export(backend)
        with pytest.raises(NotFound):
            exports.save(export.start(backend.clock.now(), "u"), expected_version=1)
        assert exports.get(export.owner_id, export.id) is None

    def test_owners_are_isolated(self, backend: Backend, exports: Any) -> None:
        export = new_export(backend, "alice")
        exports.add(export)
        assert exports.get(UserId("mallory"), export.id) is None
        assert exports.get(UserId("alice"), ExportId(backend.ids.new_id())) is None

    def test_exports_never_show_up_among_tasks(self, backend: Backend, exports: Any) -> None:
        task = backend.new_task("alice")
        backend.repo.add(task)
        exports.add(new_export(backend, "alice"))
        page = backend.repo.list_owned(
            UserId("alice"), status=None, priority=None, limit=100, after=None
        )
        assert page.items == (task,)
        for status in (None, task.status):
            for priority in (None, task.priority):
                listed = backend.repo.list_owned(
                    UserId("alice"), status=status, priority=priority, limit=100, after=None
                )
                assert listed.items == (task,)


def test_export_item_keys(dynamodb_local: DynamoDBLocal, table: str) -> None:
    """The keys the stream handler derives `ExportRequested` from (the cross-team contract)."""
    exports = DynamoExportRepository(table, endpoint_url=dynamodb_local.endpoint_url, region=REGION)
    export = Export.new(
        id=ExportId("01JD00000000000000000000AB"), owner_id=UserId("a#b"), now=START
    )
    exports.add(export)
    item = dynamodb_local.client().get_item(
        TableName=table,
        Key={"pk": {"S": "USER#a#b"}, "sk": {"S": "EXPORT#01JD00000000000000000000AB"}},
    )["Item"]
    assert (item["pk"]["S"], item["sk"]["S"]) == (user_pk("a#b"), export_sk(export.id))
    assert not {"lsi1sk", "lsi2sk", "gsi1pk"} & set(item)
    assert (item["exportId"]["S"], item["ownerId"]["S"]) == (export.id, "a#b")
