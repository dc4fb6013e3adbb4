"""Data: the one DynamoDB table, deployed from `table_definition()` (the definition the tests
create their tables from), so keys, indexes and stream cannot drift from the code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import pulumi
import pulumi_aws as aws

from infra.context import Deployment
from taskcore.adapters.dynamodb import TTL_ATTRIBUTE, table_definition

DEFINITION = table_definition("tasks")


def _key(schema: Sequence[Mapping[str, str]], kind: str) -> str:
    return next(k["AttributeName"] for k in schema if k["KeyType"] == kind)


def index_names(definition: Mapping[str, Any] = DEFINITION) -> list[str]:
    return [
        index["IndexName"]
        for group in ("LocalSecondaryIndexes", "GlobalSecondaryIndexes")
        for index in definition.get(group, [])
    ]


@attrs.frozen
class DataArgs:
    deployment: Deployment
    key_arn: pulumi.Input[str]


class Data(pulumi.ComponentResource):
    table: aws.dynamodb.Table
    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    stream_arn: pulumi.Output[str]
    index_names: list[str]

    def __init__(
        self, name: str, args: DataArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tasks:data:Data", name, None, opts)
        config = args.deployment.config
        d = DEFINITION
        stream = d["StreamSpecification"]
        self.table = aws.dynamodb.Table(
            f"{name}-tasks",
            billing_mode=d["BillingMode"],
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=a["AttributeName"], type=a["AttributeType"])
                for a in d["AttributeDefinitions"]
            ],
            hash_key=_key(d["KeySchema"], "HASH"),
            range_key=_key(d["KeySchema"], "RANGE"),
            local_secondary_indexes=[
                aws.dynamodb.TableLocalSecondaryIndexArgs(
                    name=i["IndexName"],
                    range_key=_key(i["KeySchema"], "RANGE"),
                    projection_type=i["Projection"]["ProjectionType"],
                )
                for i in d["LocalSecondaryIndexes"]
            ],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=i["IndexName"],
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name=k["AttributeName"], key_type=k["KeyType"]
                        )
                        for k in i["KeySchema"]
                    ],
                    projection_type=i["Projection"]["ProjectionType"],
                )
                for i in d["GlobalSecondaryIndexes"]
            ],
            stream_enabled=stream["StreamEnabled"],
            stream_view_type=stream["StreamViewType"],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=TTL_ATTRIBUTE, enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=args.key_arn
            ),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(
                enabled=config.point_in_time_recovery
            ),
            deletion_protection_enabled=config.deletion_protection,
            opts=args.deployment.stateful(self),
        )
        self.name = self.table.name
        self.arn = self.table.arn
        self.stream_arn = self.table.stream_arn
        self.index_names = index_names()
        self.register_outputs({"name": self.name, "arn": self.arn, "streamArn": self.stream_arn})
