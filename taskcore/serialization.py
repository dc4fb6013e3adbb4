"""JSON shapes of tasks, stats and events: camelCase keys, ISO-8601 times, enum values.

One cattrs converter serves the HTTP API, event details, export lines and idempotency
snapshots, so a task is written the same way everywhere. Reading is strict: no type coercion,
and the model's validators run, so a stored or received document that is malformed or breaks an
invariant is refused (`cattrs.ClassValidationError`, wrapping the cause).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from taskcore.commands import CALENDAR_DATE
from taskcore.events import EVENT_TYPES, Envelope, Event
from taskcore.model import Approval, Export, Priority, Status, Task
from taskcore.notifications import Notification
from taskcore.stats import UserStats


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _enum_value(member: Status | Priority | Approval) -> str:
    return member.value


def _enum_member(value: object, kind: type[Status | Priority | Approval]) -> Any:
    return kind(_strict_str(value, str))


def _parse_datetime(value: object, _: type) -> datetime:
    if not isinstance(value, str):
        raise TypeError("a timestamp must be an ISO-8601 string")
    return datetime.fromisoformat(value)


def _parse_date(value: object, _: type) -> date:
    if not isinstance(value, str) or not CALENDAR_DATE.fullmatch(value):
        raise TypeError("a date must be an ISO-8601 calendar date (YYYY-MM-DD)")
    return date.fromisoformat(value)


def _strict_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _strict_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    for kind in (Status, Priority, Approval):
        converter.register_unstructure_hook(kind, _enum_value)
        converter.register_structure_hook(kind, _enum_member)
    converter.register_unstructure_hook(datetime, _iso)
    converter.register_structure_hook(datetime, _parse_datetime)
    converter.register_unstructure_hook(date, date.isoformat)
    converter.register_structure_hook(date, _parse_date)
    # No silent coercion ("3" -> 3, 123 -> "123"): a malformed document is refused.
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)

    def renames(cls: type) -> dict[str, Any]:
        return {a.name: override(rename=camel(a.name)) for a in attrs.fields(cls)}

    converter.register_unstructure_hook_factory(
        attrs.has, lambda cls: make_dict_unstructure_fn(cls, converter, **renames(cls))
    )
    converter.register_structure_hook_factory(
        attrs.has, lambda cls: make_dict_structure_fn(cls, converter, **renames(cls))
    )
    return converter


converter = _make_converter()


def task_to_json(task: Task) -> dict[str, Any]:
    result: dict[str, Any] = converter.unstructure(task)
    return result


def task_from_json(data: dict[str, Any]) -> Task:
    return converter.structure(data, Task)


def stats_to_json(stats: UserStats, now: datetime) -> dict[str, Any]:
    return {
        "byStatus": dict(stats.by_status),
        "completedThisWeek": stats.completed_in_week_of(now),
        "medianCompletionSeconds": stats.median_completion_seconds(),
    }


def event_to_json(event: Event) -> dict[str, Any]:
    body: dict[str, Any] = converter.unstructure(event)
    return {"type": event.kind, **body}


def envelope(event: Event) -> Envelope:
    return Envelope(event_id=event.event_id, detail_type=event.kind, detail=event_to_json(event))


def event_from_json(data: dict[str, Any]) -> Event:
    fields = dict(data)
    kind = fields.pop("type")
    return converter.structure(fields, EVENT_TYPES[kind])


def task_to_ndjson(task: Task) -> bytes:
    """One line of an export: the task exactly as the API shows it, then a newline (UTF-8)."""
    line = json.dumps(task_to_json(task), ensure_ascii=False, separators=(",", ":"))
    return (line + "\n").encode("utf-8")


def export_to_json(
    export: Export, *, download_url: str | None = None, download_expires_at: datetime | None = None
) -> dict[str, Any]:
    """An export as the API shows it: its progress, and the download link once completed.
    The upload id and attempt count are the worker's business and stay internal."""
    moment = converter.unstructure
    download = None
    if download_url is not None and download_expires_at is not None:
        download = {"url": download_url, "expiresAt": moment(download_expires_at)}
    return {
        "id": export.id,
        "status": export.status.value,
        "itemsWritten": export.items_written,
        "bytesWritten": export.bytes_written,
        "createdAt": moment(export.created_at),
        "updatedAt": moment(export.updated_at),
        "startedAt": moment(export.started_at),
        "completedAt": moment(export.completed_at),
        "error": export.error,
        "download": download,
    }


def notification_to_json(notification: Notification) -> dict[str, Any]:
    """A notification as the inbox shows it (and the topic's non-email subscribers get it).
    Fields that do not apply to its kind are null; when it was published is not shown."""
    n = notification
    return {
        "id": n.id,
        "kind": n.kind.value,
        "recipient": n.recipient,
        "message": n.message,
        "taskId": n.task_id,
        "ownerId": n.owner_id,
        "title": n.title,
        "priority": n.priority.value,
        "outcome": n.outcome.value if n.outcome else None,
        "decidedBy": n.decided_by,
        "dueDate": n.due_date.isoformat() if n.due_date else None,
        "createdAt": _iso(n.created_at),
        "readAt": _iso(n.read_at) if n.read_at else None,
    }
