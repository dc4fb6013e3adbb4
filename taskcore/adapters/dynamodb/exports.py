"""Export records on the table: `DynamoExportRepository` and the record's item mapping.

An export record is `pk = USER#<owner>`, `sk = EXPORT#<ulid>`. It carries none of the index
keys (lsi1sk, lsi2sk, gsi1pk), so it never shows up in a task listing or the approvers' queue,
and task listings on the base table only read `TASK#` keys. Its insertion is what the stream
turns into `ExportRequested` (`taskcore.adapters.dynamodb.stream`).
"""

from __future__ import annotations

import attrs
from pynamodb.exceptions import DoesNotExist

from taskcore.adapters.dynamodb.errors import ConditionFailed, storage_errors
from taskcore.adapters.dynamodb.table import (
    ExportItem,
    bind_export_model,
    export_sk,
    from_iso,
    iso,
    user_pk,
)
from taskcore.errors import ConcurrentModification, Conflict, NotFound
from taskcore.model import Export, ExportId, ExportStatus, UserId


def export_to_item(export: Export, model: type[ExportItem] = ExportItem) -> ExportItem:
    return model(
        user_pk(export.owner_id),
        export_sk(export.id),
        export_id=export.id,
        owner_id=export.owner_id,
        status=export.status.value,
        items_written=export.items_written,
        bytes_written=export.bytes_written,
        attempts=export.attempts,
        upload_id=export.upload_id,
        error=export.error,
        created_at=iso(export.created_at),
        updated_at=iso(export.updated_at),
        started_at=iso(export.started_at) if export.started_at else None,
        completed_at=iso(export.completed_at) if export.completed_at else None,
        version=export.version,
    )


def export_from_item(item: ExportItem) -> Export:
    return Export(
        id=ExportId(item.export_id),
        owner_id=UserId(item.owner_id),
        status=ExportStatus(item.status),
        items_written=int(item.items_written),
        bytes_written=int(item.bytes_written),
        attempts=int(item.attempts),
        upload_id=item.upload_id,
        error=item.error,
        created_at=from_iso(item.created_at),
        updated_at=from_iso(item.updated_at),
        started_at=from_iso(item.started_at) if item.started_at else None,
        completed_at=from_iso(item.completed_at) if item.completed_at else None,
        version=int(item.version),
    )


@attrs.define
class DynamoExportRepository:
    """`ExportRepository` on the tasks table. Every write is conditional: `add` on absence (a
    redelivered request cannot reset an export), `save` on the version read."""

    table_name: str
    endpoint_url: str | None = None
    region: str | None = None
    retries: int = 3
    model: type[ExportItem] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.model = bind_export_model(
            self.table_name, self.endpoint_url, self.region, self.retries
        )

    def add(self, export: Export) -> None:
        item = export_to_item(export, self.model)
        try:
            with storage_errors():
                item.save(condition=self.model.pk.does_not_exist())
        except ConditionFailed:
            raise Conflict(f"export {export.id} already exists") from None

    def get(self, owner_id: UserId, export_id: ExportId) -> Export | None:
        with storage_errors():
            try:
                item = self.model.get(user_pk(owner_id), export_sk(export_id), consistent_read=True)
            except DoesNotExist:
                return None
        return export_from_item(item)

    def save(self, export: Export, expected_version: int) -> None:
        item = export_to_item(export, self.model)
        try:
            with storage_errors():
                item.save(condition=self.model.version == expected_version)
        except ConditionFailed:
            if self.get(export.owner_id, export.id) is None:
                raise NotFound(f"export {export.id} not found") from None
            raise ConcurrentModification(
                f"export {export.id} is no longer at version {expected_version}"
            ) from None
