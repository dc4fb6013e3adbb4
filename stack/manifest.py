"""The manifest: every Lambda function, its entry point, triggers, environment, permissions and
cold-start mode.

This table is the single source of wiring. `infra/` reads it to create each function, its
least-privilege role, its routes, rules and event-source mappings; the local platform reads the
same table to mount routes, deliver stream records and route events. A new route is one line
here (plus its OpenAPI description, which a test keeps in step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from stack import schedules
from stack.cold_start import ColdStart
from stack.workflows import TIMED_OUT, TOKEN_ISSUED, WORKFLOW_SOURCE
from taskcore.adapters.stream_filters import STREAM_FILTERS
from taskcore.events import (
    EVENT_SOURCE,
    EXPORT_REQUESTED,
    ApprovalDecided,
    ApprovalRequested,
    TaskArchived,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskDueSoon,
    TaskUpdated,
)
from taskcore.notifications import APPROVERS_INBOX
from taskcore.services.reminders import SWEEP_EVERY_MINUTES

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
    "cursor.read",
    "topic.publish",
    # The archive (`archive/` in the bucket) only: list it and read (presign) its objects;
    # and, to write, read-modify-write them, encrypted with the stack's key.
    "archive.read",
    "archive.write",
]
# Where an environment variable's value comes from: a resource attribute infra (or the local
# platform) resolves, or a literal.
Resource = Literal[
    "table.name",
    "bucket.name",
    "bus.name",
    "cursor.secret_arn",
    "stage.name",
    "approval.timeout",
    "approval.rules",
    "api.max_body_bytes",
    "auth.issuer",
    "auth.audience",
    "topic.arn",
    "archive.after_days",  # the stack's `archiveCompletedAfterDays` (0: never)
    "key.arn",  # the stack's KMS key
    "approval.shards",  # the stack's `approvalQueueShards` (docs/scale.md)
]

AUTO_APPROVE_VARIABLE = "AUTO_APPROVE"
"""The API function's auto-approval rules (`approval.rules`: the stack's `tasks:autoApprove`,
as `taskcore.auto_approval.rules_to_text` writes them)."""

ASYNC_RETRIES = 2
"""Lambda's own retries of an event a consumer failed on (0-2), before its on-failure
destination: infra configures them, the local bus keeps them."""

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
class StreamTrigger:
    """The table's DynamoDB stream feeds this function (an event-source mapping).

    A failing batch is bisected to isolate the poison record; after `max_retries` (or
    `max_record_age_s`) the record goes to the on-failure destination (an SQS queue infra
    creates), so nothing is dropped silently. The function reports partial batch failures.
    """

    batch_size: int = 100
    max_batching_window_s: int = 1
    max_retries: int = 3
    max_record_age_s: int = 3600
    bisect_on_error: bool = True
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    filters: tuple[Mapping[str, Any], ...] = ()
    """Lambda event-filtering patterns (the mapping's `FilterCriteria`), ORed; a record matching
    none is dropped without invoking the function (a batch of such records, no invocation at
    all). Empty: every record. The local platform's poller applies the same patterns."""


@attrs.frozen(kw_only=True)
class EventRule:
    """An EventBridge rule on the bus delivering matching events to a target.

    `pattern` is an EventBridge event pattern; the local bus matches the same patterns.
    Delivery is retried (`max_retries`, `max_event_age_s`), then sent to a DLQ.
    """

    name: str
    pattern: Mapping[str, Any]
    max_retries: int = 8
    max_event_age_s: int = 3600


def _schedule_expression(_instance: object, _attribute: object, value: str) -> None:
    schedules.check(value)


@attrs.frozen(kw_only=True)
class Schedule:
    """An EventBridge scheduled rule invoking this function: `expression` is a cron or rate
    expression as EventBridge accepts it (`stack.schedules`, checked here), in UTC. The
    function receives EventBridge's scheduled event (source `aws.events`, detail-type
    `Scheduled Event`) whose `time` is when the rule fired.

    AWS runs scheduled rules on an account's default bus only, so infra puts the rule there,
    named `tasks-<stack>-<name>`; delivery is retried (`max_retries`, `max_event_age_s`), then
    sent to a DLQ, as for an `EventRule`. The local platform fires it at the times it names,
    in its own clock (`--clock-offset`), or when asked (`--manual-schedules`, SIGUSR1).
    """

    name: str
    expression: str = attrs.field(validator=_schedule_expression)
    max_retries: int = 8
    max_event_age_s: int = 3600


InvokeMode = Literal["BUFFERED", "RESPONSE_STREAM"]

AUTH_ENVIRONMENT: Mapping[str, Resource] = {
    "JWT_ISSUER": "auth.issuer",
    "JWT_AUDIENCE": "auth.audience",
}
"""What a function needs to verify bearer tokens itself (`handlers.auth`): the issuer API
Gateway's authorizer trusts, and its audience. The issuer's JWKS is at Cognito's place under it,
unless `JWKS_URI` says otherwise (the local platform, on another port)."""


@attrs.frozen(kw_only=True)
class FunctionUrl:
    """A Lambda Function URL on the function's `live` alias, with auth type NONE: AWS checks no
    caller, so the function verifies every request's bearer token itself (`handlers.auth`),
    and must be given `AUTH_ENVIRONMENT` (the policy pack refuses a URL on a function without
    it). Whether a stack creates the URL is its config's `tasks:functionUrls`; its CORS origins
    are the stack's `tasks:corsAllowOrigins`; the function's reserved concurrency (the stack's
    `tasks:reservedConcurrency` for the API, `tasks:downloadConcurrency` for the download)
    bounds what abuse of it can cost."""

    invoke_mode: InvokeMode = "BUFFERED"
    routes: tuple[Route, ...] = ()
    """What a web function serves through its URL (a handler function serves its API routes
    through it too); the OpenAPI description documents each, on the URL's own server."""


DOWNLOAD_PATH = "/tasks.ndjson"
"""The streaming download, on the download function's URL: the path names what it sends, and
is no route of the API's."""


@attrs.frozen(kw_only=True)
class WebAdapter:
    """The function is an ASGI app behind AWS's Lambda Web Adapter (a layer AWS publishes): its
    Lambda handler is `script`, which starts a web server for `app` on `$AWS_LWA_PORT`, and the
    adapter turns each invocation into an HTTP request to it and streams the answer back (the
    Python runtime cannot stream a response itself). The local platform runs the same script
    on a loopback port. `readiness_path` is what the adapter polls before the first request."""

    script: str
    app: str
    readiness_path: str = "/health"


@attrs.frozen(kw_only=True)
class Function:
    name: str
    handler: str  # module:function, e.g. handlers.http_api:handler
    description: str
    routes: tuple[Route, ...] = ()
    stream: StreamTrigger | None = None
    rules: tuple[EventRule, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    invoked_by_workflow: bool = False  # a step of a state machine (lambda:invoke)
    permissions: frozenset[Permission] = frozenset()
    environment: Mapping[str, Resource] = attrs.field(factory=dict)
    memory_mb: int = 512
    timeout_s: int = 10
    # The function(s) serving HTTP routes take the stack's `tasks:coldStart` instead.
    cold_start: ColdStart = attrs.field(factory=ColdStart)
    url: FunctionUrl | None = None
    web: WebAdapter | None = None

    def __attrs_post_init__(self) -> None:
        if self.url is not None and not AUTH_ENVIRONMENT.keys() <= self.environment.keys():
            raise ValueError(f"{self.name}: a Function URL needs {sorted(AUTH_ENVIRONMENT)}")
        if self.web is not None and self.web.app != self.handler:
            raise ValueError(f"{self.name}: a web function's handler is its app")

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
        Route("POST", "/exports"),
        Route("GET", "/exports/{exportId}"),
        Route("GET", "/notifications"),
        Route("POST", "/notifications/{notificationId}/read"),
        Route("GET", "/archive"),
        Route("GET", "/archive/{month}"),
    ),
    permissions=frozenset(
        {"table.read", "table.write", "bucket.presign", "cursor.read", "archive.read"}
    ),
    environment={
        "TABLE_NAME": "table.name",
        "BUCKET_NAME": "bucket.name",
        "CURSOR_SECRET_ARN": "cursor.secret_arn",
        "MAX_BODY_BYTES": "api.max_body_bytes",
        AUTO_APPROVE_VARIABLE: "approval.rules",
        # It writes completed tasks: with their TTL, when the stack archives them. (No other
        # function saves a completed task; one that did would need this too, or its full-item
        # write would drop the TTL.)
        "ARCHIVE_COMPLETED_AFTER_DAYS": "archive.after_days",
        # It alone writes and reads the approvers' queue (a task awaiting approval is written
        # by no other function; the timeout's consumer writes it out of the queue).
        "APPROVAL_QUEUE_SHARDS": "approval.shards",
        **AUTH_ENVIRONMENT,
    },
    memory_mb=1024,
    timeout_s=10,
    # The backup path beside API Gateway: the same handler, routes and answers.
    url=FunctionUrl(invoke_mode="BUFFERED"),
)

DOWNLOAD = Function(
    name="download",
    handler="handlers.download:app",
    description="All of the caller's tasks as NDJSON, streamed page by page (Function URL)",
    web=WebAdapter(script="handlers/download.sh", app="handlers.download:app"),
    url=FunctionUrl(invoke_mode="RESPONSE_STREAM", routes=(Route("GET", DOWNLOAD_PATH),)),
    permissions=frozenset({"table.read"}),
    environment={"TABLE_NAME": "table.name", **AUTH_ENVIRONMENT},
    # Reading and serialising pages is CPU-bound; memory use is flat (one page at a time).
    memory_mb=1024,
    # A Function URL streams for at most 15 minutes; 20,000 tasks take seconds.
    timeout_s=300,
)


@attrs.frozen(kw_only=True)
class Workflow:
    """A Step Functions state machine, started by an EventBridge rule.

    `definition` names a function `(**arguments) -> dict` that returns the ASL; `steps` maps
    each ASL argument that must be a Lambda ARN to the manifest function it invokes, and
    `arguments` maps the other arguments to resources (as in `Function.environment`).
    `permissions` are what the state machine's own role needs (its service integrations).
    """

    name: str
    description: str
    definition: str  # module:function
    started_by: EventRule
    steps: Mapping[str, str] = attrs.field(factory=dict)
    arguments: Mapping[str, Resource] = attrs.field(factory=dict)
    permissions: frozenset[Permission] = frozenset()


def on(*detail_types: str, source: str = EVENT_SOURCE, name: str) -> EventRule:
    return EventRule(name=name, pattern={"source": [source], "detail-type": list(detail_types)})


STREAM = Function(
    name="stream",
    handler="handlers.stream:handler",
    description="DynamoDB stream -> domain events on the bus (batches of 10, partial failures)",
    # Only task changes and export requests: stats, marks, inbox, tokens cost no invocation.
    stream=StreamTrigger(filters=STREAM_FILTERS),
    permissions=frozenset({"table.stream", "bus.publish"}),
    environment={"BUS_NAME": "bus.name"},
    memory_mb=512,
    timeout_s=60,
)

STATS = Function(
    name="stats",
    handler="handlers.consumers:record_stats",
    description="Per-user stats from task events, once per event id",
    rules=(
        EventRule(
            name="task-events-to-stats",
            # Only the events that move stats (taskcore.stats.delta_for): every delivery is an
            # invocation, and an edit that moves no status would be one for nothing
            # (docs/cost.md). A completion's TaskUpdated carries its week and time too.
            pattern={
                "source": [EVENT_SOURCE],
                "$or": [
                    {"detail-type": [TaskCreated.kind, TaskDeleted.kind]},
                    {"detail-type": [TaskUpdated.kind], "detail": {"changed": ["status"]}},
                ],
            },
        ),
    ),
    permissions=frozenset({"table.read", "table.write"}),
    environment={"TABLE_NAME": "table.name"},
    memory_mb=256,
)

ATTACHMENT_CLEANUP = Function(
    name="attachment-cleanup",
    handler="handlers.consumers:remove_attachments",
    description="Delete a deleted task's attachments (every version) from the bucket",
    rules=(on(TaskDeleted.kind, name="task-deleted-to-cleanup"),),
    permissions=frozenset({"bucket.delete"}),
    environment={"BUCKET_NAME": "bucket.name"},
    memory_mb=256,
    timeout_s=120,
)

COMPLETION_METRICS = Function(
    name="completion-metrics",
    handler="handlers.consumers:completion_metrics",
    description="EMF metrics for completed tasks (count, time to complete), once per event",
    rules=(on(TaskCompleted.kind, name="task-completed-to-metrics"),),
    permissions=frozenset({"table.write"}),
    environment={"TABLE_NAME": "table.name"},
    memory_mb=256,
)

APPROVAL_TOKEN = Function(
    name="approval-token",
    handler="handlers.approvals:token_issued",
    description="Keep the approval workflow's task token; release it if already decided",
    rules=(on(TOKEN_ISSUED, source=WORKFLOW_SOURCE, name="approval-token-issued"),),
    permissions=frozenset({"table.read", "table.write", "workflow.respond"}),
    environment={"TABLE_NAME": "table.name"},
    memory_mb=256,
)

APPROVAL_DECIDED = Function(
    name="approval-decided",
    handler="handlers.approvals:decided",
    description="Release the approval workflow once the API has recorded a decision",
    rules=(on(ApprovalDecided.kind, name="approval-decided-to-workflow"),),
    permissions=frozenset({"table.read", "table.write", "workflow.respond"}),
    environment={"TABLE_NAME": "table.name"},
    memory_mb=256,
)

APPROVAL_TIMEOUT = Function(
    name="approval-timeout",
    handler="handlers.approvals:timed_out",
    description="Expire an approval the workflow waited for in vain (cancels the task)",
    rules=(on(TIMED_OUT, source=WORKFLOW_SOURCE, name="approval-timed-out"),),
    permissions=frozenset({"table.read", "table.write"}),
    environment={"TABLE_NAME": "table.name"},
    memory_mb=256,
)

EXPORTS = Function(
    name="exports",
    handler="handlers.exports:worker",
    description="Export a user's tasks to S3 as NDJSON (multipart, constant memory)",
    rules=(
        EventRule(
            name="export-requested",
            pattern={"source": [EVENT_SOURCE], "detail-type": [EXPORT_REQUESTED]},
        ),
    ),
    permissions=frozenset({"table.read", "table.write", "bucket.write"}),
    environment={"TABLE_NAME": "table.name", "BUCKET_NAME": "bucket.name"},
    # Memory use is flat (one 8 MiB part at a time, ~100 MB in all); the size buys CPU share,
    # which is what serialising tasks is bound by.
    memory_mb=1024,
    timeout_s=900,
)

NOTIFICATIONS = Function(
    name="notifications",
    handler="handlers.notifications:notify",
    description="Notifications from events: the recipient's inbox and the topic, once each",
    rules=(
        on(
            ApprovalRequested.kind,
            ApprovalDecided.kind,
            TaskDueSoon.kind,
            name="events-to-notifications",
        ),
    ),
    permissions=frozenset({"table.read", "table.write", "topic.publish"}),
    environment={"TABLE_NAME": "table.name", "TOPIC_ARN": "topic.arn"},
    memory_mb=256,
)

APPROVERS_FILTER = {"recipient": [APPROVERS_INBOX]}
"""The filter policy of the approvers' email subscription (`tasks:approversEmail`): the
notifications addressed to the approvers' inbox, and nothing else."""

REMINDERS = Function(
    name="reminders",
    handler="handlers.reminders:sweep",
    description="Due-date reminders: TaskDueSoon for open tasks due tomorrow (UTC), on a schedule",
    # The sweep's window is built for this cadence (taskcore.services.reminders.LOOKBACK).
    schedules=(
        Schedule(
            name="due-date-reminders",
            expression=f"cron(0/{SWEEP_EVERY_MINUTES} * * * ? *)",
            # A lost run loses nothing (the next one's window covers it): no use retrying a
            # run for longer than the runs after it would take to cover it anyway.
            max_event_age_s=SWEEP_EVERY_MINUTES * 60,
        ),
    ),
    permissions=frozenset({"table.read", "bus.publish"}),
    environment={"TABLE_NAME": "table.name", "BUS_NAME": "bus.name"},
    memory_mb=256,
    # At 00:00 a run reads every task due tomorrow: per 1,000 tasks, 10 BatchGetItem and 100
    # PutEvents requests, ~2 s at ~20 ms each (an estimate, not measured), so 5 minutes is
    # roughly 100,000 tasks due on one day; past that, one invocation per shard.
    timeout_s=300,
)

ARCHIVER = Function(
    name="archiver",
    handler="handlers.consumers:archive_task",
    description="Write a task the table's TTL archived to its owner's month in S3, once",
    rules=(on(TaskArchived.kind, name="task-archived-to-archive"),),
    permissions=frozenset({"archive.write"}),
    environment={"BUCKET_NAME": "bucket.name", "KMS_KEY_ARN": "key.arn"},
    memory_mb=256,
    # A month's object is read and rewritten whole, retried when another archiver of the
    # month wrote first: seconds, even for thousands of tasks a month.
    timeout_s=60,
)

APPROVAL = Workflow(
    name="approval",
    description="Approve a high or critical task by rule or ask approvers; expire it on timeout",
    definition="stack.workflows:approval_definition",
    started_by=on(ApprovalRequested.kind, name="approval-requested-to-workflow"),
    arguments={"bus_name": "bus.name", "timeout_seconds": "approval.timeout"},
    permissions=frozenset({"bus.publish"}),
)

FUNCTIONS: tuple[Function, ...] = (
    API,
    STREAM,
    STATS,
    ATTACHMENT_CLEANUP,
    COMPLETION_METRICS,
    APPROVAL_TOKEN,
    APPROVAL_DECIDED,
    APPROVAL_TIMEOUT,
    EXPORTS,
    DOWNLOAD,
    NOTIFICATIONS,
    REMINDERS,
    ARCHIVER,
)
WORKFLOWS: tuple[Workflow, ...] = (APPROVAL,)


def function(name: str) -> Function:
    return next(f for f in FUNCTIONS if f.name == name)


def routes() -> list[tuple[Route, Function]]:
    return [(route, f) for f in FUNCTIONS for route in f.routes]
