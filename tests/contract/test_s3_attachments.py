"""Contract tests of `S3AttachmentStore` on moto's S3 in server mode.

Server mode, not `mock_aws()`: presigned URLs are only worth testing over real HTTP, with the
form post and the GET a browser would send. Every test gets its own bucket on one server.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import attrs
import httpx
import pytest
from botocore.stub import Stubber

from handlers.bootstrap import build_attachment_store
from handlers.settings import Settings
from local_platform.dynamodb_local import free_port
from taskcore.adapters.s3 import S3AttachmentStore, content_disposition
from taskcore.errors import Unavailable
from taskcore.ports import AttachmentStore
from taskcore.services import attachment_prefix
from taskcore.testing import FixedClock, InMemoryAttachmentStore

START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
SIGNATURE_FIELDS = {"x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-security-token"}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # trust_env=False: no proxy from the environment between us and 127.0.0.1.
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def store(s3_endpoint: str, clock: FixedClock) -> S3AttachmentStore:
    """A store on a fresh, unversioned bucket."""
    bucket = f"attachments-{uuid.uuid4().hex[:12]}"
    store = S3AttachmentStore(bucket, endpoint_url=s3_endpoint, clock=clock)
    store.client.create_bucket(Bucket=bucket)
    return store


@pytest.fixture
def versioned(store: S3AttachmentStore) -> S3AttachmentStore:
    store.client.put_bucket_versioning(
        Bucket=store.bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    return store


def post_upload(
    http: httpx.Client, store: S3AttachmentStore, key: str, content_type: str, data: bytes
) -> httpx.Response:
    """What a browser does with the presigned POST: the fields, then the file, as a form."""
    upload = store.presign_upload(key, content_type=content_type, size=len(data), expires_in=900)
    return http.post(
        upload.url,
        data=upload.fields,
        files={"file": ("ignored-name.bin", data, "application/octet-stream")},
    )


def keys_under(store: S3AttachmentStore, prefix: str) -> list[tuple[str, str]]:
    """Every version and delete marker under `prefix`, as (key, version id)."""
    found = []
    for page in store.client.get_paginator("list_object_versions").paginate(
        Bucket=store.bucket, Prefix=prefix
    ):
        found += [
            (entry["Key"], entry["VersionId"])
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
    return found


def test_satisfies_the_port(store: S3AttachmentStore) -> None:
    port: AttachmentStore = store
    assert port is store


def test_built_from_settings_with_bucket_endpoint_and_region() -> None:
    store = build_attachment_store(
        Settings.from_environment(
            {"BUCKET_NAME": "files", "S3_ENDPOINT": "http://127.0.0.1:1", "AWS_REGION": "eu-west-1"}
        )
    )
    assert (store.bucket, store.endpoint_url, store.region) == (
        "files",
        "http://127.0.0.1:1",
        "eu-west-1",
    )
    assert store.client.meta.region_name == "eu-west-1"
    assert store.sse_kms_key_id is None


# -- upload --------------------------------------------------------------------------------


def test_presigned_post_uploads_the_object_with_its_content_type(
    store: S3AttachmentStore, http: httpx.Client
) -> None:
    key = "alice/01TASK/01FILE"
    response = post_upload(http, store, key, "application/pdf", b"%PDF-1.7 tiny")

    assert response.status_code == 204, response.text
    head = store.client.head_object(Bucket=store.bucket, Key=key)
    assert head["ContentType"] == "application/pdf"
    assert head["ContentLength"] == len(b"%PDF-1.7 tiny")


def test_presigned_post_returns_the_form_and_when_it_expires(
    store: S3AttachmentStore, clock: FixedClock
) -> None:
    upload = store.presign_upload("a/b/c", content_type="image/png", size=3, expires_in=600)

    assert upload.url.endswith(f"/{store.bucket}")  # path-style on a local endpoint
    assert upload.fields["key"] == "a/b/c"
    assert upload.fields["Content-Type"] == "image/png"
    assert {"policy", "x-amz-signature"} <= upload.fields.keys()
    assert upload.expires_at == clock.now() + timedelta(seconds=600)


def decoded_policy(fields: dict[str, str]) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return policy


def split_conditions(policy: dict[str, Any]) -> tuple[list[Any], dict[str, str]]:
    """(the conditions we asked for plus bucket and key, the ones SigV4 signing added)."""
    ours: list[Any] = []
    signing: dict[str, str] = {}
    for condition in policy["conditions"]:
        if isinstance(condition, dict) and condition.keys() <= SIGNATURE_FIELDS:
            signing |= condition
        else:
            ours.append(condition)
    return ours, signing


def canonical(conditions: list[Any]) -> list[str]:
    return sorted(json.dumps(c, sort_keys=True) for c in conditions)


@pytest.fixture
def botocore_time(monkeypatch: pytest.MonkeyPatch, clock: FixedClock) -> None:
    """botocore reads the wall clock itself for the policy's expiration and for x-amz-date;
    pin it to the test's clock so we can check the document against `clock`. (In production
    the store's clock is `SystemClock`: both read the same time.)"""

    def now(remove_tzinfo: bool = True) -> datetime:
        return clock.now().replace(tzinfo=None) if remove_tzinfo else clock.now()

    monkeypatch.setattr("botocore.signers.get_current_datetime", now)
    monkeypatch.setattr("botocore.auth.get_current_datetime", now)


# moto's S3 does NOT enforce POST policy conditions: it stores whatever is posted, whatever
# its size or Content-Type (and ignores the expiration). Real S3 evaluates every condition of
# the signed policy document and refuses the upload (403) if any fails, and it requires a
# condition for every form field. The policy document is therefore the actual security
# boundary, and the only way to test it here is to decode it and check that it pins exactly
# this one object: this bucket, this key, this Content-Type, exactly this many bytes, until
# exactly `now + expires_in`. A loosened condition (a `starts-with` key, a range of sizes)
# would pass every HTTP test above on moto and still be a hole in production.
@pytest.mark.usefixtures("botocore_time")
def test_the_post_policy_pins_exactly_one_object(
    store: S3AttachmentStore, clock: FixedClock
) -> None:
    key = "alice/01TASK/01FILE"
    upload = store.presign_upload(key, content_type="application/pdf", size=1234, expires_in=900)
    policy = decoded_policy(upload.fields)

    ours, signing = split_conditions(policy)
    assert canonical(ours) == canonical(
        [
            {"bucket": store.bucket},
            {"key": key},
            ["eq", "$Content-Type", "application/pdf"],
            ["content-length-range", 1234, 1234],
        ]
    )
    expected_expiry = clock.now() + timedelta(seconds=900)
    assert policy["expiration"] == expected_expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert upload.expires_at == expected_expiry
    # The signing fields are pinned too, and signed for the same moment.
    assert signing == {name: upload.fields[name] for name in signing}
    assert signing["x-amz-date"] == clock.now().strftime("%Y%m%dT%H%M%SZ")
    # S3 rejects a form field that no condition covers: every field we send is covered.
    covered = {"key", "Content-Type", "bucket", *signing}
    assert set(upload.fields) - {"policy", "x-amz-signature"} <= covered


@pytest.mark.usefixtures("botocore_time")
def test_the_post_policy_pins_sse_kms_when_configured(store: S3AttachmentStore) -> None:
    kms = attrs.evolve(store, sse_kms_key_id="arn:aws:kms:us-east-1:111122223333:key/k-1")
    upload = kms.presign_upload("a/b/c", content_type="text/plain", size=5, expires_in=60)
    ours, _ = split_conditions(decoded_policy(upload.fields))

    assert {"x-amz-server-side-encryption": "aws:kms"} in ours
    assert {"x-amz-server-side-encryption-aws-kms-key-id": kms.sse_kms_key_id} in ours
    assert upload.fields["x-amz-server-side-encryption"] == "aws:kms"
    assert upload.fields["x-amz-server-side-encryption-aws-kms-key-id"] == kms.sse_kms_key_id
    assert len(ours) == 6


def test_a_filename_placeholder_key_is_refused(store: S3AttachmentStore) -> None:
    # botocore would turn the key condition into a `starts-with`: any key under the prefix.
    with pytest.raises(ValueError, match="not an attachment key"):
        store.presign_upload("a/b/${filename}", content_type="text/plain", size=1, expires_in=60)


# -- download ------------------------------------------------------------------------------


def test_presigned_get_downloads_the_bytes_as_an_attachment(
    store: S3AttachmentStore, http: httpx.Client
) -> None:
    key = "alice/01TASK/01FILE"
    assert post_upload(http, store, key, "text/csv", b"a,b\n1,2\n").status_code == 204
    filename = 'Résumé "final" \\ 2030.csv'

    response = http.get(store.presign_download(key, filename=filename, expires_in=60))

    assert response.status_code == 200
    assert response.content == b"a,b\n1,2\n"
    assert response.headers["content-type"] == "text/csv"  # the object's, not overridden
    disposition = response.headers["content-disposition"]
    assert disposition == content_disposition(filename)
    assert disposition.startswith('attachment; filename="R_sum_ _final_ _ 2030.csv"; ')
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == filename


def test_presigned_get_of_a_missing_object_is_not_found(
    store: S3AttachmentStore, http: httpx.Client
) -> None:
    url = store.presign_download("alice/01TASK/nothing", filename="x.txt", expires_in=60)
    # Real S3 answers 404 NoSuchKey if the signer may list the bucket, else 403 AccessDenied.
    # moto answers 403 SignatureDoesNotMatch: for a missing key it mistakes the signed
    # `response-content-disposition` parameter for a `content-disposition` header it expects.
    assert http.get(url).status_code in {403, 404}


@pytest.mark.parametrize(
    ("filename", "fallback"),
    [
        ("report.pdf", "report.pdf"),
        ('a"b\\c.txt', "a_b_c.txt"),
        ("naïve café.txt", "na_ve caf_.txt"),
        ("evil\r\nSet-Cookie: x=1.txt", "evil__Set-Cookie: x=1.txt"),
        ("100%.txt", "100_.txt"),
        ("日本語.txt", "___.txt"),
        ("", "download"),
    ],
)
def test_content_disposition_is_rfc_6266(filename: str, fallback: str) -> None:
    header = content_disposition(filename)

    assert header.isascii()
    assert header.startswith(f"attachment; filename=\"{fallback}\"; filename*=UTF-8''")
    assert unquote(header.split("''", 1)[1], encoding="utf-8") == (filename or "download")
    assert not {"\r", "\n", '"', " "} & set(header.split("''", 1)[1])


# -- delete ----------------------------------------------------------------------------------


def test_delete_prefix_refuses_prefixes_that_could_reach_other_tasks(
    store: S3AttachmentStore,
) -> None:
    store.client.put_object(Bucket=store.bucket, Key="a/keep", Body=b"x")
    for prefix in ["", "a", "alice/01TASK"]:
        with pytest.raises(ValueError, match="refusing to delete"):
            store.delete_prefix(prefix)
    assert keys_under(store, "") == [("a/keep", "null")]


def count_delete_batches(store: S3AttachmentStore) -> list[int]:
    """The number of keys each DeleteObjects request names, recorded as they are sent."""
    sizes: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["Delete"]["Objects"]))

    store.client.meta.events.register("provide-client-params.s3.DeleteObjects", record)
    return sizes


def put_many(store: S3AttachmentStore, keys: list[str]) -> None:
    def put(key: str) -> None:
        store.client.put_object(Bucket=store.bucket, Key=key, Body=b"x")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, keys))


def test_delete_prefix_removes_every_version_of_only_that_prefix(
    versioned: S3AttachmentStore,
) -> None:
    store = versioned
    doomed = attachment_prefix("alice", "01TASK")
    many = [f"{doomed}{i:05d}" for i in range(1100)]
    # Neighbours that a prefix without its trailing slash, or another owner, would catch.
    others = ["alice/01TASK0/00000", "alice/01TASKZ", "bob/01TASK/00000", "alice/02TASK/1"]
    put_many(store, many + others)
    # More versions: two overwrites, a deleted object (a delete marker over its version) and
    # a key that was deleted and written again.
    for body in (b"v2", b"v3"):
        store.client.put_object(Bucket=store.bucket, Key=many[0], Body=body)
    store.client.delete_object(Bucket=store.bucket, Key=many[1])
    store.client.delete_object(Bucket=store.bucket, Key=many[2])
    store.client.put_object(Bucket=store.bucket, Key=many[2], Body=b"again")
    before_others = sorted(keys_under(store, "alice/01TASK0/") + keys_under(store, "bob/"))
    assert len(keys_under(store, doomed)) == 1100 + 2 + 1 + 2
    batches = count_delete_batches(store)

    removed = store.delete_prefix(doomed)

    assert removed == 1099  # the live objects: many[1] was already deleted
    assert keys_under(store, doomed) == []
    assert len(batches) >= 2
    assert max(batches) <= 1000
    assert sum(batches) == 1100 + 2 + 1 + 2
    assert sorted(keys_under(store, "alice/01TASK0/") + keys_under(store, "bob/")) == (
        before_others
    )
    assert {k for k, _ in keys_under(store, "")} == set(others)
    assert store.delete_prefix(doomed) == 0  # safe to retry


def test_delete_prefix_on_an_unversioned_bucket(store: S3AttachmentStore) -> None:
    put_many(store, ["u/t/1", "u/t/2", "u/t2/1"])

    assert store.delete_prefix("u/t/") == 2
    assert keys_under(store, "") == [("u/t2/1", "null")]


# -- parity with the in-memory store -------------------------------------------------------


@attrs.frozen
class Driver:
    """One store and how a client uses what it hands out."""

    store: AttachmentStore
    upload: Callable[[str, str, bytes], None]
    download: Callable[[str], bytes | None]


@pytest.fixture(params=["memory", "s3"])
def driver(
    request: pytest.FixtureRequest, store: S3AttachmentStore, clock: FixedClock, http: httpx.Client
) -> Driver:
    if request.param == "memory":
        memory = InMemoryAttachmentStore(clock=clock)

        def memory_upload(key: str, content_type: str, data: bytes) -> None:
            memory.presign_upload(key, content_type=content_type, size=len(data), expires_in=900)
            memory.upload(key, content_type, data)

        return Driver(memory, memory_upload, memory.objects.get)

    def s3_upload(key: str, content_type: str, data: bytes) -> None:
        assert post_upload(http, store, key, content_type, data).status_code == 204

    def s3_download(key: str) -> bytes | None:
        response = http.get(store.presign_download(key, filename="f.txt", expires_in=60))
        return response.content if response.status_code == 200 else None

    return Driver(store, s3_upload, s3_download)


def test_parity_with_the_in_memory_store(driver: Driver, clock: FixedClock) -> None:
    store = driver.store
    first, second = attachment_prefix("alice", "01TASK"), attachment_prefix("alice", "02TASK")
    upload = store.presign_upload(f"{first}F1", content_type="text/plain", size=2, expires_in=900)
    assert upload.fields["key"] == f"{first}F1"
    assert upload.fields["Content-Type"] == "text/plain"
    assert upload.expires_at == clock.now() + timedelta(seconds=900)

    driver.upload(f"{first}F1", "text/plain", b"f1")
    driver.upload(f"{first}F2", "image/png", b"\x89PNG")
    driver.upload(f"{second}F3", "text/plain", b"f3")

    assert driver.download(f"{first}F1") == b"f1"
    assert driver.download(f"{first}F9") is None
    assert store.delete_prefix(attachment_prefix("alice", "03TASK")) == 0
    assert store.delete_prefix(first) == 2
    assert driver.download(f"{first}F1") is None
    assert driver.download(f"{first}F2") is None
    assert driver.download(f"{second}F3") == b"f3"
    assert store.delete_prefix(first) == 0
    assert store.delete_prefix(second) == 1


# -- errors ----------------------------------------------------------------------------------


def test_an_unreachable_endpoint_is_unavailable(clock: FixedClock) -> None:
    store = S3AttachmentStore(
        "attachments", endpoint_url=f"http://127.0.0.1:{free_port()}", clock=clock
    )

    with pytest.raises(Unavailable, match="EndpointConnectionError"):
        store.delete_prefix("alice/01TASK/")
    # Presigning is local computation: it works with S3 out of reach.
    assert store.presign_download("a/b/c", filename="x", expires_in=60).startswith("http://")


def test_a_missing_bucket_is_a_misconfiguration_not_a_missing_file(s3_endpoint: str) -> None:
    store = S3AttachmentStore("no-such-bucket-here", endpoint_url=s3_endpoint)

    with pytest.raises(Unavailable, match=r"misconfigured.*NoSuchBucket"):
        store.delete_prefix("alice/01TASK/")


@pytest.mark.parametrize(("code", "status"), [("SlowDown", 503), ("InternalError", 500)])
def test_throttling_and_server_errors_are_unavailable(
    store: S3AttachmentStore, code: str, status: int
) -> None:
    with Stubber(store.client) as stub:
        stub.add_client_error(
            "list_object_versions", service_error_code=code, http_status_code=status
        )
        with pytest.raises(Unavailable, match=code) as raised:
            store.delete_prefix("alice/01TASK/")
    assert raised.value.__cause__ is not None  # chained for logs, but a domain error


def test_keys_the_batch_failed_to_delete_are_unavailable(store: S3AttachmentStore) -> None:
    with Stubber(store.client) as stub:
        stub.add_response(
            "list_object_versions",
            {"Versions": [{"Key": "a/b/c", "VersionId": "v1", "IsLatest": True}]},
        )
        stub.add_response(
            "delete_objects",
            {"Errors": [{"Key": "a/b/c", "VersionId": "v1", "Code": "InternalError"}]},
        )
        with pytest.raises(Unavailable, match=r"failed to delete 1 object\(s\) \(InternalError\)"):
            store.delete_prefix("a/b/")
