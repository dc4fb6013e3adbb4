"""The manifest's vocabulary, resolved to this stack's resources.

`stack/manifest.py` says what a function (or workflow) needs in words: permissions such as
`table.read` or `bus.publish`, environment values such as `table.name`. This module is the one
place those words become IAM statements on exactly one resource each, and values. A word it
does not know is an error, never a silent `*`.

The only `"Resource": "*"` statements are for actions that AWS does not scope to a resource
(see `UNSCOPED_ACTIONS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import pulumi

from infra.context import Deployment
from infra.keys import KEY_USE
from stack.manifest import Workflow

# Actions that support no resource-level permission (IAM requires "Resource": "*" for them).
UNSCOPED_ACTIONS = frozenset(
    {
        "dynamodb:ListStreams",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        # Step Functions' vended log delivery to CloudWatch Logs.
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)
TRACING = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
ENCRYPTED = (
    "table.",
    "bucket.",
    "queue.",
    "cursor.",
    "topic.",
    "archive.",
)  # permissions on data encrypted with the stack's key
WRITES_ENCRYPTED = frozenset(
    {
        "table.write",
        "bucket.presign",
        "bucket.write",
        "queue.send",
        "topic.publish",
        "archive.write",
    }
)
ARCHIVE_PREFIX = "archive/"
"""The archive's place in the bucket (`taskcore.services.archive.ARCHIVE_PREFIX`): what the
`archive.*` permissions, the lifecycle rule and the bucket policy's encryption rule name."""
Statement = dict[str, Any]
Grant = (
    tuple[list[str], Sequence[pulumi.Input[str]] | str]
    | tuple[list[str], Sequence[pulumi.Input[str]] | str, dict[str, Any]]
)
"""Actions on resources, with a condition where the resource alone is too broad."""


def state_machine_name(deployment: Deployment, workflow: Workflow) -> str:
    return f"{deployment.prefix}-{workflow.name}"


def state_machine_arn(deployment: Deployment, workflow: Workflow) -> pulumi.Output[str]:
    """Known before the state machine exists (its name is ours), so functions can be granted
    `workflow.respond` on it while the state machine itself needs their ARNs."""
    return deployment.arn("states", f"stateMachine:{state_machine_name(deployment, workflow)}")


def allow(
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]] | str,
    condition: Mapping[str, Any] | None = None,
) -> Statement:
    statement: Statement = {"Effect": "Allow", "Action": list(actions), "Resource": resources}
    if condition:
        statement["Condition"] = dict(condition)
    return statement


@attrs.frozen(kw_only=True)
class Wiring:
    """Every resource the vocabulary names. Outputs, so it can be built before they exist; the
    program (`__main__.py`) builds it from the components that hold them."""

    deployment: Deployment
    key_arn: pulumi.Input[str]
    cursor_secret_arn: pulumi.Input[str]
    table_name: pulumi.Input[str]
    table_arn: pulumi.Input[str]
    table_indexes: Sequence[str]
    stream_arn: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    bus_name: pulumi.Input[str]
    bus_arn: pulumi.Input[str]
    # The bearer tokens' issuer and audience, as API Gateway's authorizer trusts them
    # (`infra.identity`): what a function behind a Function URL verifies tokens against.
    auth_issuer: pulumi.Input[str]
    auth_audience: pulumi.Input[str]
    topic_arn: pulumi.Input[str]
    """The notifications' topic (`infra.notifications`)."""
    state_machine_arns: Sequence[pulumi.Input[str]] = ()
    stage_name: str = "$default"

    def value(self, resource: str) -> pulumi.Input[Any]:
        """A manifest resource reference (`table.name`, ...) as the value it stands for."""
        values: Mapping[str, pulumi.Input[Any]] = {
            "table.name": self.table_name,
            "bucket.name": self.bucket_name,
            "bus.name": self.bus_name,
            "cursor.secret_arn": self.cursor_secret_arn,
            "stage.name": self.stage_name,
            "approval.timeout": self.deployment.config.approval_timeout_hours * 3600,
            "approval.rules": self.deployment.config.auto_approval_text,
            "api.max_body_bytes": self.deployment.config.max_body_bytes,
            "auth.issuer": self.auth_issuer,
            "auth.audience": self.auth_audience,
            "topic.arn": self.topic_arn,
            "archive.after_days": self.deployment.config.archive_completed_after_days,
            "approval.shards": self.deployment.config.approval_queue_shards,
            "key.arn": self.key_arn,
        }
        if resource not in values:
            raise ValueError(f"the manifest names an unknown resource {resource!r}")
        return values[resource]

    def environment(self, variables: Mapping[str, str]) -> dict[str, pulumi.Output[str]]:
        return {
            name: pulumi.Output.from_input(self.value(resource)).apply(str)
            for name, resource in sorted(variables.items())
        }

    def statements(
        self, permissions: Iterable[str], *, queue_arn: pulumi.Input[str] | None = None
    ) -> list[Statement]:
        """IAM statements for the manifest's permissions; `queue_arn` is the caller's own
        failure queue (what `queue.send` names)."""
        grants = self._grants(queue_arn)
        result: list[Statement] = []
        for permission in sorted(permissions):
            if permission not in grants:
                raise ValueError(f"the manifest names an unknown permission {permission!r}")
            targets = grants[permission]
            if not targets:
                raise ValueError(f"{permission}: this stack has no resource it could name")
            result += [allow(*target) for target in targets]
        return result

    def _grants(self, queue_arn: pulumi.Input[str] | None) -> dict[str, list[Grant]]:
        """Each permission: (actions, resources[, condition]); empty when its resource is
        missing."""
        table = self.table_arn
        indexes = [pulumi.Output.concat(table, "/index/", index) for index in self.table_indexes]
        objects = pulumi.Output.concat(self.bucket_arn, "/*")
        archive = pulumi.Output.concat(self.bucket_arn, "/", ARCHIVE_PREFIX, "*")
        # Listing is a bucket action: the condition keeps it to the archive's keys.
        list_archive = {"StringLike": {"s3:prefix": [f"{ARCHIVE_PREFIX}*"]}}
        machines = list(self.state_machine_arns)
        return {
            "table.read": [
                (["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"], [table, *indexes])
            ],
            "cursor.read": [(["secretsmanager:GetSecretValue"], [self.cursor_secret_arn])],
            "table.write": [
                (
                    [
                        "dynamodb:PutItem",
                        "dynamodb:UpdateItem",
                        "dynamodb:DeleteItem",
                        "dynamodb:BatchWriteItem",
                        "dynamodb:ConditionCheckItem",
                    ],
                    [table],
                )
            ],
            "table.stream": [
                (
                    ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                    [self.stream_arn],
                ),
                (["dynamodb:ListStreams"], "*"),
            ],
            "bucket.presign": [(["s3:PutObject", "s3:GetObject"], [objects])],
            "bucket.write": [(["s3:PutObject", "s3:AbortMultipartUpload"], [objects])],
            "bucket.delete": [
                (["s3:ListBucket", "s3:ListBucketVersions"], [self.bucket_arn]),
                (["s3:DeleteObject", "s3:DeleteObjectVersion"], [objects]),
            ],
            "bus.publish": [(["events:PutEvents"], [self.bus_arn])],
            "topic.publish": [(["sns:Publish"], [self.topic_arn])],
            "workflow.respond": ([(["states:SendTaskSuccess"], machines)] if machines else []),
            "queue.send": [(["sqs:SendMessage"], [queue_arn])] if queue_arn is not None else [],
            # The API lists a caller's months and presigns a month's GET; the archiver reads
            # (after listing whether it exists) and rewrites a month's object.
            "archive.read": [
                (["s3:ListBucket"], [self.bucket_arn], list_archive),
                (["s3:GetObject"], [archive]),
            ],
            "archive.write": [
                (["s3:ListBucket"], [self.bucket_arn], list_archive),
                (["s3:GetObject", "s3:PutObject"], [archive]),
            ],
        }

    def key_statement(self, permissions: Iterable[str], *, writes: bool = False) -> Statement:
        """Use of the stack's key: to read what it encrypts, and to write when `writes` or a
        permission writes encrypted data."""
        writes = writes or bool(WRITES_ENCRYPTED & set(permissions))
        return allow(KEY_USE if writes else ["kms:Decrypt"], [self.key_arn])
