"""The manifest: every Lambda function, its entry point, triggers, environment and permissions.

This table is the single source of wiring. `infra/` reads it to create each function, its
least-privilege role, its routes, rules and event-source mappings; the local platform reads the
same table to mount routes, deliver stream records and route events. A new route is one line
here (plus its OpenAPI description, which a test keeps in step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

# What a function may do, in the manifest's vocabulary; infra maps each to IAM actions on the
# one resource it names, and nothing else.
Permission = Literal[
    "table.read",
    "table.write",
    "table.stream",
    "bucket.presign",
    "bucket.delete",
    "bucket.write",
    "bus.publish",
    "workflow.respond",
    "queue.send",
]
# Where an environment variable's value comes from: a resource attribute infra (or the local
# platform) resolves, or a literal.
Resource = Literal["table.name", "bucket.name", "bus.name", "cursor.secret", "stage.name"]

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


@attrs.frozen
class Route:
    method: HttpMethod
    path: str  # API Gateway syntax: /tasks/{taskId}
    authorized: bool = True

    @property
    def key(self) -> str:
        """The API Gateway route key, e.g. `GET /tasks/{taskId}`."""
        return f"{self.method} {self.path}"


@attrs.frozen(kw_only=True)
class Function:
    name: str
    handler: str  # module:function, e.g. handlers.http_api:handler
    description: str
    routes: tuple[Route, ...] = ()
    permissions: frozenset[Permission] = frozenset()
    environment: Mapping[str, Resource] = attrs.field(factory=dict)
    memory_mb: int = 512
    timeout_s: int = 10

    @property
    def module(self) -> str:
        return self.handler.split(":")[0]

    @property
    def attribute(self) -> str:
        return self.handler.split(":")[1]


TASK = "/tasks/{taskId}"

API = Function(
    name="api",
    handler="handlers.http_api:handler",
    description="The HTTP API: every route of the API Gateway HTTP API",
    routes=(
        Route("GET", "/health", authorized=False),
        Route("POST", "/tasks"),
        Route("GET", "/tasks"),
        Route("GET", TASK),
        Route("PUT", TASK),
        Route("PATCH", TASK),
        Route("DELETE", TASK),
        Route("POST", f"{TASK}/complete"),
        Route("POST", f"{TASK}/attachments"),
        Route("GET", f"{TASK}/attachments/{{attachmentId}}"),
        Route("GET", "/approvals"),
        Route("POST", f"{TASK}/approval"),
        Route("GET", "/stats"),
    ),
    permissions=frozenset({"table.read", "table.write", "bucket.presign"}),
    environment={
        "TABLE_NAME": "table.name",
        "BUCKET_NAME": "bucket.name",
        "CURSOR_SECRET": "cursor.secret",
    },
    memory_mb=1024,
    timeout_s=10,
)

FUNCTIONS: tuple[Function, ...] = (API,)


def function(name: str) -> Function:
    return next(f for f in FUNCTIONS if f.name == name)


def routes() -> list[tuple[Route, Function]]:
    return [(route, f) for f in FUNCTIONS for route in f.routes]
