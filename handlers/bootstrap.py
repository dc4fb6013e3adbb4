"""The composition root: builds the adapters and the services once per Lambda container.

The function's configuration is read here, once (`handlers.settings.Settings`); every adapter
is built here from it, and only when the function first uses it. Tests build a `Container`
from the in-memory adapters instead (see `taskcore.testing`), or call the `build_*` functions
with settings of their own.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import attrs

from handlers.settings import DEFAULT_MAX_BODY_BYTES, Settings
from taskcore.ports import (
    ApprovalWorkflow,
    AttachmentStore,
    Clock,
    DueTasks,
    EventMarkers,
    EventPublisher,
    Inbox,
    NotificationChannel,
    StatsStore,
    TaskRepository,
)
from taskcore.services import ArchiveService, ExportService, NotificationService, TaskService
from taskcore.system import SystemClock, UlidGenerator

if TYPE_CHECKING:
    from handlers.auth import Verifier
    from handlers.secrets import SecretCursors
    from taskcore.adapters.dynamodb import DynamoStatsStore, DynamoTaskRepository, TableClient
    from taskcore.adapters.s3 import S3ArchiveStore, S3AttachmentStore

CURSOR_TTL = timedelta(hours=24)


@attrs.frozen(kw_only=True)
class Container:
    service: TaskService
    clock: Clock
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    exports: ExportService | None = None
    """The export routes' service; None in containers built for other routes only."""
    notifications: NotificationService | None = None
    """The inbox routes' service; None in containers built for other routes only."""
    verifier: Callable[[], Verifier] | None = None
    """The bearer-token verifier for requests no API Gateway authorizer verified (a Function
    URL's), built on first use: PyJWT and its keys cost nothing to requests through API
    Gateway. None: such requests are refused."""
    archive: ArchiveService | None = None
    """The archive routes' service; None in containers built for other routes only."""


# -- building, from settings -------------------------------------------------------------------
# The adapters' modules are imported when first built: a function that never builds one never
# pays for its import (botocore's S3 or PynamoDB's models) in its cold start.


def build_task_repository(settings: Settings) -> DynamoTaskRepository:
    from taskcore.adapters.dynamodb import DynamoTaskRepository

    return DynamoTaskRepository(
        settings.require("table_name"),
        endpoint_url=settings.endpoints.dynamodb,
        region=settings.region,
        archive_after=settings.archive_after,
        approval_shards=settings.approval_queue_shards,
    )


def build_stats_store(settings: Settings) -> DynamoStatsStore:
    from taskcore.adapters.dynamodb import DynamoStatsStore

    return DynamoStatsStore(
        settings.require("table_name"),
        endpoint_url=settings.endpoints.dynamodb,
        region=settings.region,
    )


def build_attachment_store(settings: Settings) -> S3AttachmentStore:
    from taskcore.adapters.s3 import S3AttachmentStore

    return S3AttachmentStore(
        settings.require("bucket_name"), endpoint_url=settings.endpoints.s3, region=settings.region
    )


def build_export_service(
    settings: Settings, *, tasks: TaskRepository | None = None, clock: Clock | None = None
) -> ExportService:
    """The export use cases on DynamoDB (records, tasks) and S3 (the objects). Needs the table
    and the bucket only: the worker has no cursor secret."""
    from taskcore.adapters.dynamodb import DynamoExportRepository
    from taskcore.adapters.s3 import S3ObjectSink

    exports = DynamoExportRepository(
        settings.require("table_name"),
        endpoint_url=settings.endpoints.dynamodb,
        region=settings.region,
    )
    objects = S3ObjectSink(
        settings.require("bucket_name"), endpoint_url=settings.endpoints.s3, region=settings.region
    )
    return ExportService(
        exports=exports,
        tasks=tasks or build_task_repository(settings),
        objects=objects,
        clock=clock or SystemClock(),
        ids=UlidGenerator(),
    )


def build_archive_store(settings: Settings) -> S3ArchiveStore:
    from taskcore.adapters.s3 import S3ArchiveStore

    return S3ArchiveStore(
        settings.require("bucket_name"),
        endpoint_url=settings.endpoints.s3,
        region=settings.region,
        sse_kms_key_id=settings.kms_key_arn,
    )


def archive_pause(attempt: int) -> None:
    """Between an archiver's attempts lost to another writer of the same month: a jittered,
    growing sleep (up to 50 ms, 100 ms, ... 1 s), so a burst of archivers spreads out."""
    time.sleep(random.uniform(0, min(1.0, 0.025 * 2**attempt)))  # noqa: S311 - jitter, not a secret


def build_archive_service(settings: Settings, *, clock: Clock | None = None) -> ArchiveService:
    """The archive on S3: the archiver writes it, the API lists and presigns it."""
    return ArchiveService(
        store=build_archive_store(settings), clock=clock or SystemClock(), pause=archive_pause
    )


def build_cursors(settings: Settings) -> SecretCursors:
    """The cursor-signing keys, read from their secret on first use (`handlers.secrets`)."""
    from handlers.secrets import SecretCursors
    from taskcore.adapters.clients import LazyClient

    client = LazyClient(
        "secretsmanager", settings.endpoints.secretsmanager, settings.region, timeout_s=3
    )
    return SecretCursors(settings.require("cursor_secret_arn"), client, ttl=CURSOR_TTL)


def build_verifier(settings: Settings) -> Verifier:
    """The issuer's rules and keys (`handlers.auth`), the JWKS fetched on first use."""
    from handlers.auth import RemoteKeys, Verifier, jwks_uri

    issuer = settings.require("jwt_issuer")
    return Verifier(
        issuer=issuer,
        audience=settings.require("jwt_audience"),
        keys=RemoteKeys(settings.jwks_uri or jwks_uri(issuer)),
    )


def build_container(settings: Settings) -> Container:
    """The HTTP API's services, on DynamoDB and S3."""
    cursors = build_cursors(settings)
    clock = SystemClock()
    tasks = build_task_repository(settings)
    service = TaskService(
        tasks=tasks,
        stats=build_stats_store(settings),
        attachments=build_attachment_store(settings),
        clock=clock,
        ids=UlidGenerator(),
        cursors=cursors,
        auto_approval=settings.auto_approval,
    )
    exports = build_export_service(settings, tasks=tasks, clock=clock)
    notifications = NotificationService(inbox=build_inbox(settings), clock=clock, cursors=cursors)
    return Container(
        service=service,
        clock=clock,
        max_body_bytes=settings.max_body_bytes,
        exports=exports,
        notifications=notifications,
        verifier=verifier if settings.jwt_issuer else None,
        archive=build_archive_service(settings, clock=clock),
    )


# -- this container's, built on first use and kept for its life --------------------------------


@functools.cache
def settings() -> Settings:
    return Settings.from_environment()


@functools.cache
def container() -> Container:
    return build_container(settings())


def prepare_cursors() -> None:
    """Before a SnapStart snapshot: ready the cursor secret's first read (its imports), not
    the read (`handlers.secrets.prepare_first_read`)."""
    from handlers.secrets import prepare_first_read

    prepare_first_read()


def prepare_verifier() -> None:
    """Before a SnapStart snapshot: the in-function token verifier (PyJWT and its crypto
    imports), for a function that has an issuer; its JWKS is fetched after the restore."""
    if settings().jwt_issuer:
        verifier()


@functools.cache
def verifier() -> Verifier:
    return build_verifier(settings())


@functools.cache
def export_service() -> ExportService:
    return build_export_service(settings())


@functools.cache
def clock() -> Clock:
    return SystemClock()


@functools.cache
def task_repository() -> TaskRepository:
    return build_task_repository(settings())


@functools.cache
def due_tasks() -> DueTasks:
    """The due-date index, for the reminder sweep (the task repository answers it)."""
    return build_task_repository(settings())


@functools.cache
def stats_store() -> StatsStore:
    return build_stats_store(settings())


@functools.cache
def attachment_store() -> AttachmentStore:
    return build_attachment_store(settings())


@functools.cache
def archive_service() -> ArchiveService:
    return build_archive_service(settings())


def build_table_client(settings: Settings) -> TableClient:
    """The table's low-level client (approval records, event markers)."""
    from taskcore.adapters.dynamodb import TableClient

    return TableClient(
        settings.require("table_name"),
        endpoint_url=settings.endpoints.dynamodb,
        region=settings.region,
    )


def build_inbox(settings: Settings) -> Inbox:
    """The notifications' inboxes, on the table."""
    from taskcore.adapters.dynamodb import DynamoInbox

    return DynamoInbox(build_table_client(settings))


@functools.cache
def inbox() -> Inbox:
    return build_inbox(settings())


@functools.cache
def notification_channel() -> NotificationChannel:
    from taskcore.adapters.sns import SnsChannel

    config = settings()
    return SnsChannel(
        config.require("topic_arn"), endpoint_url=config.endpoints.sns, region=config.region
    )


@functools.cache
def approval_workflow() -> ApprovalWorkflow:
    from taskcore.adapters.approvals import DynamoApprovalWorkflow
    from taskcore.adapters.stepfunctions import StepFunctionsCallback

    config = settings()
    callback = StepFunctionsCallback(
        endpoint_url=config.endpoints.stepfunctions, region=config.region
    )
    return DynamoApprovalWorkflow(build_table_client(config), callback)


@functools.cache
def event_markers() -> EventMarkers:
    from taskcore.adapters.dynamodb import DynamoEventMarkers

    return DynamoEventMarkers(build_table_client(settings()))


@functools.cache
def event_publisher() -> EventPublisher:
    from taskcore.adapters.eventbridge import EventBridgePublisher

    config = settings()
    return EventBridgePublisher(
        config.require("bus_name"), endpoint_url=config.endpoints.events, region=config.region
    )
