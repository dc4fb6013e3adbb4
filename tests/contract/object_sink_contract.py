"""The `ObjectSink` contract: S3's multipart rules, as every sink must honour them.

`tests/unit/test_exports.py` runs it on the in-memory sink and
`tests/contract/test_s3_exports.py` on `S3ObjectSink` over moto's S3 server, so the fake cannot
drift from S3: a rule the fake enforces and S3 does not (or the reverse) fails one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from taskcore.errors import NotFound, StorageRejected
from taskcore.ports import MIN_PART_SIZE, ObjectSink, UploadedPart

MIB = 1024 * 1024


@attrs.frozen
class SinkUnderTest:
    """A sink, and how to look behind it: the object at a key (None: none), uploads open."""

    sink: ObjectSink
    read: Callable[[str], bytes | None]
    open_uploads: Callable[[], set[str]]


def _blob(size: int, fill: int) -> bytes:
    return bytes([fill]) * size


def upload(under: SinkUnderTest, key: str, *chunks: bytes) -> tuple[str, list[UploadedPart]]:
    upload_id = under.sink.start_upload(key, content_type="application/x-ndjson")
    parts = [
        under.sink.upload_part(key, upload_id, number, chunk)
        for number, chunk in enumerate(chunks, start=1)
    ]
    return upload_id, parts


def nothing_is_visible_before_completion(under: SinkUnderTest, key: str) -> None:
    upload_id, parts = upload(under, key, b"hello\n")
    assert under.read(key) is None
    assert upload_id in under.open_uploads()
    under.sink.complete_upload(key, upload_id, parts)
    assert under.read(key) == b"hello\n"
    assert upload_id not in under.open_uploads()


def parts_are_assembled_in_order(under: SinkUnderTest, key: str) -> None:
    first, second = _blob(MIN_PART_SIZE, 0x61), _blob(MIN_PART_SIZE + MIB, 0x62)
    upload_id, parts = upload(under, key, first, second, b"end\n")
    assert [p.number for p in parts] == [1, 2, 3]
    assert all(p.etag for p in parts)
    under.sink.complete_upload(key, upload_id, parts)
    assert under.read(key) == first + second + b"end\n"


def a_small_part_before_the_last_is_rejected(under: SinkUnderTest, key: str) -> None:
    upload_id, parts = upload(under, key, _blob(MIN_PART_SIZE - 1, 0x61), b"last")
    with pytest.raises(StorageRejected):
        under.sink.complete_upload(key, upload_id, parts)
    assert under.read(key) is None
    under.sink.abort_upload(key, upload_id)


def an_empty_single_part_makes_an_empty_object(under: SinkUnderTest, key: str) -> None:
    upload_id, parts = upload(under, key, b"")
    under.sink.complete_upload(key, upload_id, parts)
    assert under.read(key) == b""


def completing_without_parts_is_rejected(under: SinkUnderTest, key: str) -> None:
    upload_id = under.sink.start_upload(key, content_type="text/plain")
    with pytest.raises(StorageRejected):
        under.sink.complete_upload(key, upload_id, [])
    under.sink.abort_upload(key, upload_id)


def parts_must_be_listed_as_uploaded(under: SinkUnderTest, key: str) -> None:
    upload_id, parts = upload(under, key, _blob(MIN_PART_SIZE, 0x61), b"b")
    for wrong in (
        [parts[1], parts[0]],  # out of order
        [parts[0], UploadedPart(2, parts[0].etag)],  # an ETag that is not the part's
        [parts[0], UploadedPart(3, parts[1].etag)],  # a part never uploaded
    ):
        with pytest.raises(StorageRejected):
            under.sink.complete_upload(key, upload_id, wrong)
    under.sink.complete_upload(key, upload_id, parts)  # the upload is still usable
    assert under.read(key) == _blob(MIN_PART_SIZE, 0x61) + b"b"


def part_numbers_run_from_1_to_10000(under: SinkUnderTest, key: str) -> None:
    upload_id = under.sink.start_upload(key, content_type="text/plain")
    for number in (0, 10_001):
        with pytest.raises(StorageRejected):
            under.sink.upload_part(key, upload_id, number, b"x")
    under.sink.abort_upload(key, upload_id)


def an_aborted_upload_leaves_nothing(under: SinkUnderTest, key: str) -> None:
    upload_id, _ = upload(under, key, b"secret\n")
    under.sink.abort_upload(key, upload_id)
    assert upload_id not in under.open_uploads()
    assert under.read(key) is None
    under.sink.abort_upload(key, upload_id)  # idempotent


def aborting_a_completed_upload_keeps_the_object(under: SinkUnderTest, key: str) -> None:
    upload_id, parts = upload(under, key, b"done\n")
    under.sink.complete_upload(key, upload_id, parts)
    under.sink.abort_upload(key, upload_id)  # no error: it is gone either way
    assert under.read(key) == b"done\n"


def a_finished_upload_takes_no_more_parts(under: SinkUnderTest, key: str) -> None:
    aborted, parts = upload(under, key, b"secret\n")
    under.sink.abort_upload(key, aborted)
    with pytest.raises(NotFound):
        under.sink.upload_part(key, aborted, 2, b"more")
    with pytest.raises(NotFound):
        under.sink.complete_upload(key, aborted, parts)
    completed, parts = upload(under, key, b"done\n")
    under.sink.complete_upload(key, completed, parts)
    with pytest.raises(NotFound):
        under.sink.upload_part(key, completed, 2, b"late")
    assert under.read(key) == b"done\n"


def a_new_object_replaces_the_old(under: SinkUnderTest, key: str) -> None:
    for content in (b"first\n", b"second\n"):
        upload_id, parts = upload(under, key, content)
        under.sink.complete_upload(key, upload_id, parts)
    assert under.read(key) == b"second\n"


def uploads_to_one_key_are_independent(under: SinkUnderTest, key: str) -> None:
    kept, kept_parts = upload(under, key, b"kept\n")
    dropped, _ = upload(under, key, b"dropped\n")
    under.sink.abort_upload(key, dropped)
    under.sink.complete_upload(key, kept, kept_parts)
    assert under.read(key) == b"kept\n"


def an_upload_belongs_to_its_key(under: SinkUnderTest, key: str) -> None:
    upload_id, parts = upload(under, key, b"mine\n")
    with pytest.raises(NotFound):
        under.sink.upload_part(key + ".other", upload_id, 2, b"x")
    under.sink.complete_upload(key, upload_id, parts)
    assert under.read(key + ".other") is None


def presigned_download_names_the_file(under: SinkUnderTest, key: str) -> None:
    upload_id, parts = upload(under, key, b"{}\n")
    under.sink.complete_upload(key, upload_id, parts)
    url = under.sink.presign_download(key, filename="tasks-x.ndjson", expires_in=900)
    assert "tasks-x.ndjson" in url
    assert "exports" in url


CONTRACT: tuple[Callable[[SinkUnderTest, str], Any], ...] = (
    nothing_is_visible_before_completion,
    parts_are_assembled_in_order,
    a_small_part_before_the_last_is_rejected,
    an_empty_single_part_makes_an_empty_object,
    completing_without_parts_is_rejected,
    parts_must_be_listed_as_uploaded,
    part_numbers_run_from_1_to_10000,
    an_aborted_upload_leaves_nothing,
    aborting_a_completed_upload_keeps_the_object,
    a_finished_upload_takes_no_more_parts,
    a_new_object_replaces_the_old,
    uploads_to_one_key_are_independent,
    an_upload_belongs_to_its_key,
    presigned_download_names_the_file,
)
