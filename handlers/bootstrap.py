"""The composition root: builds the adapters and the service once per Lambda container.

Everything environment-specific is read here and nowhere else. Tests build a `Container` from
the in-memory adapters instead (see `taskcore.testing`).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from taskcore.cursors import CursorCodec
from taskcore.ports import (
    ApprovalWorkflow,
    AttachmentStore,
    Clock,
    EventMarkers,
    StatsStore,
    TaskRepository,
)
from taskcore.services import ExportService, TaskService
from taskcore.system import SystemClock, UlidGenerator

DEFAULT_MAX_BODY_BYTES = 64 * 1024


@attrs.frozen(kw_only=True)
class Container:
    service: TaskService
    clock: Clock
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    exports: ExportService | None = None
    """The export routes' service; None in containers built for other routes only."""


def from_environment(environ: Mapping[str, str] = os.environ) -> Container:
    """Wire the AWS adapters from the function's environment (see stack/manifest.py)."""
    from taskcore.adapters.dynamodb import DynamoStatsStore, DynamoTaskRepository
    from taskcore.adapters.s3 import S3AttachmentStore

    secret = environ.get("CURSOR_SECRET", "")
    if len(secret) < 32:
        raise RuntimeError("CURSOR_SECRET must be set to at least 32 characters")
    clock = SystemClock()
    tasks = DynamoTaskRepository.from_environment(environ)
    service = TaskService(
        tasks=tasks,
        stats=DynamoStatsStore.from_environment(environ),
        attachments=S3AttachmentStore.from_environment(environ),
        workflow=None,
        clock=clock,
        ids=UlidGenerator(),
        cursors=CursorCodec(secret.encode(), ttl=timedelta(hours=24)),
    )
    max_body = int(environ.get("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    exports = export_service_from_environment(environ, tasks=tasks, clock=clock)
    return Container(service=service, clock=clock, max_body_bytes=max_body, exports=exports)


def export_service_from_environment(
    environ: Mapping[str, str] = os.environ,
    *,
    tasks: TaskRepository | None = None,
    clock: Clock | None = None,
) -> ExportService:
    """The export use cases on DynamoDB (records, tasks) and S3 (the objects). Needs
    `TABLE_NAME` and `BUCKET_NAME` only: the worker has no cursor secret."""
    from taskcore.adapters.dynamodb import DynamoExportRepository, DynamoTaskRepository
    from taskcore.adapters.s3 import S3ObjectSink

    return ExportService(
        exports=DynamoExportRepository.from_environment(environ),
        tasks=tasks or DynamoTaskRepository.from_environment(environ),
        objects=S3ObjectSink.from_environment(environ),
        clock=clock or SystemClock(),
        ids=UlidGenerator(),
    )


@functools.cache
def export_service() -> ExportService:
    """The export worker's service, built on first use and kept for the container's life."""
    return export_service_from_environment()


@functools.cache
def container() -> Container:
    """The container of this process, built on first use and kept for the container's life."""
    return from_environment()


# -- single adapters, for the event-driven functions: each builds only what it uses ------------


@functools.cache
def clock() -> Clock:
    return SystemClock()


@functools.cache
def task_repository() -> TaskRepository:
    from taskcore.adapters.dynamodb import DynamoTaskRepository

    return DynamoTaskRepository.from_environment()


@functools.cache
def stats_store() -> StatsStore:
    from taskcore.adapters.dynamodb import DynamoStatsStore

    return DynamoStatsStore.from_environment()


@functools.cache
def attachment_store() -> AttachmentStore:
    from taskcore.adapters.s3 import S3AttachmentStore

    return S3AttachmentStore.from_environment()


@functools.cache
def approval_workflow() -> ApprovalWorkflow:
    from taskcore.adapters.approvals import DynamoApprovalWorkflow

    return DynamoApprovalWorkflow.from_environment()


@functools.cache
def event_markers() -> EventMarkers:
    from taskcore.adapters.approvals import DynamoEventMarkers

    return DynamoEventMarkers.from_environment()


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
