"""`S3ArchiveStore` on moto's S3 server (a versioned bucket, as infra makes it), and
`ArchiveService` on it.

- the `ArchiveStore` contract (`archive_store_contract.py`) on memory and on S3 over HTTP;
- objects written with SSE-KMS under the configured key and an S3 Bucket Key;
- a write lost to another archiver is refused by S3 (412) and retried from a fresh read;
- concurrent archivers of one month, and redelivered events: every task once;
- the presigned month download.

What was measured about moto (5.2.5): it honours `If-Match` and `If-None-Match: *` on PutObject
(412 `PreconditionFailed` for a stale ETag or an existing object; 404 `NoSuchKey` for `If-Match`
on a missing key, as S3 answers). But it checks the condition in its request handler and stores
the object a few statements later, with no lock in between (moto/s3/responses.py, put_object),
where S3 makes the check and the write one atomic step. So two writers could both pass the check
if moto's threads switched exactly there. Measured: 8 threads appending 25 lines each to one
object by read-modify-write (~630 412s per run) lost nothing in 4 runs. The deterministic race
below (`test_a_write_lost_to_another_archiver_is_retried`) is what proves the retry path; the
threaded test is evidence under real concurrency, not a proof of S3's atomicity.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from taskcore.adapters.s3 import S3ArchiveStore
from taskcore.errors import Unavailable
from taskcore.model import Status, Task
from taskcore.ports import ArchiveStore, StoredObject
from taskcore.serialization import task_to_ndjson
from taskcore.services.archive import ArchiveService, archive_key
from taskcore.testing import FixedClock, InMemoryArchiveStore, build_task, principal
from tests.contract.archive_store_contract import CONTRACT

T0 = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)


def completed(n: int, owner: str = "alice") -> Task:
    task = build_task(n=n, owner=owner, now=T0 - timedelta(hours=1))
    return task.transition_to(Status.IN_PROGRESS, T0).transition_to(Status.COMPLETED, T0)


@pytest.fixture(scope="module")
def key_arn(s3_endpoint: str) -> str:
    kms = boto3.client(
        "kms",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(proxies={}),
    )
    return str(kms.create_key(Description="the stack's key")["KeyMetadata"]["Arn"])


@pytest.fixture
def store(s3_endpoint: str, key_arn: str) -> S3ArchiveStore:
    bucket = f"archive-{uuid.uuid4().hex[:12]}"
    store = S3ArchiveStore(bucket, endpoint_url=s3_endpoint, sse_kms_key_id=key_arn)
    store.client.create_bucket(Bucket=bucket)
    store.client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return store


@pytest.fixture(params=["memory", "s3"])
def any_store(request: pytest.FixtureRequest) -> Iterator[ArchiveStore]:
    if request.param == "memory":
        yield InMemoryArchiveStore()
    else:
        yield request.getfixturevalue("store")


def test_satisfies_the_port(store: S3ArchiveStore) -> None:
    port: ArchiveStore = store
    assert port is store


@pytest.mark.parametrize("check", CONTRACT, ids=[check.__name__ for check in CONTRACT])
def test_contract(any_store: ArchiveStore, check: Any) -> None:
    check(any_store, f"archive/alice-{uuid.uuid4().hex[:6]}/")


def test_objects_are_written_with_the_stack_s_key(store: S3ArchiveStore, key_arn: str) -> None:
    key = "archive/alice/2030-01.ndjson"
    store.write(key, b"x\n", replacing=None)
    head = store.client.head_object(Bucket=store.bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key_arn
    assert head["BucketKeyEnabled"] is True
    assert head["ContentType"] == "application/x-ndjson"


def test_a_missing_month_is_listed_not_fetched(store: S3ArchiveStore) -> None:
    """A GetObject of a missing key is a 403 to a caller whose `s3:ListBucket` is limited to a
    prefix: the store lists instead, and fetches only what exists."""
    sent: list[str] = []
    store.client.meta.events.register(
        "before-call.s3.*", lambda model, **_: sent.append(model.name)
    )
    assert store.read("archive/alice/2030-01.ndjson") is None
    assert sent == ["ListObjectsV2"]


def test_a_prefix_names_a_folder(store: S3ArchiveStore) -> None:
    with pytest.raises(ValueError, match="ends with '/'"):
        store.list_keys("archive/alice")


def test_a_missing_bucket_is_unavailable(s3_endpoint: str) -> None:
    store = S3ArchiveStore("no-such-bucket-here", endpoint_url=s3_endpoint)
    with pytest.raises(Unavailable, match="misconfigured"):
        store.read("archive/alice/2030-01.ndjson")
    with pytest.raises(Unavailable, match="misconfigured"):
        store.write("archive/alice/2030-01.ndjson", b"x\n", replacing=None)


class _Racing(S3ArchiveStore):
    """After its first `races` reads, another archiver writes the same object on S3 first."""

    def __init__(self, store: S3ArchiveStore, rivals: list[Task]) -> None:
        super().__init__(store.bucket, client=store.client)
        self.rivals, self.races = list(rivals), len(rivals)

    def read(self, key: str) -> StoredObject | None:
        stored = super().read(key)
        if self.races > 0:
            self.races -= 1
            rival = S3ArchiveStore(self.bucket, client=self.client)
            ArchiveService(store=rival, clock=FixedClock()).archive(self.rivals.pop(0))
        return stored


def test_a_write_lost_to_another_archiver_is_retried(store: S3ArchiveStore) -> None:
    racing = _Racing(store, [completed(2), completed(3)])
    statuses: list[int] = []
    store.client.meta.events.register(
        "after-call.s3.PutObject",
        lambda http_response, **_: statuses.append(http_response.status_code),
    )
    pauses: list[int] = []
    archiver = ArchiveService(store=racing, clock=FixedClock(), pause=pauses.append)
    assert archiver.archive(completed(1)) is True
    data = store.read(archive_key("alice", "2030-01"))
    assert data is not None
    assert sorted(data.data.splitlines(keepends=True)) == sorted(
        task_to_ndjson(completed(n)) for n in (1, 2, 3)
    )
    assert statuses == [200, 412, 200, 412, 200]  # rival, ours refused, rival, refused, ours
    assert pauses == [1, 2]


def test_concurrent_archivers_and_redeliveries_lose_nothing_and_repeat_nothing(
    store: S3ArchiveStore,
) -> None:
    tasks = [completed(n) for n in range(1, 13)]
    archiver = ArchiveService(store=store, clock=FixedClock(), max_attempts=200)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def archive(task: Task) -> None:
        written = archiver.archive(task)
        with lock:
            outcomes.append(written)

    threads = [threading.Thread(target=archive, args=(t,)) for t in tasks * 2]  # each twice
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = store.read(archive_key("alice", "2030-01"))
    assert stored is not None
    assert sorted(stored.data.splitlines(keepends=True)) == sorted(map(task_to_ndjson, tasks))
    assert sorted(outcomes) == [False] * 12 + [True] * 12


def test_a_month_downloads_through_its_presigned_link(store: S3ArchiveStore) -> None:
    archiver = ArchiveService(store=store, clock=FixedClock())
    archiver.archive(completed(1))
    archiver.archive(completed(2, owner="a/b"))  # a user whose id looks like a deeper folder
    assert archiver.months(principal("alice")) == ["2030-01"]
    assert archiver.months(principal("a")) == []
    download = archiver.month_download(principal("alice"), "2030-01")
    response = httpx.get(download.url, trust_env=False)
    assert response.status_code == 200
    assert response.content == task_to_ndjson(completed(1))
    disposition = response.headers["content-disposition"]
    assert 'filename="tasks-archive-2030-01.ndjson"' in disposition
