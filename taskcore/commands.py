"""Commands (what a caller asks for) and the parsers that build them from raw JSON values.

Parsing collects *every* field error before raising, so a client fixes its request in one go.
The same rule functions as the model's validators are used, so the two cannot disagree.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Final, TypeVar

import attrs

from taskcore.errors import FieldError, InvalidQuery, InvalidTask
from taskcore.model import (
    Decision,
    Priority,
    Status,
    description_problem,
    new_filename_problem,
    tags_problems,
    title_problem,
)

E = TypeVar("E", bound=enum.Enum)

CALENDAR_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
SMALL_NUMBER = re.compile(r"[0-9]{1,5}")
LIST_LIMIT_MAX = 100
LIST_LIMIT_DEFAULT = 50
CONTENT_TYPE_MAX = 100
ATTACHMENT_SIZE_MAX = 10 * 1024 * 1024


class Unset(enum.Enum):
    """Marks a field a partial update leaves alone (distinct from an explicit null)."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


@attrs.frozen(kw_only=True)
class CreateTask:
    title: str
    description: str = ""
    priority: Priority = Priority.MEDIUM
    tags: tuple[str, ...] = ()
    due_date: date | None = None

    def fingerprint(self) -> str:
        """Stable digest of the request, to tell an idempotent replay from a reused key."""
        canonical = json.dumps(
            [self.title, self.description, self.priority, list(self.tags), str(self.due_date)],
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@attrs.frozen(kw_only=True)
class UpdateTask:
    title: str | Unset = UNSET
    description: str | Unset = UNSET
    priority: Priority | Unset = UNSET
    tags: tuple[str, ...] | Unset = UNSET
    due_date: date | Unset | None = UNSET
    status: Status | Unset = UNSET

    def field_changes(self) -> dict[str, Any]:
        """The mutable fields this update sets (status is a transition, not a field)."""
        return {
            name: value
            for name, value in attrs.asdict(self, recurse=False).items()
            if value is not UNSET and name != "status"
        }


@attrs.frozen(kw_only=True)
class TaskQuery:
    status: Status | None = None
    priority: Priority | None = None
    limit: int = LIST_LIMIT_DEFAULT
    cursor: str | None = None


@attrs.frozen(kw_only=True)
class AddAttachment:
    filename: str
    content_type: str
    size: int


@attrs.frozen(kw_only=True)
class Decide:
    decision: Decision


class _Collector:
    """Reads fields out of a JSON object, remembering every problem on the way."""

    def __init__(self, data: object, allowed: tuple[str, ...]) -> None:
        self.errors: list[FieldError] = []
        if not isinstance(data, Mapping):
            self.errors.append(FieldError("", "must be a JSON object"))
            data = {}
        self.data: Mapping[str, Any] = data
        for name in sorted(set(self.data) - set(allowed), key=str):
            self.errors.append(FieldError(str(name), "is not a known field"))

    def text(self, name: str, problem: Callable[[object], str | None]) -> str | Unset:
        if name not in self.data:
            return UNSET
        value = self.data[name]
        message = problem(value)
        if message is not None:
            self.errors.append(FieldError(name, message))
            return UNSET
        assert isinstance(value, str)
        return value

    def choice(self, name: str, kind: type[E]) -> E | Unset:
        if name not in self.data:
            return UNSET
        value = self.data[name]
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in kind)
            self.errors.append(FieldError(name, f"must be one of: {allowed}"))
            return UNSET

    def tags(self, name: str) -> tuple[str, ...] | Unset:
        if name not in self.data:
            return UNSET
        problems = tags_problems(self.data[name])
        self.errors.extend(problems)
        return UNSET if problems else tuple(self.data[name])

    def day(self, name: str, *, nullable: bool) -> date | Unset | None:
        if name not in self.data:
            return UNSET
        value = self.data[name]
        if value is None and nullable:
            return None
        if isinstance(value, str) and CALENDAR_DATE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.errors.append(FieldError(name, "must be a calendar date like 2030-01-31"))
        return UNSET

    def integer(self, name: str, low: int, high: int) -> int | Unset:
        if name not in self.data:
            return UNSET
        value = self.data[name]
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON has one number type: 5.0 is the integer 5
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.errors.append(FieldError(name, f"must be an integer from {low} to {high}"))
            return UNSET
        return value

    def require(self, name: str, value: object) -> None:
        if value is UNSET and name not in self.data:
            self.errors.append(FieldError(name, "is required"))


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not UNSET}


def parse_create(data: object) -> CreateTask:
    """Build a CreateTask from a decoded JSON body (field names as in the HTTP API)."""
    c = _Collector(data, ("title", "description", "priority", "tags", "dueDate"))
    title = c.text("title", title_problem)
    c.require("title", title)
    fields = _present(
        title=title,
        description=c.text("description", description_problem),
        priority=c.choice("priority", Priority),
        tags=c.tags("tags"),
        due_date=c.day("dueDate", nullable=True),
    )
    if c.errors:
        raise InvalidTask(c.errors)
    return CreateTask(**fields)


def parse_update(data: object) -> UpdateTask:
    c = _Collector(data, ("title", "description", "priority", "tags", "dueDate", "status"))
    fields = _present(
        title=c.text("title", title_problem),
        description=c.text("description", description_problem),
        priority=c.choice("priority", Priority),
        tags=c.tags("tags"),
        due_date=c.day("dueDate", nullable=True),
        status=c.choice("status", Status),
    )
    if c.errors:
        raise InvalidTask(c.errors)
    if not fields:
        raise InvalidTask([FieldError("", "must change at least one field")])
    return UpdateTask(**fields)


def parse_query(params: Mapping[str, str]) -> TaskQuery:
    """Build a TaskQuery from query-string parameters (all strings)."""
    raw: dict[str, object] = dict(params)
    if "limit" in raw:
        limit = str(raw["limit"])
        raw["limit"] = int(limit) if SMALL_NUMBER.fullmatch(limit) else limit
    c = _Collector(raw, ("status", "priority", "limit", "cursor"))
    limit_value = c.integer("limit", 1, LIST_LIMIT_MAX)
    status = c.choice("status", Status)
    priority = c.choice("priority", Priority)
    cursor = raw.get("cursor")
    if c.errors:
        raise InvalidQuery(c.errors)
    return TaskQuery(
        status=None if status is UNSET else status,
        priority=None if priority is UNSET else priority,
        limit=LIST_LIMIT_DEFAULT if limit_value is UNSET else limit_value,
        cursor=str(cursor) if cursor else None,
    )


class InboxName(enum.StrEnum):
    """The inbox a reader names: their own, or the approvers' shared one."""

    ME = "me"
    APPROVERS = "approvers"


@attrs.frozen(kw_only=True)
class NotificationQuery:
    inbox: InboxName = InboxName.ME
    limit: int = LIST_LIMIT_DEFAULT
    cursor: str | None = None


def parse_notification_query(params: Mapping[str, str]) -> NotificationQuery:
    """Build a NotificationQuery from query-string parameters; any other one is refused."""
    raw: dict[str, object] = dict(params)
    if "limit" in raw:
        limit = str(raw["limit"])
        raw["limit"] = int(limit) if SMALL_NUMBER.fullmatch(limit) else limit
    c = _Collector(raw, ("inbox", "limit", "cursor"))
    limit_value = c.integer("limit", 1, LIST_LIMIT_MAX)
    inbox = c.choice("inbox", InboxName)
    cursor = raw.get("cursor")
    if c.errors:
        raise InvalidQuery(c.errors)
    return NotificationQuery(
        inbox=InboxName.ME if inbox is UNSET else inbox,
        limit=LIST_LIMIT_DEFAULT if limit_value is UNSET else limit_value,
        cursor=str(cursor) if cursor else None,
    )


@attrs.frozen(kw_only=True)
class DownloadQuery:
    """What the streaming download takes: every task of the caller, optionally of one status."""

    status: Status | None = None


def parse_download_query(params: Mapping[str, str]) -> DownloadQuery:
    """Build a DownloadQuery from query-string parameters; any other parameter is refused."""
    c = _Collector(dict(params), ("status",))
    status = c.choice("status", Status)
    if c.errors:
        raise InvalidQuery(c.errors)
    return DownloadQuery(status=None if status is UNSET else status)


def _content_type_problem(value: object) -> str | None:
    if not isinstance(value, str) or not 3 <= len(value) <= CONTENT_TYPE_MAX or "/" not in value:
        return "must be a media type like application/pdf"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) > 126 for ch in value):
        return "must be a plain media type without parameters"
    return None


def parse_attachment(data: object) -> AddAttachment:
    c = _Collector(data, ("filename", "contentType", "size"))
    filename = c.text("filename", new_filename_problem)
    content_type = c.text("contentType", _content_type_problem)
    size = c.integer("size", 1, ATTACHMENT_SIZE_MAX)
    for name, value in (("filename", filename), ("contentType", content_type), ("size", size)):
        c.require(name, value)
    if c.errors:
        raise InvalidTask(c.errors)
    assert isinstance(filename, str)
    assert isinstance(content_type, str)
    assert isinstance(size, int)
    return AddAttachment(filename=filename, content_type=content_type.lower(), size=size)


def parse_decision(data: object) -> Decide:
    c = _Collector(data, ("decision",))
    decision = c.choice("decision", Decision)
    c.require("decision", decision)
    if c.errors:
        raise InvalidTask(c.errors)
    assert isinstance(decision, Decision)
    return Decide(decision=decision)
