"""A function's configuration: read from its environment once, in the composition root
(`handlers.bootstrap`), typed and checked there, and nowhere else.

The names are the ones the manifest declares (`stack/manifest.py`, `Function.environment`), which
infra resolves to the deployed resources and the local platform to its stand-ins. Each function
gets only the variables it needs; asking for one it was not given fails with the variable's
name. The endpoints are set by the local platform only: on AWS every client talks to AWS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

import attrs

from taskcore.approval_queue import MAX_SHARDS
from taskcore.auto_approval import AutoApprovalRule, rules_from_text

DEFAULT_MAX_BODY_BYTES = 64 * 1024
MIN_CURSOR_SECRET = 32


class ConfigurationError(RuntimeError):
    """The function's environment is missing something, or holds something unusable: a
    deployment error, reported at the first invocation (as a cold-start failure)."""


@attrs.frozen(kw_only=True)
class Endpoints:
    """Where the local platform's stand-ins listen; None: AWS itself."""

    dynamodb: str | None = None
    s3: str | None = None
    events: str | None = None
    stepfunctions: str | None = None
    secretsmanager: str | None = None
    sns: str | None = None


VARIABLES = {
    "table_name": "TABLE_NAME",
    "bucket_name": "BUCKET_NAME",
    "bus_name": "BUS_NAME",
    "cursor_secret_arn": "CURSOR_SECRET_ARN",
    "max_body_bytes": "MAX_BODY_BYTES",
    "auto_approval": "AUTO_APPROVE",
    "jwt_issuer": "JWT_ISSUER",
    "jwt_audience": "JWT_AUDIENCE",
    "topic_arn": "TOPIC_ARN",
    "archive_completed_after_days": "ARCHIVE_COMPLETED_AFTER_DAYS",
    "kms_key_arn": "KMS_KEY_ARN",
    "approval_queue_shards": "APPROVAL_QUEUE_SHARDS",
}
"""Each setting a manifest entry may declare, and its environment variable."""


def _positive_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise ConfigurationError(f"{name} must be a positive integer, not {value!r}")
    return number


def _rules(name: str, value: str | None) -> tuple[AutoApprovalRule, ...]:
    if value is None:
        return ()
    try:
        return rules_from_text(value)
    except ValueError as error:
        raise ConfigurationError(f"{name}: {error}") from None


def _days(name: str, value: str) -> int:
    """A whole number of days, 0 or more (0: never)."""
    if not (value.isascii() and value.isdigit()):
        raise ConfigurationError(f"{name} must be a whole number of days (0: never), not {value!r}")
    return int(value)


def _shards(name: str, value: str) -> int:
    """The approvers' queue's shards: 1 to `taskcore.approval_queue.MAX_SHARDS`."""
    number = _positive_int(name, value)
    if number > MAX_SHARDS:
        raise ConfigurationError(f"{name} must be at most {MAX_SHARDS}, not {value!r}")
    return number


@attrs.frozen(kw_only=True)
class Settings:
    region: str | None = None
    endpoints: Endpoints = Endpoints()
    table_name: str | None = None
    bucket_name: str | None = None
    bus_name: str | None = None
    cursor_secret_arn: str | None = None
    """The Secrets Manager secret holding the cursor-signing keys (`handlers.secrets`): the
    keys themselves are never in the environment."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    jwt_issuer: str | None = None
    """The issuer whose bearer tokens the function verifies itself (requests through a Function
    URL, `handlers.auth`); API Gateway's authorizer trusts the same one."""
    jwt_audience: str | None = None
    jwks_uri: str | None = None
    """Where the issuer's JWKS is; None: under the issuer, where Cognito publishes it."""
    topic_arn: str | None = None
    """The notifications' SNS topic."""
    auto_approval: tuple[AutoApprovalRule, ...] = ()
    """The stack's auto-approval rules (`tasks:autoApprove`), in order; none when unset."""
    archive_completed_after_days: int = 0
    """The stack's `archiveCompletedAfterDays`: a completed task is written with its TTL this
    long after its completion, and archived then; 0 (or unset): never."""
    kms_key_arn: str | None = None
    """The stack's KMS key, which archive objects are written with (SSE-KMS)."""
    approval_queue_shards: int = 1
    """The stack's `approvalQueueShards`: the approvers' queue's index partitions; 1 (or
    unset) keeps the one partition."""

    @property
    def archive_after(self) -> timedelta | None:
        days = self.archive_completed_after_days
        return timedelta(days=days) if days else None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        def get(name: str) -> str | None:
            return environ.get(name) or None

        max_body = get("MAX_BODY_BYTES")
        archive_days = get("ARCHIVE_COMPLETED_AFTER_DAYS")
        shards = get("APPROVAL_QUEUE_SHARDS")
        return cls(
            region=get("AWS_REGION") or get("AWS_DEFAULT_REGION"),
            endpoints=Endpoints(
                dynamodb=get("DYNAMODB_ENDPOINT"),
                s3=get("S3_ENDPOINT"),
                events=get("EVENTS_ENDPOINT"),
                stepfunctions=get("STEPFUNCTIONS_ENDPOINT"),
                secretsmanager=get("SECRETSMANAGER_ENDPOINT"),
                sns=get("SNS_ENDPOINT"),
            ),
            table_name=get("TABLE_NAME"),
            bucket_name=get("BUCKET_NAME"),
            bus_name=get("BUS_NAME"),
            cursor_secret_arn=get("CURSOR_SECRET_ARN"),
            jwt_issuer=get("JWT_ISSUER"),
            jwt_audience=get("JWT_AUDIENCE"),
            jwks_uri=get("JWKS_URI"),
            topic_arn=get("TOPIC_ARN"),
            max_body_bytes=(
                _positive_int("MAX_BODY_BYTES", max_body) if max_body else DEFAULT_MAX_BODY_BYTES
            ),
            auto_approval=_rules("AUTO_APPROVE", get("AUTO_APPROVE")),
            archive_completed_after_days=(
                _days("ARCHIVE_COMPLETED_AFTER_DAYS", archive_days) if archive_days else 0
            ),
            kms_key_arn=get("KMS_KEY_ARN"),
            approval_queue_shards=_shards("APPROVAL_QUEUE_SHARDS", shards) if shards else 1,
        )

    def require(self, setting: str) -> str:
        """The value of a setting this function needs (a `VARIABLES` key)."""
        value = getattr(self, setting)
        if not value:
            raise ConfigurationError(
                f"{VARIABLES[setting]} is not set: declare it in the function's environment "
                "in stack/manifest.py"
            )
        return str(value)
