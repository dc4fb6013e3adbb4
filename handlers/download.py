"""The streaming download: every task of the caller, newest first, as NDJSON (one task per line,
in the API's own task shape), sent while it is read, one page of the table at a time.

    GET /tasks.ndjson[?status=pending|...]   200 application/x-ndjson, streamed
    GET /health                              200 {"status": "ok"} (the adapter's readiness check)

An ASGI app, served by uvicorn from `handlers/download.sh`: on AWS behind the Lambda Web
Adapter, which turns each invocation of the function's Function URL (invoke mode
RESPONSE_STREAM) into an HTTP request to it and streams the body back as it is written; on the
local platform on its own loopback port. A Function URL has no authorizer, so every request's
bearer token is verified here (`handlers.auth`, the checks API Gateway's authorizer makes);
the owner is the token's subject, never a parameter.

What the stream promises:
- The first page is read before anything is sent, so a refused token (401), a bad parameter
  (400) or unavailable storage (503) is an ordinary problem+json answer.
- Then the status and headers go out with the first page's lines, and each further page is
  read only after the previous one was handed to the connection (uvicorn waits while the
  client's window is full): memory holds one page, whatever the count.
- A client that goes away stops the reading at the next page: nothing keeps running for it.
- A failure after the first byte cannot change the status any more: the stream ends without
  HTTP's final chunk, which clients report as an incomplete body, and the error is logged.

Each request is logged once, on completion: tasks and pages sent, the time to the first byte,
when the last page was read, the total, and whether the client left early.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import attrs
from aws_lambda_powertools import Logger

from handlers import bootstrap, problems
from handlers.claims import challenge, parse_groups
from stack.manifest import DOWNLOAD_PATH
from taskcore import errors
from taskcore.commands import DownloadQuery, parse_download_query
from taskcore.model import Principal, Task, UserId
from taskcore.ports import TaskRepository
from taskcore.serialization import task_to_ndjson
from taskcore.services import USER_ID_MAX, is_user_id, owned_pages

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NDJSON = "application/x-ndjson"
"""NDJSON's media type, as the export objects carry it."""

STREAM_HEADERS = (
    ("content-type", f"{NDJSON}; charset=utf-8"),
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
)


logger = Logger(service="tasks-download")


class Refused(Exception):
    """A request answered with a problem before the stream starts."""

    def __init__(self, problem: problems.Problem, headers: dict[str, str] | None = None) -> None:
        super().__init__(problem.detail or problem.title)
        self.problem = problem
        self.headers = {**problem.headers, **(headers or {})}


@attrs.define
class Outcome:
    """What one request did, for its log line."""

    started: bool = False
    """Whether the response's status and headers were sent."""
    status: int = 0
    tasks: int = 0
    pages: int = 0
    first_byte_ms: float | None = None
    last_page_ms: float | None = None
    client_left: bool = False
    error: str | None = None


def _unauthenticated(reason: str, detail: str | None = None) -> Refused:
    """A 401: `reason` (short, our own words) in the challenge, `detail` (or the reason) in the
    problem."""
    problem = problems.Problem(
        status=401, code="unauthenticated", title="Unauthenticated", detail=detail or reason
    )
    return Refused(problem, {"www-authenticate": challenge(reason)})


@attrs.define
class Download:
    """The app; `repository` and `verifier` are read per request (built once per container by
    `handlers.bootstrap`; tests give their own)."""

    repository: Callable[[], TaskRepository]
    verifier: Callable[[], Any]
    clock: Callable[[], float] = time.perf_counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    # Init, before the adapter's readiness check passes: the repository and
                    # the verifier's settings (no request is sent; the JWKS is fetched by the
                    # first request that needs it).
                    self.repository()
                    self.verifier()
                except Exception as error:  # a deployment error: say so and do not start
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = self.clock()
        outcome = Outcome()
        method, path = scope["method"], scope["path"]
        try:
            if path == "/health":
                if method not in ("GET", "HEAD"):
                    raise _not_allowed(path)
                outcome.status = 200
                await _send_json(send, 200, {"status": "ok"})
                return
            if path != DOWNLOAD_PATH:
                raise Refused(
                    problems.Problem(
                        status=404, code="no-route", title="Not found", detail=f"nothing at {path}"
                    )
                )
            if method not in ("GET", "HEAD"):
                raise _not_allowed(path)
            await self._stream(scope, receive, send, started, outcome)
        except Refused as refused:
            outcome.status = refused.problem.status
            outcome.error = refused.problem.detail or refused.problem.title
            await _send_problem(send, refused.problem, refused.headers)
        except Exception as error:
            if outcome.started:  # mid-stream: the status is gone; drop the connection
                outcome.error = outcome.error or f"{type(error).__name__}: {error}"
                raise
            logger.exception("unhandled error")
            outcome.status, outcome.error = 500, f"{type(error).__name__}: {error}"
            await _send_problem(send, problems.INTERNAL, {})
        finally:
            self._log(scope, started, outcome)

    async def _stream(
        self, scope: Scope, receive: Receive, send: Send, started: float, outcome: Outcome
    ) -> None:
        principal = await self._principal(scope)
        query = _query(scope)
        pages = owned_pages(self.repository(), principal.user_id, status=query.status)
        try:
            first = await _next(pages)
        except errors.DomainError as error:
            raise Refused(problems.domain_problem(error)) from None
        outcome.pages += first is not None
        if first is None:
            outcome.last_page_ms = (self.clock() - started) * 1000
        outcome.status, outcome.started = 200, True
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(k.encode(), v.encode()) for k, v in STREAM_HEADERS],
            }
        )
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        left = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, left))
        try:
            page = first
            while page is not None:
                await send({"type": "http.response.body", "body": _lines(page), "more_body": True})
                outcome.tasks += len(page)
                if outcome.first_byte_ms is None:
                    outcome.first_byte_ms = (self.clock() - started) * 1000
                if left.is_set():
                    outcome.client_left = True
                    return
                page = await _next(pages)
                if page is None:
                    outcome.last_page_ms = (self.clock() - started) * 1000
                else:
                    outcome.pages += 1
            if left.is_set():
                outcome.client_left = True
                return
            await send({"type": "http.response.body", "body": b""})
        finally:
            watcher.cancel()
            with contextlib.suppress(ValueError):  # a read still running on its thread
                pages.close()

    async def _principal(self, scope: Scope) -> Principal:
        from handlers.auth import Unauthorized, bearer_token

        try:
            token = bearer_token(_header(scope, "authorization"))
            claims = await asyncio.to_thread(self.verifier().verify, token)
        except Unauthorized as refused:
            raise _unauthenticated(refused.reason) from None
        except errors.DomainError as error:  # the issuer's keys could not be fetched
            raise Refused(problems.domain_problem(error)) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not is_user_id(subject):
            raise _unauthenticated(
                "the token's subject is invalid",
                f"the token's subject is not an OpenID Connect `sub` (1 to {USER_ID_MAX} "
                "printable ASCII characters)",
            )
        return Principal(user_id=UserId(subject), groups=parse_groups(claims.get("cognito:groups")))

    def _log(self, scope: Scope, started: float, outcome: Outcome) -> None:
        record = {
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": outcome.status,
            "tasks": outcome.tasks,
            "pages": outcome.pages,
            "first_byte_ms": _rounded(outcome.first_byte_ms),
            "last_page_read_ms": _rounded(outcome.last_page_ms),
            "total_ms": _rounded((self.clock() - started) * 1000),
            "client_left": outcome.client_left,
            "request_id": _request_id(scope),
        }
        if outcome.error:
            record["error"] = outcome.error
        if outcome.status >= 500 or (outcome.started and outcome.error):
            logger.error("download", extra=record)
        else:
            logger.info("download", extra=record)


async def _next(pages: Iterator[tuple[Task, ...]]) -> tuple[Task, ...] | None:
    """The next page, read on a worker thread (the event loop keeps serving)."""
    return await asyncio.to_thread(next, pages, None)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _lines(page: tuple[Task, ...]) -> bytes:
    return b"".join(task_to_ndjson(task) for task in page)


def _not_allowed(path: str) -> Refused:
    problem = problems.Problem(
        status=405,
        code="method-not-allowed",
        title="Method not allowed",
        detail=f"only GET is allowed on {path}",
    )
    return Refused(problem, {"allow": "GET, HEAD"})


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


def _query(scope: Scope) -> DownloadQuery:
    raw = bytes(scope.get("query_string", b"")).decode("utf-8", "replace")
    pairs = parse_qsl(raw, keep_blank_values=True)
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        fields = tuple(errors.FieldError(name, "must be given once") for name in sorted(set(names)))
        raise Refused(problems.domain_problem(errors.InvalidQuery(fields)))
    try:
        return parse_download_query(dict(pairs))
    except errors.DomainError as error:
        raise Refused(problems.domain_problem(error)) from None


def _request_id(scope: Scope) -> str | None:
    """The Function URL's request id, which the Lambda Web Adapter passes on in a header."""
    context = _header(scope, "x-amzn-request-context")
    if context:
        with contextlib.suppress(ValueError, AttributeError):
            value = json.loads(context).get("requestId")
            return str(value) if value else None
    return None


async def _watch_disconnect(receive: Receive, left: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            left.set()
            return


async def _send_json(send: Send, status: int, document: Any) -> None:
    body = json.dumps(document, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_problem(send: Send, problem: problems.Problem, headers: dict[str, str]) -> None:
    body = json.dumps(problem.document(), separators=(",", ":"), ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [(b"content-type", problems.PROBLEM.encode())]
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = Download(repository=bootstrap.task_repository, verifier=bootstrap.verifier)
"""The function's app (`handlers/download.sh` serves it)."""
