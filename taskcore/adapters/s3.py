"""S3 adapter: the attachment store, on one (versioned) bucket.

Objects are keyed `<owner>/<taskId>/<attachmentId>` (see `taskcore.services.attachment_key`).
Clients never send bytes through the API: they get a presigned POST that accepts exactly one
object (that key, that content type, that size) and a presigned GET that downloads it as an
attachment under its original filename.

botocore errors never leave this module: they become `taskcore.errors.Unavailable`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from taskcore.adapters import clients
from taskcore.errors import (
    ConcurrentModification,
    DomainError,
    NotFound,
    StorageRejected,
    Unavailable,
)
from taskcore.ports import MAX_PARTS, Clock, PresignedUpload, StoredObject, UploadedPart
from taskcore.system import SystemClock

DELETE_BATCH = 1000
"""The most keys one DeleteObjects request may name."""

MISCONFIGURED = frozenset(
    {
        "NoSuchBucket",
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "KMS.NotFoundException",
        "KMS.DisabledException",
    }
)
"""Errors no retry will fix: the deployment is wrong (a missing bucket is not a missing file)."""

_FALLBACK_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\%]')
"""What the quoted-string `filename=` must not hold: non-ASCII and control characters (header
injection), quotes and backslashes (they end or escape the string), `%` (some browsers decode
it)."""

_RFC5987_SAFE = "!#$&+^`|~"
"""attr-char (RFC 5987) beyond what `quote` always keeps (letters, digits, `_.-~`)."""


def content_disposition(filename: str) -> str:
    """`attachment` with the filename quoted per RFC 6266: an ASCII-only `filename="..."` for
    old clients and the exact name, percent-encoded UTF-8, in `filename*`."""
    name = filename or "download"
    fallback = _FALLBACK_UNSAFE.sub("_", name)
    encoded = quote(name, safe=_RFC5987_SAFE, encoding="utf-8")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def presigned_download(client: Any, bucket: str, key: str, filename: str, expires_in: int) -> str:
    """A presigned GET that downloads the object as `filename` (RFC 6266)."""
    url: str = client.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "ResponseContentDisposition": content_disposition(filename),
        },
        ExpiresIn=expires_in,
    )
    return url


def _require_prefix(prefix: str) -> None:
    if not prefix or not prefix.endswith("/"):
        raise ValueError(
            f"refusing to delete under {prefix!r}: a prefix must be non-empty and end with '/'"
        )


def build_client(
    endpoint_url: str | None, region: str | None, *, retries: int = 3, timeout_s: float = 5.0
) -> Any:
    """A botocore S3 client signing with SigV4 (presigned URLs and POSTs included); see
    `taskcore.adapters.clients`."""
    return clients.build_client("s3", endpoint_url, region, retries=retries, timeout_s=timeout_s)


@attrs.define
class _S3Adapter:
    """What the three S3 adapters share: the bucket, the endpoint and Region, the KMS key their
    writes ask for, and a client built on first use (most invocations of a function that holds
    one never touch S3, and an S3 client costs ~65 ms of cold start, measured by `make bench`),
    or the one given (`client=`, tests)."""

    bucket: str
    endpoint_url: str | None = attrs.field(default=None, kw_only=True)
    region: str | None = attrs.field(default=None, kw_only=True)
    _client: Any = attrs.field(default=None, kw_only=True, alias="client")
    sse_kms_key_id: str | None = attrs.field(default=None, kw_only=True)
    """Writes are encrypted with this KMS key; None: the bucket's default encryption."""
    retries: int = attrs.field(default=3, kw_only=True)
    timeout_s: float = attrs.field(default=5.0, kw_only=True)
    """Per request."""

    _lazy: clients.LazyClient = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._lazy = clients.LazyClient(
            "s3", self.endpoint_url, self.region, self.retries, self.timeout_s, client=self._client
        )

    @property
    def client(self) -> Any:
        return self._lazy.get()


@attrs.define
class S3AttachmentStore(_S3Adapter):
    """`AttachmentStore` on S3. Safe to share across threads; build once per container.
    `sse_kms_key_id`: uploads must ask for SSE-KMS with this key (the bucket's policy pins it)."""

    clock: Clock = attrs.field(factory=SystemClock, kw_only=True)

    def presign_upload(
        self, key: str, *, content_type: str, size: int, expires_in: int
    ) -> PresignedUpload:
        """A presigned POST whose policy admits exactly this object.

        botocore adds the `bucket` and `key` conditions itself; a key ending in `${filename}`
        would make it a `starts-with` instead, so such keys are refused.
        """
        if not key or key.endswith("${filename}"):
            raise ValueError(f"not an attachment key: {key!r}")
        if size < 0 or expires_in <= 0:
            raise ValueError("size must be >= 0 and expires_in > 0")
        fields: dict[str, str] = {"Content-Type": content_type}
        conditions: list[Any] = [
            ["eq", "$Content-Type", content_type],
            ["content-length-range", size, size],
        ]
        if self.sse_kms_key_id is not None:
            encryption = {
                "x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-aws-kms-key-id": self.sse_kms_key_id,
            }
            fields |= encryption
            conditions += [{name: value} for name, value in encryption.items()]
        # The policy's expiration has whole-second resolution (botocore truncates it).
        expires_at = (self.clock.now() + timedelta(seconds=expires_in)).replace(microsecond=0)
        with self._errors():
            post = self.client.generate_presigned_post(
                Bucket=self.bucket,
                Key=key,
                Fields=fields,
                Conditions=conditions,
                ExpiresIn=expires_in,
            )
        return PresignedUpload(
            url=post["url"],
            fields={name: str(value) for name, value in post["fields"].items()},
            expires_at=expires_at,
        )

    def presign_download(self, key: str, *, filename: str, expires_in: int) -> str:
        """A presigned GET that downloads the object as `filename`; the Content-Type stays the
        one the object was uploaded with (pinned by the upload policy)."""
        with self._errors():
            return presigned_download(self.client, self.bucket, key, filename, expires_in)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every version and delete marker under `prefix` (the bucket is versioned:
        a plain delete would only hide the bytes), so nothing of it remains.

        Returns how many objects were live (what a GET would have found) before: noncurrent
        versions and delete markers are purged but not counted, as the in-memory store has
        no notion of them. Safe to retry: a second call finds nothing and returns 0.
        """
        _require_prefix(prefix)
        live: set[str] = set()
        doomed: list[dict[str, str]] = []
        with self._errors():
            # List everything first, then delete: deleting under a listing in progress moves
            # the ground under its key/version-id markers (moto then stops early).
            paginator = self.client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                versions = page.get("Versions", [])
                live.update(v["Key"] for v in versions if v.get("IsLatest"))
                doomed += [
                    {"Key": entry["Key"], "VersionId": entry["VersionId"]}
                    for entry in [*versions, *page.get("DeleteMarkers", [])]
                ]
            for start in range(0, len(doomed), DELETE_BATCH):
                self._delete_batch(doomed[start : start + DELETE_BATCH])
        return len(live)

    def _delete_batch(self, objects: list[dict[str, str]]) -> None:
        response = self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
        )
        errors = response.get("Errors", [])
        if errors:
            codes = sorted({str(e.get("Code")) for e in errors})
            raise Unavailable(
                f"the attachment store failed to delete {len(errors)} object(s) "
                f"({', '.join(codes)}); retry"
            )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except DomainError:
            raise
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "") or "unknown")
            if code in MISCONFIGURED:
                raise Unavailable(
                    f"the attachment store is misconfigured: bucket {self.bucket!r} answered {code}"
                ) from error
            raise Unavailable(f"the attachment store is unavailable ({code})") from error
        except BotoCoreError as error:
            raise Unavailable(
                f"the attachment store is unavailable ({type(error).__name__})"
            ) from error


@attrs.define
class S3ObjectSink(_S3Adapter):
    """`ObjectSink` on S3's multipart upload: the export worker streams NDJSON through it.

    It holds no bytes of its own: each `upload_part` sends the part it is given (the caller,
    `taskcore.services.MultipartWriter`, buffers at most one part). Keys are the caller's
    (`exports/<owner>/<exportId>.ndjson`, see `taskcore.services.export_key`). An abort of an
    upload that is already gone is no error, so a retry may abort whatever its predecessor left.
    """

    timeout_s: float = attrs.field(default=30.0, kw_only=True)
    """Per request: a part is up to 8 MiB, more than the attachment store ever sends."""

    def start_upload(self, key: str, *, content_type: str) -> str:
        extra: dict[str, str] = {}
        if self.sse_kms_key_id is not None:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.sse_kms_key_id}
        with self._errors():
            response = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type, **extra
            )
        return str(response["UploadId"])

    def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | bytearray
    ) -> UploadedPart:
        if not 1 <= number <= MAX_PARTS:  # S3 says InvalidArgument; no request needed for that
            raise StorageRejected(f"part numbers run from 1 to {MAX_PARTS}, not {number}")
        with self._errors():
            response = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        return UploadedPart(number, str(response["ETag"]))

    def complete_upload(self, key: str, upload_id: str, parts: Sequence[UploadedPart]) -> None:
        listed = [{"PartNumber": part.number, "ETag": part.etag} for part in parts]
        with self._errors():
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},
            )

    def abort_upload(self, key: str, upload_id: str) -> None:
        # NotFound: already completed or aborted; nothing is left of it either way.
        with contextlib.suppress(NotFound), self._errors():
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def presign_download(self, key: str, *, filename: str, expires_in: int) -> str:
        with self._errors():
            return presigned_download(self.client, self.bucket, key, filename, expires_in)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except ClientError as error:
            code = _code(error)
            if code == "NoSuchUpload":
                raise NotFound("the upload is no longer in progress") from error
            if code in REJECTED_UPLOADS:
                raise StorageRejected(f"the object store rejected the upload ({code})") from error
            if code in MISCONFIGURED:
                raise Unavailable(
                    f"the object store is misconfigured: bucket {self.bucket!r} answered {code}"
                ) from error
            raise Unavailable(f"the object store is unavailable ({code})") from error
        except BotoCoreError as error:
            kind = type(error).__name__
            raise Unavailable(f"the object store is unavailable ({kind})") from error


REJECTED_UPLOADS = frozenset(
    {"EntityTooSmall", "InvalidPart", "InvalidPartOrder", "MalformedXML", "InvalidArgument"}
)
"""Multipart errors that mean our request was wrong (a bug), not that S3 is unwell."""


LOST_RACE = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"})
"""What S3 answers a conditional write whose object moved on: 412 `PreconditionFailed` (the
ETag no longer matches, or an object appeared where `If-None-Match: *` wanted none), 409
`ConditionalRequestConflict` (another write to the key was in flight: "fetch the object's ETag
and retry", botocore's PutObject documentation), 404 `NoSuchKey` (the object `If-Match` named
is gone)."""


@attrs.define
class S3ArchiveStore(_S3Adapter):
    """`ArchiveStore` on S3: whole NDJSON objects, each write conditional (`If-Match` on the
    ETag read, or `If-None-Match: *` for a new object), so two archivers of one object never
    lose each other's lines: the second is refused (`ConcurrentModification`) and reads again.

    A read asks `ListObjectsV2` first whether the object exists: S3 answers a GetObject of a
    missing key with 404 only to a caller allowed `s3:ListBucket` on the bucket, and the
    archiver's grant of it is limited to the archive's prefix (a condition on `s3:prefix`,
    which a GetObject request does not carry), so a GetObject of a month not yet written would
    be a 403. Objects are written with SSE-KMS under `sse_kms_key_id` (the stack's key, with an
    S3 Bucket Key); the bucket's policy refuses any other write under `archive/`.
    """

    timeout_s: float = attrs.field(default=10.0, kw_only=True)

    def _exists(self, key: str) -> bool:
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        return any(entry["Key"] == key for entry in listed.get("Contents", []))

    def read(self, key: str) -> StoredObject | None:
        with self._errors():
            if not self._exists(key):
                return None
            try:
                got = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as error:
                if _code(error) == "NoSuchKey":  # deleted since it was listed
                    return None
                raise
            return StoredObject(data=got["Body"].read(), tag=str(got["ETag"]))

    def write(self, key: str, data: bytes, *, replacing: str | None) -> None:
        condition = {"IfNoneMatch": "*"} if replacing is None else {"IfMatch": replacing}
        encryption: dict[str, Any] = {}
        if self.sse_kms_key_id is not None:
            encryption = {
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": self.sse_kms_key_id,
                "BucketKeyEnabled": True,
            }
        with self._errors():
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="application/x-ndjson",
                **condition,
                **encryption,
            )

    def list_keys(self, prefix: str) -> list[str]:
        if not prefix.endswith("/"):
            raise ValueError(f"a prefix ends with '/', not {prefix!r}")
        keys: list[str] = []
        with self._errors():
            paginator = self.client.get_paginator("list_objects_v2")
            # The delimiter keeps deeper 'folders' (another user's `prefix + "x/"`) out.
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                keys += [entry["Key"] for entry in page.get("Contents", [])]
        return keys

    def presign_download(self, key: str, *, filename: str, expires_in: int) -> str:
        with self._errors():
            return presigned_download(self.client, self.bucket, key, filename, expires_in)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except ClientError as error:
            code = _code(error)
            if code in LOST_RACE:
                raise ConcurrentModification(f"the archive object changed ({code})") from error
            if code in MISCONFIGURED:
                raise Unavailable(
                    f"the archive is misconfigured: bucket {self.bucket!r} answered {code}"
                ) from error
            raise Unavailable(f"the archive is unavailable ({code})") from error
        except BotoCoreError as error:
            raise Unavailable(f"the archive is unavailable ({type(error).__name__})") from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "") or "unknown")
