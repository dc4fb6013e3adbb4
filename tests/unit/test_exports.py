"""Exports: the entity's lifecycle, the multipart writer, the in-memory sink (against the same
contract S3 passes) and the use cases, with the in-memory fakes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskcore import services
from taskcore.commands import CreateTask
from taskcore.errors import (
    ConcurrentModification,
    Conflict,
    DeadlineExceeded,
    InvalidTransition,
    NotFound,
    StorageRejected,
    Unavailable,
)
from taskcore.model import (
    EXPORT_MAX_ATTEMPTS,
    EXPORT_STALE_AFTER,
    Export,
    ExportId,
    ExportStatus,
    Priority,
    Task,
    UserId,
)
from taskcore.ports import MIN_PART_SIZE, ExportRepository, ObjectSink, StoredPage, UploadedPart
from taskcore.serialization import export_to_json, task_to_json, task_to_ndjson
from taskcore.services import (
    NDJSON,
    ExportService,
    MultipartWriter,
    export_key,
    failure_reason,
)
from taskcore.testing import (
    Fakes,
    FixedClock,
    InMemoryExportRepository,
    InMemoryObjectSink,
    InMemoryTaskRepository,
    in_memory_service,
    principal,
)
from tests.contract.object_sink_contract import CONTRACT, SinkUnderTest

ALICE = principal("alice")
BOB = principal("bob")
NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
MIB = 1024 * 1024


def export(**fields: Any) -> Export:
    return Export(
        **{
            "id": ExportId("01JD00000000000000000000AB"),
            "owner_id": UserId("alice"),
            "created_at": NOW,
            "updated_at": NOW,
            **fields,
        }
    )


def running(**fields: Any) -> Export:
    base = {"status": ExportStatus.RUNNING, "attempts": 1, "started_at": NOW, "upload_id": "u"}
    return export(**{**base, **fields})


# -- the entity --------------------------------------------------------------------------------


class TestExportEntity:
    def test_a_new_export_is_requested(self) -> None:
        new = Export.new(id=ExportId("01JD00000000000000000000AB"), owner_id=UserId("a"), now=NOW)
        assert (new.status, new.version, new.attempts, new.items_written) == (
            ExportStatus.REQUESTED,
            1,
            0,
            0,
        )
        assert new.can_start(NOW)
        assert not new.finished

    def test_the_happy_path(self) -> None:
        new = export()
        later = NOW + timedelta(seconds=5)
        started = new.start(later, "upload-1")
        assert (started.status, started.attempts, started.upload_id, started.started_at) == (
            ExportStatus.RUNNING,
            1,
            "upload-1",
            later,
        )
        assert started.version == 2
        moved = started.progress(later, items=1000, size=500_000)
        assert (moved.items_written, moved.bytes_written, moved.version) == (1000, 500_000, 3)
        done = moved.complete(later, items=1500, size=750_000)
        assert (done.status, done.completed_at, done.upload_id, done.version) == (
            ExportStatus.COMPLETED,
            later,
            None,
            4,
        )
        assert done.finished
        assert not done.can_start(later + timedelta(days=1))

    def test_a_failed_run_is_retried_from_scratch(self) -> None:
        failed = running(items_written=5).fail(NOW, "storage was unavailable")
        assert (failed.status, failed.error, failed.upload_id) == (
            ExportStatus.FAILED,
            "storage was unavailable",
            "u",  # kept: the retry aborts it if it is still open
        )
        assert failed.finished
        assert failed.can_start(NOW)
        again = failed.start(NOW, "u2")
        assert (again.attempts, again.items_written, again.error, again.upload_id) == (
            2,
            0,
            None,
            "u2",
        )

    def test_a_failure_always_has_a_reason(self) -> None:
        assert running().fail(NOW, "").error == "failed"

    def test_retries_are_bounded(self) -> None:
        spent = running(attempts=EXPORT_MAX_ATTEMPTS).fail(NOW, "x")
        assert not spent.can_start(NOW)
        with pytest.raises(InvalidTransition, match="cannot start"):
            spent.start(NOW, "u")

    def test_a_live_run_is_not_taken_over_but_a_stale_one_is(self) -> None:
        live = running()
        assert not live.can_start(NOW + EXPORT_STALE_AFTER - timedelta(microseconds=1))
        with pytest.raises(InvalidTransition):
            live.start(NOW, "u2")
        assert live.can_start(NOW + EXPORT_STALE_AFTER)
        taken = live.start(NOW + EXPORT_STALE_AFTER, "u2")
        assert (taken.attempts, taken.upload_id) == (2, "u2")
        assert not running(attempts=EXPORT_MAX_ATTEMPTS).can_start(NOW + timedelta(days=1))

    def test_stale_means_longer_than_a_lambda_can_live(self) -> None:
        assert timedelta(minutes=15) < EXPORT_STALE_AFTER

    @pytest.mark.parametrize(
        "change",
        [
            lambda e: e.progress(NOW, items=1, size=1),
            lambda e: e.complete(NOW, items=1, size=1),
            lambda e: e.fail(NOW, "x"),
        ],
        ids=["progress", "complete", "fail"],
    )
    def test_only_a_running_export_moves_on(self, change: Callable[[Export], Export]) -> None:
        for stuck in (export(), running().complete(NOW, items=0, size=0)):
            with pytest.raises(InvalidTransition):
                change(stuck)

    def test_progress_never_goes_backwards(self) -> None:
        moved = running().progress(NOW, items=10, size=100)
        with pytest.raises(ValueError, match="backwards"):
            moved.progress(NOW, items=9, size=200)
        with pytest.raises(ValueError, match="backwards"):
            moved.progress(NOW, items=11, size=99)

    def test_updated_at_never_goes_back(self) -> None:
        started = export(updated_at=NOW + timedelta(hours=1)).start(NOW, "u")
        assert started.updated_at == NOW + timedelta(hours=1)

    @pytest.mark.parametrize(
        ("fields", "problem"),
        [
            ({"version": 0}, "version"),
            ({"items_written": -1}, "items_written"),
            ({"updated_at": NOW - timedelta(seconds=1)}, "updated_at"),
            ({"created_at": NOW.replace(tzinfo=None)}, "UTC"),
            ({"attempts": 1}, "attempts"),
            ({"started_at": NOW}, "started_at"),
            ({"upload_id": "u"}, "written nothing"),
            ({"bytes_written": 3}, "written nothing"),
            ({"completed_at": NOW}, "completed_at"),
            ({"error": "x"}, "error"),
            (
                {"status": ExportStatus.RUNNING, "attempts": 0, "started_at": NOW},
                "attempts",
            ),
            ({"status": ExportStatus.RUNNING, "attempts": 1}, "started_at"),
            (
                {"status": ExportStatus.COMPLETED, "attempts": 1, "started_at": NOW},
                "completed_at",
            ),
            (
                {
                    "status": ExportStatus.COMPLETED,
                    "attempts": 1,
                    "started_at": NOW,
                    "completed_at": NOW,
                    "upload_id": "u",
                },
                "open upload",
            ),
            (
                {"status": ExportStatus.FAILED, "attempts": 1, "started_at": NOW},
                "error",
            ),
        ],
    )
    def test_invariants(self, fields: dict[str, Any], problem: str) -> None:
        with pytest.raises(ValueError, match=problem):
            export(**fields)


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["start", "progress", "complete", "fail", "wait"]),
        st.integers(min_value=0, max_value=5000),
    ),
    max_size=25,
)


@given(OPERATIONS)
def test_any_sequence_of_changes_keeps_the_invariants(operations: list[tuple[str, int]]) -> None:
    """Whatever happens, each change is one version, attempts are bounded, a completed export
    stays completed, and the items written only go back when a new run starts."""
    current, now = export(), NOW
    for operation, n in operations:
        before = current
        try:
            if operation == "wait":
                now += timedelta(minutes=n % 40)
                continue
            if operation == "start":
                current = current.start(now, f"u{n}")
            elif operation == "progress":
                current = current.progress(now, items=current.items_written + n, size=n * 10)
            elif operation == "complete":
                current = current.complete(now, items=current.items_written + n, size=n)
            else:
                current = current.fail(now, f"reason {n}")
        except (InvalidTransition, ValueError):
            assert current is before
            continue
        assert current.version == before.version + 1
        assert current.attempts <= EXPORT_MAX_ATTEMPTS
        assert before.status is not ExportStatus.COMPLETED
        if operation != "start":
            assert current.items_written >= before.items_written
            assert current.attempts == before.attempts


# -- the multipart writer ------------------------------------------------------------------------


def sink_and_upload(key: str = "k") -> tuple[InMemoryObjectSink, str]:
    sink = InMemoryObjectSink()
    return sink, sink.start_upload(key, content_type=NDJSON)


class TestMultipartWriter:
    def test_parts_are_at_least_the_minimum(self) -> None:
        sink, upload_id = sink_and_upload()
        with pytest.raises(ValueError, match="at least"):
            MultipartWriter(sink, "k", upload_id, MIN_PART_SIZE - 1)

    def test_small_output_is_one_part(self) -> None:
        sink, upload_id = sink_and_upload()
        writer = MultipartWriter(sink, "k", upload_id)
        writer.write(b"one\n")
        writer.write(b"two\n")
        writer.close()
        assert sink.objects["k"] == b"one\ntwo\n"
        assert sink.part_sizes["k"] == [8]
        assert (writer.size, len(writer.parts)) == (8, 1)

    def test_nothing_written_is_one_empty_part(self) -> None:
        sink, upload_id = sink_and_upload()
        MultipartWriter(sink, "k", upload_id).close()
        assert (sink.objects["k"], sink.part_sizes["k"]) == (b"", [0])

    def test_holds_at_most_one_part(self) -> None:
        sink, upload_id = sink_and_upload()
        writer = MultipartWriter(sink, "k", upload_id, MIN_PART_SIZE)
        line = b"x" * (MIB - 1) + b"\n"
        written = b""
        for _ in range(12):
            writer.write(line)
            written += line
            sent = sum(len(d) for d in sink.uploads[upload_id].parts.values())
            assert writer.size - sent < MIN_PART_SIZE  # what is held back is under one part
        assert [p.number for p in writer.parts] == [1, 2]
        writer.close()
        assert sink.objects["k"] == written
        assert sink.part_sizes["k"] == [5 * MIB - 5 + MIB - 1 + 1 - MIB + MIB] * 0 + [
            5 * MIB,
            5 * MIB,
            2 * MIB,
        ]

    def test_a_full_last_part_is_not_followed_by_an_empty_one(self) -> None:
        sink, upload_id = sink_and_upload()
        writer = MultipartWriter(sink, "k", upload_id, MIN_PART_SIZE)
        writer.write(b"y" * MIN_PART_SIZE)
        writer.close()
        assert sink.part_sizes["k"] == [MIN_PART_SIZE]

    def test_at_most_max_parts(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("taskcore.services.exports.MAX_PARTS", 2)
        sink, upload_id = sink_and_upload()
        writer = MultipartWriter(sink, "k", upload_id, MIN_PART_SIZE)
        writer.write(b"a" * MIN_PART_SIZE)
        writer.write(b"b" * MIN_PART_SIZE)
        with pytest.raises(StorageRejected, match="at most 2 parts"):
            writer.write(b"c" * MIN_PART_SIZE)


# -- the in-memory sink honours the contract S3 passes ------------------------------------------


def in_memory_under_test() -> tuple[InMemoryObjectSink, SinkUnderTest]:
    sink = InMemoryObjectSink()
    return sink, SinkUnderTest(
        sink=sink, read=sink.objects.get, open_uploads=lambda: set(sink.uploads)
    )


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
def test_in_memory_sink_contract(check: Any) -> None:
    _, under = in_memory_under_test()
    check(under, "exports/alice/01JD00000000000000000000AB.ndjson")


def test_in_memory_sink_records_what_happened() -> None:
    sink = InMemoryObjectSink()
    port: ObjectSink = sink
    assert port is sink
    kept = sink.start_upload("a", content_type="text/plain")
    sink.complete_upload("a", kept, [sink.upload_part("a", kept, 1, b"x")])
    dropped = sink.start_upload("b", content_type="text/plain")
    sink.abort_upload("b", dropped)
    sink.abort_upload("other-key", kept)  # someone else's id: nothing happens
    assert (sink.completed, sink.aborted, sink.content_types) == (
        [kept],
        [dropped],
        {"a": "text/plain"},
    )
    other = sink.start_upload("a", content_type="x")
    assert sink.upload_part("a", other, 1, b"x") == UploadedPart(
        1,
        '"9dd4e461268c8034f5c8564e155c67a6"',  # S3's: the part's MD5, quoted
    )
    sink.abort_upload("a", other)


# -- the repository fake -------------------------------------------------------------------------


class TestInMemoryExportRepository:
    def test_conditional_writes(self) -> None:
        repo: ExportRepository = InMemoryExportRepository()
        new = export()
        repo.add(new)
        with pytest.raises(Conflict):
            repo.add(new)
        started = new.start(NOW, "u")
        repo.save(started, expected_version=1)
        with pytest.raises(ConcurrentModification):
            repo.save(started, expected_version=1)
        with pytest.raises(NotFound):
            repo.save(attrs.evolve(started, owner_id=UserId("bob")), expected_version=2)
        assert repo.get(UserId("alice"), new.id) == started
        assert repo.get(UserId("bob"), new.id) is None


# -- serialization -------------------------------------------------------------------------------


class TestExportJson:
    def test_requested(self) -> None:
        assert export_to_json(export()) == {
            "id": "01JD00000000000000000000AB",
            "status": "requested",
            "itemsWritten": 0,
            "bytesWritten": 0,
            "createdAt": "2030-01-01T09:00:00.000000Z",
            "updatedAt": "2030-01-01T09:00:00.000000Z",
            "startedAt": None,
            "completedAt": None,
            "error": None,
            "download": None,
        }

    def test_completed_with_a_link(self) -> None:
        done = running().complete(NOW, items=2, size=20)
        body = export_to_json(
            done, download_url="https://x/y", download_expires_at=NOW + timedelta(minutes=15)
        )
        assert (body["status"], body["completedAt"], body["download"]) == (
            "completed",
            "2030-01-01T09:00:00.000000Z",
            {"url": "https://x/y", "expiresAt": "2030-01-01T09:15:00.000000Z"},
        )
        assert "uploadId" not in body
        assert "attempts" not in body

    def test_ndjson_line_is_the_api_json(self) -> None:
        task = Task.new(
            id="01JD00000000000000000000AB",  # type: ignore[arg-type]
            owner_id=UserId("ålice"),
            title='Ünïcode ✓ "quoted"',
            description="two\nlines",
            now=NOW,
        )
        line = task_to_ndjson(task)
        assert line.endswith(b"\n")
        assert line.count(b"\n") == 1  # the newline in the description is escaped
        assert "✓".encode() in line  # UTF-8, not \u escapes
        assert json.loads(line) == task_to_json(task)


# -- the use cases -------------------------------------------------------------------------------


@pytest.fixture
def fakes() -> Fakes:
    return in_memory_service()


def make_tasks(fakes: Fakes, n: int, who: Any = ALICE, **fields: Any) -> list[Task]:
    return [
        fakes.service.create_task(who, CreateTask(title=f"task {i}", **fields)).task
        for i in range(n)
    ]


@attrs.define
class Watched:
    """The fakes' task repository, calling `before(page_index)` before each page is read."""

    inner: InMemoryTaskRepository
    before: Callable[[int], None] = lambda _: None
    limits: list[int] = attrs.field(factory=list)

    def list_owned(self, owner_id: UserId, **kwargs: Any) -> StoredPage:
        self.before(len(self.limits))
        self.limits.append(kwargs["limit"])
        return self.inner.list_owned(owner_id, **kwargs)


def watched(fakes: Fakes, before: Callable[[int], None], **changes: Any) -> Any:
    """The export service, reading tasks through `Watched`."""
    tasks: Any = Watched(fakes.tasks, before)  # only list_owned: all an export reads
    return attrs.evolve(fakes.export_service, tasks=tasks, **changes)


def parse(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def exported(fakes: Fakes, export_id: str, owner: str = "alice") -> bytes:
    return fakes.objects.objects[export_key(owner, export_id)]


def run(fakes: Fakes, requested: Export, **kwargs: Any) -> Export | None:
    return fakes.export_service.run_export(requested.owner_id, requested.id, **kwargs)


class TestRequestAndGet:
    def test_request_records_an_export_of_the_principal(self, fakes: Fakes) -> None:
        requested = fakes.export_service.request_export(ALICE)
        assert (requested.owner_id, requested.status) == ("alice", ExportStatus.REQUESTED)
        assert services.is_ulid(requested.id)
        assert fakes.exports.changes == [(None, requested)]  # one insert: one ExportRequested

    def test_get_shows_progress_without_a_link(self, fakes: Fakes) -> None:
        requested = fakes.export_service.request_export(ALICE)
        view = fakes.export_service.get_export(ALICE, requested.id)
        assert (view.export, view.download_url, view.download_expires_at) == (
            requested,
            None,
            None,
        )

    def test_get_of_a_completed_export_has_a_fresh_link(self, fakes: Fakes) -> None:
        requested = fakes.export_service.request_export(ALICE)
        run(fakes, requested)
        fakes.clock.advance(timedelta(hours=1))
        view = fakes.export_service.get_export(ALICE, requested.id)
        assert view.export.status is ExportStatus.COMPLETED
        assert view.download_url == (
            f"memory://objects/exports/alice/{requested.id}.ndjson"
            f"?filename=tasks-{requested.id}.ndjson&expires=900"
        )
        assert view.download_expires_at == fakes.clock.now() + timedelta(minutes=15)

    @pytest.mark.parametrize("export_id", ["nope", "01JD00000000000000000000AB", ""])
    def test_unknown_exports_are_not_found(self, fakes: Fakes, export_id: str) -> None:
        with pytest.raises(NotFound):
            fakes.export_service.get_export(ALICE, export_id)

    def test_nobody_sees_another_users_export(self, fakes: Fakes) -> None:
        requested = fakes.export_service.request_export(ALICE)
        run(fakes, requested)
        with pytest.raises(NotFound):
            fakes.export_service.get_export(BOB, requested.id)


class TestRunExport:
    def test_pages_through_every_task_newest_first(self, fakes: Fakes) -> None:
        mine = make_tasks(fakes, 250)
        make_tasks(fakes, 30, who=BOB)
        service = watched(fakes, lambda _: None)
        requested = service.request_export(ALICE)
        done = service.run_export(requested.owner_id, requested.id)
        assert done is not None
        assert (done.status, done.items_written, done.attempts) == (ExportStatus.COMPLETED, 250, 1)
        assert service.tasks.limits == [100, 100, 100]
        body = exported(fakes, requested.id)
        assert done.bytes_written == len(body)
        assert parse(body) == [task_to_json(t) for t in reversed(mine)]
        assert fakes.objects.content_types[export_key("alice", requested.id)] == NDJSON
        assert fakes.objects.uploads == {}

    def test_an_owner_without_tasks_gets_an_empty_file(self, fakes: Fakes) -> None:
        make_tasks(fakes, 3, who=BOB)
        requested = fakes.export_service.request_export(ALICE)
        done = run(fakes, requested)
        assert done is not None
        assert (done.status, done.items_written, done.bytes_written) == (
            ExportStatus.COMPLETED,
            0,
            0,
        )
        assert exported(fakes, requested.id) == b""

    def test_progress_is_written_every_n_items_and_no_more(self, fakes: Fakes) -> None:
        make_tasks(fakes, 250)
        seen: list[int] = []

        def watch(_: int) -> None:
            stored = fakes.exports.get(UserId("alice"), requested.id)
            assert stored is not None
            seen.append(stored.items_written)

        service = watched(fakes, watch, progress_every=100)
        requested = service.request_export(ALICE)
        service.run_export(requested.owner_id, requested.id)
        assert seen == [0, 100, 200]  # what a GET shows while the run goes on
        writes = [new.status for _, new in fakes.exports.changes]
        assert writes == [
            ExportStatus.REQUESTED,  # the request
            ExportStatus.RUNNING,  # the claim
            ExportStatus.RUNNING,  # 100
            ExportStatus.RUNNING,  # 200
            ExportStatus.COMPLETED,
        ]

    def test_large_exports_use_several_parts(self, fakes: Fakes) -> None:
        tasks = make_tasks(fakes, 2600, description="d" * 3900)  # ~10.6 MB
        service = attrs.evolve(fakes.export_service, part_size=MIN_PART_SIZE)
        requested = service.request_export(ALICE)
        service.run_export(requested.owner_id, requested.id)
        sizes = fakes.objects.part_sizes[export_key("alice", requested.id)]
        assert len(sizes) == 3
        assert all(size >= MIN_PART_SIZE for size in sizes[:-1])
        assert parse(exported(fakes, requested.id)) == [task_to_json(t) for t in reversed(tasks)]

    def test_tasks_created_during_the_run_are_not_included(self, fakes: Fakes) -> None:
        before = make_tasks(fakes, 150)

        def meanwhile(page: int) -> None:
            if page > 0:  # between pages: the run has started
                make_tasks(fakes, 1)

        service = watched(fakes, meanwhile)
        requested = service.request_export(ALICE)
        service.run_export(requested.owner_id, requested.id)
        assert [t["id"] for t in parse(exported(fakes, requested.id))] == [
            t.id for t in reversed(before)
        ]


class TestIdempotency:
    def test_a_redelivered_event_does_nothing_once_completed(self, fakes: Fakes) -> None:
        make_tasks(fakes, 5)
        requested = fakes.export_service.request_export(ALICE)
        done = run(fakes, requested)
        changes = len(fakes.exports.changes)
        assert run(fakes, requested) is None
        assert len(fakes.exports.changes) == changes
        assert fakes.exports.get(UserId("alice"), requested.id) == done
        assert len(fakes.objects.completed) == 1
        assert fakes.objects.uploads == {}

    def test_a_redelivered_event_leaves_a_live_run_alone(self, fakes: Fakes) -> None:
        requested = fakes.export_service.request_export(ALICE)
        live = requested.start(fakes.clock.now(), "theirs")
        fakes.exports.save(live, expected_version=requested.version)
        fakes.clock.advance(EXPORT_STALE_AFTER - timedelta(seconds=1))
        assert run(fakes, requested) is None
        assert fakes.exports.get(UserId("alice"), requested.id) == live
        assert fakes.objects.uploads == {}  # not even an upload was started

    def test_only_one_of_two_concurrent_workers_runs(self, fakes: Fakes) -> None:
        make_tasks(fakes, 3)
        requested = fakes.export_service.request_export(ALICE)

        class Racing(InMemoryExportRepository):
            """The other worker's claim lands between our read and our write."""

            def save(self, export: Export, expected_version: int) -> None:
                if export.status is ExportStatus.RUNNING and expected_version == 1:
                    stored = self.exports[(export.owner_id, export.id)]
                    super().save(stored.start(NOW, "theirs"), expected_version)
                super().save(export, expected_version)

        racing = Racing(exports=dict(fakes.exports.exports))
        service = attrs.evolve(fakes.export_service, exports=racing)
        assert service.run_export(requested.owner_id, requested.id) is None
        stored = racing.get(UserId("alice"), requested.id)
        assert stored is not None
        assert stored.upload_id == "theirs"
        assert fakes.objects.aborted == ["upload-1"]  # ours, never written to
        assert fakes.objects.objects == {}

    def test_an_export_gone_before_the_claim_is_left_alone(self, fakes: Fakes) -> None:
        requested = fakes.export_service.request_export(ALICE)

        class Vanishing(InMemoryExportRepository):
            def save(self, export: Export, expected_version: int) -> None:
                raise NotFound("gone")

        service = attrs.evolve(
            fakes.export_service, exports=Vanishing(exports=dict(fakes.exports.exports))
        )
        assert service.run_export(requested.owner_id, requested.id) is None
        assert fakes.objects.uploads == {}

    def test_an_unknown_export_is_nothing_to_do(self, fakes: Fakes) -> None:
        assert fakes.export_service.run_export(UserId("alice"), ExportId("01JD0000")) is None

    def test_a_stale_run_is_taken_over_and_its_upload_aborted(self, fakes: Fakes) -> None:
        tasks = make_tasks(fakes, 4)
        requested = fakes.export_service.request_export(ALICE)
        key = export_key("alice", requested.id)
        dead_upload = fakes.objects.start_upload(key, content_type=NDJSON)
        dead = requested.start(fakes.clock.now(), dead_upload)
        fakes.exports.save(dead, expected_version=requested.version)
        fakes.clock.advance(EXPORT_STALE_AFTER)
        done = run(fakes, requested)
        assert done is not None
        assert (done.status, done.attempts) == (ExportStatus.COMPLETED, 2)
        assert dead_upload in fakes.objects.aborted
        assert parse(exported(fakes, requested.id)) == [task_to_json(t) for t in reversed(tasks)]

    def test_a_run_that_was_taken_over_stops_quietly(self, fakes: Fakes) -> None:
        make_tasks(fakes, 250)

        def takeover(page: int) -> None:
            if page == 1:  # another worker (wrongly thinking us dead) takes over
                stored = fakes.exports.get(UserId("alice"), requested.id)
                assert stored is not None
                fakes.exports.save(attrs.evolve(stored, version=99), stored.version)

        service = watched(fakes, takeover, progress_every=100)
        requested = service.request_export(ALICE)
        assert service.run_export(requested.owner_id, requested.id) is None
        stored = fakes.exports.get(UserId("alice"), requested.id)
        assert stored is not None
        assert (stored.version, stored.status) == (99, ExportStatus.RUNNING)  # untouched
        assert fakes.objects.aborted == ["upload-1"]
        assert fakes.objects.objects == {}


class _FailingSink(InMemoryObjectSink):
    fail: Callable[[], Exception] | None = None
    fail_aborts: int = 0

    def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes | bytearray
    ) -> UploadedPart:
        if self.fail is not None:
            raise self.fail()
        return super().upload_part(key, upload_id, number, data)

    def abort_upload(self, key: str, upload_id: str) -> None:
        if self.fail_aborts:
            self.fail_aborts -= 1
            raise Unavailable("abort failed")
        super().abort_upload(key, upload_id)


class TestFailures:
    def failing(self, fakes: Fakes, error: Callable[[], Exception]) -> tuple[Any, _FailingSink]:
        sink = _FailingSink()
        sink.fail = error
        return attrs.evolve(fakes.export_service, objects=sink), sink

    def test_a_failed_run_aborts_its_upload_and_records_why(self, fakes: Fakes) -> None:
        make_tasks(fakes, 3)
        service, sink = self.failing(fakes, lambda: Unavailable("S3 is down"))
        requested = service.request_export(ALICE)
        with pytest.raises(Unavailable, match="S3 is down"):
            service.run_export(requested.owner_id, requested.id)
        failed = fakes.exports.get(UserId("alice"), requested.id)
        assert failed is not None
        assert (failed.status, failed.error, failed.attempts) == (
            ExportStatus.FAILED,
            "storage was unavailable",
            1,
        )
        assert sink.aborted == ["upload-1"]
        assert (sink.uploads, sink.objects) == ({}, {})

    def test_a_retry_restarts_cleanly_and_completes(self, fakes: Fakes) -> None:
        tasks = make_tasks(fakes, 3)
        service, sink = self.failing(fakes, lambda: Unavailable("S3 is down"))
        requested = service.request_export(ALICE)
        with pytest.raises(Unavailable):
            service.run_export(requested.owner_id, requested.id)
        sink.fail = None
        done = service.run_export(requested.owner_id, requested.id)
        assert done is not None
        assert (done.status, done.attempts, done.items_written, done.error) == (
            ExportStatus.COMPLETED,
            2,
            3,
            None,
        )
        key = export_key("alice", requested.id)
        assert parse(sink.objects[key]) == [task_to_json(t) for t in reversed(tasks)]

    def test_an_upload_left_open_is_aborted_by_the_retry(self, fakes: Fakes) -> None:
        make_tasks(fakes, 3)
        service, sink = self.failing(fakes, lambda: Unavailable("S3 is down"))
        sink.fail_aborts = 1  # the failed run cannot even abort
        requested = service.request_export(ALICE)
        with pytest.raises(Unavailable):
            service.run_export(requested.owner_id, requested.id)
        failed = fakes.exports.get(UserId("alice"), requested.id)
        assert failed is not None
        assert failed.upload_id == "upload-1"
        assert set(sink.uploads) == {"upload-1"}  # left open
        sink.fail = None
        service.run_export(requested.owner_id, requested.id)
        assert sink.aborted == ["upload-1"]
        assert sink.uploads == {}

    def test_after_the_last_attempt_it_stays_failed(self, fakes: Fakes) -> None:
        make_tasks(fakes, 1)
        service, sink = self.failing(fakes, lambda: Unavailable("S3 is down"))
        requested = service.request_export(ALICE)
        for _ in range(EXPORT_MAX_ATTEMPTS):
            with pytest.raises(Unavailable):
                service.run_export(requested.owner_id, requested.id)
        sink.fail = None
        assert service.run_export(requested.owner_id, requested.id) is None  # no more retries
        final = fakes.exports.get(UserId("alice"), requested.id)
        assert final is not None
        assert (final.status, final.attempts) == (ExportStatus.FAILED, EXPORT_MAX_ATTEMPTS)
        assert sink.uploads == {}

    def test_a_bug_is_recorded_as_internal(self, fakes: Fakes) -> None:
        class Broken(InMemoryTaskRepository):
            def list_owned(self, *_: Any, **__: Any) -> StoredPage:
                raise RuntimeError("secret internals")

        service = attrs.evolve(fakes.export_service, tasks=Broken())
        requested = service.request_export(ALICE)
        with pytest.raises(RuntimeError):
            service.run_export(requested.owner_id, requested.id)
        failed = fakes.exports.get(UserId("alice"), requested.id)
        assert failed is not None
        assert failed.error == "an internal error stopped the export"
        assert "secret" not in json.dumps(export_to_json(failed))

    def test_a_failure_after_a_takeover_is_left_to_the_new_run(self, fakes: Fakes) -> None:
        make_tasks(fakes, 1)
        requested = fakes.export_service.request_export(ALICE)

        def taken_over() -> Exception:
            stored = fakes.exports.get(UserId("alice"), requested.id)
            assert stored is not None
            fakes.exports.save(attrs.evolve(stored, version=50), stored.version)
            return Unavailable("our upload was aborted by the new run")

        service, _ = self.failing(fakes, taken_over)
        assert service.run_export(requested.owner_id, requested.id) is None
        stored = fakes.exports.get(UserId("alice"), requested.id)
        assert stored is not None
        assert (stored.version, stored.status) == (50, ExportStatus.RUNNING)

    def test_a_run_stops_before_the_runtime_would_kill_it(self, fakes: Fakes) -> None:
        make_tasks(fakes, 250)
        left = iter([120.0, 60.0, 29.0])
        requested = fakes.export_service.request_export(ALICE)
        with pytest.raises(DeadlineExceeded):
            run(fakes, requested, remaining_s=lambda: next(left))
        failed = fakes.exports.get(UserId("alice"), requested.id)
        assert failed is not None
        assert failed.error == "the export took longer than a run may last"
        assert fakes.objects.uploads == {}
        assert fakes.objects.objects == {}

    def test_enough_time_is_no_problem(self, fakes: Fakes) -> None:
        make_tasks(fakes, 150)
        requested = fakes.export_service.request_export(ALICE)
        done = run(fakes, requested, remaining_s=lambda: 900.0)
        assert done is not None
        assert done.items_written == 150

    @pytest.mark.parametrize(
        ("error", "reason"),
        [
            (DeadlineExceeded("x"), "the export took longer than a run may last"),
            (Unavailable("x"), "storage was unavailable"),
            (StorageRejected("x"), "an internal error stopped the export"),
            (KeyError("x"), "an internal error stopped the export"),
        ],
    )
    def test_failure_reasons_say_what_kind_never_internals(
        self, error: Exception, reason: str
    ) -> None:
        assert failure_reason(error) == reason


def test_fakes_share_the_task_repository_and_clock(fakes: Fakes) -> None:
    assert fakes.export_service.tasks is fakes.tasks
    assert fakes.export_service.clock is fakes.clock
    assert isinstance(fakes.export_service, ExportService)
    assert FixedClock().now() == NOW
    assert Priority.HIGH.needs_approval
