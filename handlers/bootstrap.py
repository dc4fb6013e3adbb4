"""The composition root: builds the adapters and the service once per Lambda container.

Everything environment-specific is read here and nowhere else. Tests build a `Container` from
the in-memory adapters instead (see `taskcore.testing`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from datetime import timedelta

import attrs

from taskcore.cursors import CursorCodec
from taskcore.ports import Clock
from taskcore.services import TaskService
from taskcore.system import SystemClock, UlidGenerator

DEFAULT_MAX_BODY_BYTES = 64 * 1024


@attrs.frozen(kw_only=True)
class Container:
    service: TaskService
    clock: Clock
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


def from_environment(environ: Mapping[str, str] = os.environ) -> Container:
    """Wire the AWS adapters from the function's environment (see handlers/manifest.py)."""
    from taskcore.adapters.dynamodb import DynamoStatsStore, DynamoTaskRepository
    from taskcore.adapters.s3 import S3AttachmentStore

    secret = environ.get("CURSOR_SECRET", "")
    if len(secret) < 32:
        raise RuntimeError("CURSOR_SECRET must be set to at least 32 characters")
    clock = SystemClock()
    service = TaskService(
        tasks=DynamoTaskRepository.from_environment(environ),
        stats=DynamoStatsStore.from_environment(environ),
        attachments=S3AttachmentStore.from_environment(environ),
        workflow=None,
        clock=clock,
        ids=UlidGenerator(),
        cursors=CursorCodec(secret.encode(), ttl=timedelta(hours=24)),
    )
    max_body = int(environ.get("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    return Container(service=service, clock=clock, max_body_bytes=max_body)


@functools.cache
def container() -> Container:
    """The container of this process, built on first use and kept for the container's life."""
    return from_environment()
