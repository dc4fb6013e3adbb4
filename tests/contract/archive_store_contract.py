"""The `ArchiveStore` contract: S3's conditional writes and prefix listing, as every archive
store must honour them.

`tests/contract/test_s3_archive.py` runs it on the in-memory store and on `S3ArchiveStore` over
moto's S3 server, so the fake cannot drift from S3: a rule one enforces and the other does not
fails one of them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from taskcore.errors import ConcurrentModification
from taskcore.ports import ArchiveStore

Check = Callable[[ArchiveStore, str], None]


def a_missing_object_reads_as_none(store: ArchiveStore, prefix: str) -> None:
    assert store.read(f"{prefix}2030-01.ndjson") is None


def a_new_object_is_written_only_where_there_is_none(store: ArchiveStore, prefix: str) -> None:
    key = f"{prefix}2030-01.ndjson"
    store.write(key, b"first\n", replacing=None)
    stored = store.read(key)
    assert stored is not None
    assert stored.data == b"first\n"
    assert stored.tag
    with pytest.raises(ConcurrentModification):
        store.write(key, b"second\n", replacing=None)  # someone created it first
    assert store.read(key) == stored


def an_object_is_replaced_only_as_it_was_read(store: ArchiveStore, prefix: str) -> None:
    key = f"{prefix}2030-01.ndjson"
    store.write(key, b"a\n", replacing=None)
    first = store.read(key)
    assert first is not None
    store.write(key, b"a\nb\n", replacing=first.tag)  # the reader's write: accepted
    second = store.read(key)
    assert second is not None
    assert second.data == b"a\nb\n"
    assert second.tag != first.tag
    with pytest.raises(ConcurrentModification):
        store.write(key, b"a\nc\n", replacing=first.tag)  # a write from a stale read
    assert store.read(key) == second


def an_object_that_is_gone_cannot_be_replaced(store: ArchiveStore, prefix: str) -> None:
    key = f"{prefix}2030-01.ndjson"
    with pytest.raises(ConcurrentModification):
        store.write(key, b"x\n", replacing='"0123456789abcdef0123456789abcdef"')
    assert store.read(key) is None


def a_listing_holds_the_keys_right_under_the_prefix(store: ArchiveStore, prefix: str) -> None:
    for key in ("2030-01.ndjson", "2030-02.ndjson", "deeper/2030-03.ndjson"):
        store.write(f"{prefix}{key}", b"x\n", replacing=None)
    store.write(f"{prefix[:-1]}x/2030-04.ndjson", b"x\n", replacing=None)  # a longer prefix
    assert sorted(store.list_keys(prefix)) == [f"{prefix}2030-01.ndjson", f"{prefix}2030-02.ndjson"]
    assert store.list_keys(f"{prefix}nobody/") == []


CONTRACT: tuple[Check, ...] = (
    a_missing_object_reads_as_none,
    a_new_object_is_written_only_where_there_is_none,
    an_object_is_replaced_only_as_it_was_read,
    an_object_that_is_gone_cannot_be_replaced,
    a_listing_holds_the_keys_right_under_the_prefix,
)
