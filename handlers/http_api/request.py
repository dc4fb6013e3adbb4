"""What a route reads from the event (`Request`): the principal from the verified JWT claims
(`parse_groups` for the groups claim), the JSON body with its checks (size, media type, UTF-8,
no lone surrogates), headers, query parameters and the If-Match version."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from handlers import bootstrap
from handlers.claims import challenge, parse_groups
from handlers.http_api.responses import JSON, HttpProblem
from taskcore.model import Principal, UserId
from taskcore.services import (
    USER_ID_MAX,
    ExportService,
    NotificationService,
    TaskService,
    is_user_id,
)

ETAG = re.compile(r'^"(\d{1,12})"$')  # strong tags only: If-Match compares strongly


@attrs.define
class Request:
    """What a route reads from the event: the principal, the body, headers, parameters."""

    event: Any  # APIGatewayProxyEventV2
    container: bootstrap.Container
    _principal: Principal | None = None

    @property
    def service(self) -> TaskService:
        return self.container.service

    @property
    def exports(self) -> ExportService:
        if self.container.exports is None:
            raise RuntimeError("this container was built without the export service")
        return self.container.exports

    @property
    def notifications(self) -> NotificationService:
        if self.container.notifications is None:
            raise RuntimeError("this container was built without the notification service")
        return self.container.notifications

    def principal(self) -> Principal:
        """The verified JWT subject and groups (read from the raw event: it is the hot path).

        Through API Gateway, the claims its JWT authorizer verified (Lambda builds the event: a
        caller cannot put them there). Without an authorizer's context (a Function URL), the
        bearer token is verified here (`handlers.auth`)."""
        if self._principal is None:
            context = self.event.raw_event.get("requestContext") or {}
            authorizer = (context.get("authorizer") or {}).get("jwt")
            if authorizer is None:
                claims = self._verified_claims()
            else:
                claims = authorizer.get("claims") or {}
            subject = claims.get("sub")
            if not isinstance(subject, str) or not subject:
                raise HttpProblem(401, "unauthenticated", "Unauthenticated", "no verified subject")
            if not is_user_id(subject):
                raise HttpProblem(
                    401,
                    "unauthenticated",
                    "Unauthenticated",
                    f"the token's subject is not an OpenID Connect `sub` (1 to {USER_ID_MAX} "
                    "printable ASCII characters)",
                )
            groups = parse_groups(claims.get("cognito:groups"))
            self._principal = Principal(user_id=UserId(subject), groups=groups)
        return self._principal

    def _verified_claims(self) -> Mapping[str, Any]:
        from handlers.auth import Unauthorized, bearer_token

        if self.container.verifier is None:
            raise HttpProblem(
                401,
                "unauthenticated",
                "Unauthenticated",
                "this route needs API Gateway's authorizer",
            )
        try:
            return self.container.verifier().verify(bearer_token(self.header("authorization")))
        except Unauthorized as refused:
            raise HttpProblem(
                401,
                "unauthenticated",
                "Unauthenticated",
                refused.reason,
                headers={"WWW-Authenticate": challenge(refused.reason)},
            ) from None

    def header(self, name: str) -> str | None:
        headers: Mapping[str, str] = self.event.headers or {}
        return headers.get(name.lower())

    def query(self) -> dict[str, str]:
        return dict(self.event.query_string_parameters or {})

    def json_body(self, *, required: bool = True) -> Any:
        raw = self.event.body
        if raw is None or raw == "":
            if required:
                raise HttpProblem(400, "missing-body", "Missing body", "a JSON body is required")
            return {}
        if self.event.is_base64_encoded:
            try:
                raw = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise HttpProblem(400, "malformed-body", "Malformed body") from None
        size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
        if size > self.container.max_body_bytes:
            raise HttpProblem(
                413,
                "body-too-large",
                "Body too large",
                f"the body is {size} bytes; the limit is {self.container.max_body_bytes}",
            )
        content_type = (self.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != JSON and not content_type.endswith("+json"):
            raise HttpProblem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as application/json",
            )
        try:
            # JSON between systems is UTF-8 (RFC 8259 section 8.1): no UTF-16, no CESU-8.
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise HttpProblem(
                400, "malformed-json", "Malformed JSON", "the body is not UTF-8"
            ) from None
        try:
            document = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as error:
            raise HttpProblem(400, "malformed-json", "Malformed JSON", str(error)[:200]) from None
        if (not text.isascii() or "\\u" in text) and _holds_lone_surrogate(document):
            # `"\ud800"` is JSON grammar but not Unicode (RFC 8259 section 8.2; I-JSON forbids
            # it): no UTF-8 response could echo it, and no string may be stored with it.
            raise HttpProblem(
                400, "malformed-json", "Malformed JSON", "a string holds a lone surrogate"
            )
        return document

    def expected_version(self) -> int | None:
        value = self.header("if-match")
        if value is None or value.strip() == "*":
            return None
        match = ETAG.match(value.strip())
        if match is None:
            raise HttpProblem(
                412, "precondition-failed", "Precondition failed", "If-Match matches no version"
            )
        return int(match.group(1))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _holds_lone_surrogate(document: Any) -> bool:
    """Whether a string of a decoded JSON document, key or value, holds a lone surrogate
    (json.loads joins escaped pairs, so any surrogate left is alone). Iterative: documents
    nest as deep as the parser allows."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            pending += value.keys()
            pending += value.values()
        elif isinstance(value, list):
            pending += value
    return False
