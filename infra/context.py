"""What every component needs to know about where it deploys: the stack's config and account."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import pulumi
import pulumi_aws as aws

from stack.config import PROJECT, StackConfig


@attrs.frozen(kw_only=True)
class Deployment:
    """The stack's config, and where the AWS provider deploys: its account, partition, region
    and DNS suffix, asked of the provider (so `aws:region` in stack config, `AWS_REGION` or a
    profile's region all give the same ARNs), never assumed."""

    config: StackConfig
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]
    region: pulumi.Output[str]
    dns_suffix: pulumi.Output[str]

    @classmethod
    def current(cls, config: StackConfig) -> Deployment:
        """Where the AWS provider's credentials and region point."""
        partition = aws.get_partition_output()
        return cls(
            config=config,
            account_id=aws.get_caller_identity_output().account_id,
            partition=partition.partition,
            region=aws.get_region_output().region,
            dns_suffix=partition.dns_suffix,
        )

    @property
    def prefix(self) -> str:
        """Prefix of the physical names this stack chooses itself, e.g. `tasks-dev`."""
        return f"{PROJECT}-{self.config.stack}"

    def arn(self, service: str, resource: str, *, region: bool = True) -> pulumi.Output[str]:
        """An ARN in this account, for resources whose ARN is needed before they exist."""
        where = self.region if region else ""
        return pulumi.Output.concat(
            "arn:", self.partition, f":{service}:", where, ":", self.account_id, f":{resource}"
        )

    def regional_principal(self, service: str) -> pulumi.Output[str]:
        """A service principal with the region in it, e.g. `logs.eu-west-1.amazonaws.com`."""
        return pulumi.Output.concat(service, ".", self.region, ".", self.dns_suffix)

    def stateful(self, parent: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options for resources that hold data (table, bucket, key): with deletion protection
        on, `pulumi destroy` and replacements stop at them and a removal leaves them in AWS."""
        keep = self.config.deletion_protection
        return pulumi.ResourceOptions(parent=parent, protect=keep, retain_on_delete=keep)


def policy(statements: Sequence[Mapping[str, Any]]) -> pulumi.Output[str]:
    """An IAM policy document (JSON) whose values may be Outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def trust(service: str, account_id: pulumi.Input[str] | None = None) -> pulumi.Output[str]:
    """A role trust policy for one AWS service; with `account_id`, only on this account's
    behalf (guards against the confused deputy)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": f"{service}.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    if account_id is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return policy([statement])


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
