"""Domain errors. They never carry HTTP or AWS types; adapters map them at the edge."""

from __future__ import annotations

from collections.abc import Iterable

import attrs


@attrs.frozen
class FieldError:
    """One offending input field: a JSON-pointer-like path and a human message."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error a use case raises on purpose."""

    code: str = "domain-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The task (or attachment, export...) does not exist *for this principal*.

    Another user's task is reported as not found, never as forbidden, so its existence
    does not leak.
    """

    code = "not-found"


class Forbidden(DomainError):
    """The principal is known but not allowed to do this (e.g. approving their own task)."""

    code = "forbidden"


class Conflict(DomainError):
    """The request is valid but cannot be applied to the current state."""

    code = "conflict"


class InvalidTransition(Conflict):
    """A lifecycle or approval transition the rules do not allow."""

    code = "invalid-transition"

    def __init__(self, message: str, *, current: str, requested: str) -> None:
        super().__init__(message)
        self.current = current
        self.requested = requested


class ConcurrentModification(Conflict):
    """A conditional write lost a race: the stored version moved on since it was read."""

    code = "concurrent-modification"


class IdempotencyKeyReused(Conflict):
    """An idempotency key was sent again with a different request body."""

    code = "idempotency-key-reused"


class PreconditionFailed(DomainError):
    """The caller's expected version (If-Match) is not the stored one."""

    code = "precondition-failed"

    def __init__(self, message: str, *, expected: int, actual: int | None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class InvalidInput(DomainError):
    """Input that breaks a rule; carries every offending field, not just the first."""

    code = "invalid-input"

    def __init__(self, errors: Iterable[FieldError], message: str = "") -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        if not message:
            message = "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        super().__init__(message)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(e.field for e in self.errors)


class InvalidTask(InvalidInput):
    """Task fields or a task command that break the model's invariants."""

    code = "invalid-task"


class InvalidQuery(InvalidInput):
    """List/query parameters out of range (limit, filters)."""

    code = "invalid-query"


class InvalidHeader(InvalidInput):
    """A request header with a value outside its rules (e.g. Idempotency-Key)."""

    code = "invalid-header"


class InvalidCursor(InvalidInput):
    """A pagination cursor that was tampered with, expired, or issued for another query."""

    code = "invalid-cursor"

    def __init__(self, reason: str) -> None:
        super().__init__([FieldError("cursor", reason)])


class StorageRejected(DomainError):
    """Storage refused a request as malformed: a bug on our side, never the caller's fault."""

    code = "storage-rejected"


class Unavailable(DomainError):
    """A backing service is throttling or down; the request may be retried."""

    code = "unavailable"


class DeadlineExceeded(DomainError):
    """A long-running use case gave up before its runtime would have been cut off."""

    code = "deadline-exceeded"
