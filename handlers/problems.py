"""problem+json (RFC 9457) documents, and the one table mapping domain errors to HTTP statuses:
shared by the HTTP API (`handlers.http_api.responses`) and the streaming download
(`handlers.download`), which answer errors the same way. No Powertools here: the download
function does not import the API's resolver."""

from __future__ import annotations

from typing import Any

import attrs

from taskcore import errors

PROBLEM = "application/problem+json"
PROBLEM_BASE = "urn:tasks:problem:"

# Domain error -> (status, title). Ordered: the first matching class wins.
PROBLEMS: tuple[tuple[type[errors.DomainError], int, str], ...] = (
    (errors.InvalidCursor, 400, "Invalid cursor"),
    (errors.InvalidQuery, 400, "Invalid query parameters"),
    (errors.InvalidHeader, 400, "Invalid header"),
    (errors.InvalidInput, 422, "Validation failed"),
    (errors.NotFound, 404, "Not found"),
    (errors.Forbidden, 403, "Forbidden"),
    (errors.IdempotencyKeyReused, 422, "Idempotency-Key reused with another request"),
    (errors.PreconditionFailed, 412, "Precondition failed"),
    (errors.InvalidTransition, 409, "Transition not allowed"),
    (errors.ConcurrentModification, 409, "Concurrent modification"),
    (errors.Conflict, 409, "Conflict"),
    (errors.Unavailable, 503, "Service unavailable"),
    (errors.StorageRejected, 500, "Internal error"),
)


@attrs.frozen(kw_only=True)
class Problem:
    status: int
    code: str
    title: str
    detail: str = ""
    field_errors: tuple[errors.FieldError, ...] = ()

    @property
    def headers(self) -> dict[str, str]:
        """A 503 asks the client to come back in a second."""
        return {"Retry-After": "1"} if self.status == 503 else {}

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if self.field_errors:
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.field_errors]
        return body


INTERNAL = Problem(
    status=500, code="internal", title="Internal error", detail="the error was logged"
)


def domain_problem(error: errors.DomainError) -> Problem:
    """The problem a domain error is answered with. `StorageRejected` (storage refused what we
    sent: our bug) is a 500 whose detail says nothing more; the caller logs it."""
    if isinstance(error, errors.StorageRejected):
        return INTERNAL
    for kind, status, title in PROBLEMS:
        if isinstance(error, kind):
            field_errors = error.errors if isinstance(error, errors.InvalidInput) else ()
            return Problem(
                status=status,
                code=error.code,
                title=title,
                detail=error.message,
                field_errors=field_errors,
            )
    return Problem(status=500, code="internal", title="Internal error")  # one we forgot to map
