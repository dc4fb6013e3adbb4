"""Exports of all of a user's tasks to one NDJSON object: the use cases (`ExportService`:
request, look up, run), the streaming `MultipartWriter` a run writes through, and the object
key layout (`export_key`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from taskcore.errors import (
    ConcurrentModification,
    DeadlineExceeded,
    DomainError,
    NotFound,
    StorageRejected,
    Unavailable,
)
from taskcore.model import Export, ExportId, ExportStatus, Principal, UserId
from taskcore.ports import (
    MAX_PARTS,
    MIN_PART_SIZE,
    Clock,
    ExportRepository,
    IdGenerator,
    ObjectSink,
    TaskRepository,
    UploadedPart,
)
from taskcore.serialization import task_to_ndjson
from taskcore.services.downloads import owned_pages
from taskcore.services.ids import is_ulid

NDJSON = "application/x-ndjson"
EXPORT_PART_SIZE = 8 * 1024 * 1024
"""Bytes sent per part: what a run holds in memory at most, whatever the number of tasks. At
10,000 parts an export can reach 78 GiB."""


def export_key(owner_id: str, export_id: str) -> str:
    return f"exports/{owner_id}/{export_id}.ndjson"


@attrs.define
class MultipartWriter:
    """Streams bytes into one multipart upload, holding at most one part in memory.

    Bytes are buffered until a part is full, then sent; `close` sends what is left as the last
    part (which may be small, even empty for an empty export) and completes the upload.
    """

    sink: ObjectSink
    key: str
    upload_id: str
    part_size: int = EXPORT_PART_SIZE
    size: int = attrs.field(default=0, init=False)
    """Bytes written so far."""
    _buffer: bytearray = attrs.field(factory=bytearray, init=False, repr=False)
    _parts: list[UploadedPart] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        if self.part_size < MIN_PART_SIZE:
            raise ValueError(f"parts must be at least {MIN_PART_SIZE} bytes (but the last)")

    @property
    def parts(self) -> tuple[UploadedPart, ...]:
        return tuple(self._parts)

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= self.part_size:
            self._send()

    def _send(self) -> None:
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise StorageRejected(f"an object has at most {MAX_PARTS} parts")
        # Hand the buffer over rather than copy it (a copy would double the peak), and start
        # a new one: the part's memory goes back once it is sent.
        data, self._buffer = self._buffer, bytearray()
        self._parts.append(self.sink.upload_part(self.key, self.upload_id, number, data))

    def close(self) -> None:
        if self._buffer or not self._parts:
            self._send()
        self.sink.complete_upload(self.key, self.upload_id, self.parts)


@attrs.frozen(kw_only=True)
class ExportView:
    """An export as its owner sees it: with a fresh download link once it is completed."""

    export: Export
    download_url: str | None = None
    download_expires_at: datetime | None = None


class _Superseded(Exception):
    """Another run owns the export now (it took over a run it thought dead): stop quietly."""


def failure_reason(error: Exception) -> str:
    """What the owner is told when a run fails: the kind of failure, never internals."""
    if isinstance(error, DeadlineExceeded):
        return "the export took longer than a run may last"
    if isinstance(error, Unavailable):
        return "storage was unavailable"
    return "an internal error stopped the export"


@attrs.frozen(kw_only=True)
class ExportService:
    """Exports of all of a user's tasks to NDJSON objects.

    The API records a request (`request_export`) and returns at once; the `ExportRequested`
    event the record's insertion produces starts a worker (`run_export`), which pages through
    the tasks and streams them into a multipart upload with constant memory. A separate service
    from `TaskService`: it needs other ports (an object sink, export records), and the worker
    builds only what it uses.
    """

    exports: ExportRepository
    tasks: TaskRepository
    objects: ObjectSink
    clock: Clock
    ids: IdGenerator
    page_size: int = 100
    progress_every: int = 1000
    """Items between progress writes: at most one extra write per this many items."""
    part_size: int = EXPORT_PART_SIZE
    link_ttl: timedelta = timedelta(minutes=15)
    time_margin_s: float = 30.0
    """A run stops (and fails, to be retried) when its runtime has less than this left."""

    def request_export(self, principal: Principal) -> Export:
        now = self.clock.now()
        export = Export.new(id=ExportId(self.ids.new_id(now)), owner_id=principal.user_id, now=now)
        self.exports.add(export)
        return export

    def get_export(self, principal: Principal, export_id: str) -> ExportView:
        export = None
        if is_ulid(export_id):  # the owner comes from the principal: nobody else's exports
            export = self.exports.get(principal.user_id, ExportId(export_id))
        if export is None:
            raise NotFound(f"export {export_id} not found")
        if export.status is not ExportStatus.COMPLETED:
            return ExportView(export=export)
        url = self.objects.presign_download(
            export_key(export.owner_id, export.id),
            filename=f"tasks-{export.id}.ndjson",
            expires_in=int(self.link_ttl.total_seconds()),
        )
        return ExportView(
            export=export, download_url=url, download_expires_at=self.clock.now() + self.link_ttl
        )

    def run_export(
        self,
        owner_id: UserId,
        export_id: ExportId,
        remaining_s: Callable[[], float] | None = None,
    ) -> Export | None:
        """Run the export: every task of the owner, newest first, one JSON document per line.

        Safe to call again with the same export (events are delivered at least once): only the
        caller whose conditional write moves it to `running` works on it. A completed export, a
        live run, or an export out of retries is left alone, and None is returned. On failure
        the upload is aborted, the export is marked `failed` and the error is raised again, so
        the platform retries; a retry starts from scratch. `remaining_s` tells how many seconds
        the runtime has left: the run fails cleanly before it would be cut off.
        """
        export = self.exports.get(owner_id, export_id)
        if export is None or not export.can_start(self.clock.now()):
            return None
        key = export_key(owner_id, export_id)
        upload_id = self.objects.start_upload(key, content_type=NDJSON)
        running = export.start(self.clock.now(), upload_id)
        try:
            self.exports.save(running, expected_version=export.version)
        except (ConcurrentModification, NotFound):
            self._abort_quietly(key, upload_id)  # another worker claimed it first
            return None
        if export.upload_id is not None:
            self._abort_quietly(key, export.upload_id)  # left behind by the run replaced here
        run = _ExportRun(
            service=self,
            export=running,
            writer=MultipartWriter(self.objects, key, upload_id, self.part_size),
        )
        try:
            return run.execute(remaining_s)
        except _Superseded:
            self._abort_quietly(key, upload_id)
            return None
        except Exception as error:
            self._abort_quietly(key, upload_id)
            try:
                run.save(run.export.fail(self.clock.now(), failure_reason(error)))
            except _Superseded:
                return None
            raise

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        """Best effort: an upload left behind is aborted by the next run (its id stays on the
        export) or, at worst, by the bucket's rule for incomplete multipart uploads."""
        with contextlib.suppress(DomainError):
            self.objects.abort_upload(key, upload_id)


@attrs.define
class _ExportRun:
    """One run of an export: the record as last saved, and the upload being written."""

    service: ExportService
    export: Export
    writer: MultipartWriter

    def save(self, updated: Export) -> None:
        try:
            self.service.exports.save(updated, expected_version=self.export.version)
        except (ConcurrentModification, NotFound):
            raise _Superseded from None
        self.export = updated

    def execute(self, remaining_s: Callable[[], float] | None) -> Export:
        service, items = self.service, 0
        pages = owned_pages(service.tasks, self.export.owner_id, page_size=service.page_size)
        while True:
            if remaining_s is not None and remaining_s() < service.time_margin_s:
                raise DeadlineExceeded(f"export {self.export.id} ran out of time")
            page = next(pages, None)
            if page is None:
                break
            for task in page:
                self.writer.write(task_to_ndjson(task))
                items += 1
                if items % service.progress_every == 0:
                    progress = self.export.progress(
                        service.clock.now(), items=items, size=self.writer.size
                    )
                    self.save(progress)
        self.writer.close()
        self.save(self.export.complete(service.clock.now(), items=items, size=self.writer.size))
        return self.export
