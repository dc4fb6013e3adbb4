"""The composition root: builds the adapters and the services once per Lambda container.

The function's configuration is read here, once (`handlers.settings.Settings`); every adapter
is built here from it, and only when the function first uses it. Tests build a `Container`
from the in-memory adapters instead (see `taskcore.testing`), or call the `build_*` functions
with settings of their own.
"""

from __future__ import annotations

import functools
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from handlers.settings import DEFAULT_MAX_BODY_BYTES, Settings
from taskcore.cursors import CursorCodec
from taskcore.ports import (
    ApprovalWorkflow,
    AttachmentStore,
    Clock,
    EventMarkers,
    EventPublisher,
    StatsStore,
    TaskRepository,
)
from taskcore.services import ExportService, TaskService
from taskcore.system import SystemClock, UlidGenerator

if TYPE_CHECKING:
    from taskcore.adapters.dynamodb import DynamoStatsStore, DynamoTaskRepository
    from taskcore.adapters.s3 import S3AttachmentStore

CURSOR_TTL = timedelta(hours=24)


@attrs.frozen(kw_only=True)
class Container:
    service: TaskService
    clock: Clock
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    exports: ExportService | None = None
    """The export routes' service; None in containers built for other routes only."""


# -- building, from settings -------------------------------------------------------------------
# The adapters' modules are imported when first built: a function that never builds one never
# pays for its import (botocore's S3 or PynamoDB's models) in its cold start.


def build_task_repository(settings: Settings) -> DynamoTaskRepository:
    from taskcore.adapters.dynamodb import DynamoTaskRepository

    return DynamoTaskRepository(
        settings.require("table_name"),
        endpoint_url=settings.endpoints.dynamodb,
        region=settings.region,
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


def build_container(settings: Settings) -> Container:
    """The HTTP API's services, on DynamoDB and S3."""
    secret = settings.require("cursor_secret")
    clock = SystemClock()
    tasks = build_task_repository(settings)
    service = TaskService(
        tasks=tasks,
        stats=build_stats_store(settings),
        attachments=build_attachment_store(settings),
        workflow=None,
        clock=clock,
        ids=UlidGenerator(),
        cursors=CursorCodec(secret.encode(), ttl=CURSOR_TTL),
    )
    exports = build_export_service(settings, tasks=tasks, clock=clock)
    return Container(
        service=service, clock=clock, max_body_bytes=settings.max_body_bytes, exports=exports
    )


# -- this container's, built on first use and kept for its life --------------------------------


@functools.cache
def settings() -> Settings:
    return Settings.from_environment()


@functools.cache
def container() -> Container:
    return build_container(settings())


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
def stats_store() -> StatsStore:
    return build_stats_store(settings())


@functools.cache
def attachment_store() -> AttachmentStore:
    return build_attachment_store(settings())


@functools.cache
def approval_workflow() -> ApprovalWorkflow:
    from taskcore.adapters.approvals import DynamoApprovalWorkflow
    from taskcore.adapters.dynamodb import TableClient
    from taskcore.adapters.stepfunctions import StepFunctionsCallback

    config = settings()
    table = TableClient(
        config.require("table_name"), endpoint_url=config.endpoints.dynamodb, region=config.region
    )
    callback = StepFunctionsCallback(
        endpoint_url=config.endpoints.stepfunctions, region=config.region
    )
    return DynamoApprovalWorkflow(table, callback)


@functools.cache
def event_markers() -> EventMarkers:
    from taskcore.adapters.dynamodb import DynamoEventMarkers, TableClient

    config = settings()
    return DynamoEventMarkers(
        TableClient(
            config.require("table_name"),
            endpoint_url=config.endpoints.dynamodb,
            region=config.region,
        )
    )


@functools.cache
def event_publisher() -> EventPublisher:
    from taskcore.adapters.eventbridge import EventBridgePublisher

    config = settings()
    return EventBridgePublisher(
        config.require("bus_name"), endpoint_url=config.endpoints.events, region=config.region
    )


# -- metrics -----------------------------------------------------------------------------------


class SandboxMetricsProvider(AmazonCloudWatchEMFProvider):
    """CloudWatch EMF metrics whose pending set (metrics, dimensions, metadata, timestamp) is
    this instance's and this thread's own.

    Powertools' `Metrics` keeps pending metrics in class attributes, one set for every instance
    in the process. On Lambda a process runs one invocation of one function at a time; the
    local platform runs every function's sandboxes as threads of one process, where a flush
    then printed another invocation's metrics under its own name, cleared them, or failed with
    "Must contain at least one metric" (a 500) when another thread cleared the set between its
    check and its write. A thread runs one invocation at a time, as a sandbox does.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._local = threading.local()
        super().__init__(**kwargs)

    def _state(self) -> Any:
        state = self._local
        if not hasattr(state, "metric_set"):
            defaults = getattr(self, "default_dimensions", {})  # unset while __init__ runs
            state.metric_set = {}
            state.dimension_set = {name: str(value) for name, value in defaults.items()}
            state.metadata_set = {}
            state.timestamp = None
            state.dimension_sets = []
        return state

    @property
    def metric_set(self) -> dict[str, Any]:
        return self._state().metric_set  # type: ignore[no-any-return]

    @metric_set.setter
    def metric_set(self, value: dict[str, Any]) -> None:
        self._state().metric_set = value

    @property
    def dimension_set(self) -> dict[str, Any]:
        return self._state().dimension_set  # type: ignore[no-any-return]

    @dimension_set.setter
    def dimension_set(self, value: dict[str, Any]) -> None:
        self._state().dimension_set = value

    @property
    def metadata_set(self) -> dict[str, Any]:
        return self._state().metadata_set  # type: ignore[no-any-return]

    @metadata_set.setter
    def metadata_set(self, value: dict[str, Any]) -> None:
        self._state().metadata_set = value

    @property
    def timestamp(self) -> int | None:
        return self._state().timestamp  # type: ignore[no-any-return]

    @timestamp.setter
    def timestamp(self, value: int | None) -> None:
        self._state().timestamp = value

    @property
    def dimension_sets(self) -> list[dict[str, str]]:
        return self._state().dimension_sets  # type: ignore[no-any-return]

    @dimension_sets.setter
    def dimension_sets(self, value: list[dict[str, str]]) -> None:
        self._state().dimension_sets = value


def sandbox_metrics(service: str, namespace: str = "tasks") -> Metrics:
    """A function's `Metrics`, its pending set its own and per thread (see
    `SandboxMetricsProvider`); on Lambda the same as `Metrics(namespace=..., service=...)`."""
    provider = SandboxMetricsProvider(namespace=namespace, service=service)
    return Metrics(namespace=namespace, service=service, provider=provider)
