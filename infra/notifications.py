"""Notifications: the SNS topic the notifications consumer publishes to (`handlers.notifications`).

The topic is encrypted with the stack's key (the publisher's role may use the key, see
`infra.wiring`); each message carries the attributes `recipient` (`user:<sub>` or
`group:approvers`) and `kind`, which subscriptions filter on. With `tasks:approversEmail`, that
address is subscribed with the filter policy that sends it what is addressed to the approvers
(`stack.manifest.APPROVERS_FILTER`); SNS emails it a confirmation link first, and delivers
nothing until it is followed. Operators add email, SMS, HTTPS or SQS subscriptions of their own
with filter policies on the same attributes.
"""

from __future__ import annotations

import json

import attrs
import pulumi
import pulumi_aws as aws

from infra.context import Deployment
from stack.manifest import APPROVERS_FILTER


@attrs.frozen
class NotificationsArgs:
    deployment: Deployment
    key_arn: pulumi.Input[str]


class Notifications(pulumi.ComponentResource):
    topic: aws.sns.Topic
    topic_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: NotificationsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tasks:notifications:Notifications", name, None, opts)
        env = args.deployment
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=f"{env.prefix}-notifications",
            kms_master_key_id=args.key_arn,
            opts=child,
        )
        self.topic_arn = self.topic.arn
        if env.config.approvers_email:
            aws.sns.TopicSubscription(
                f"{name}-approvers-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=env.config.approvers_email,
                filter_policy=json.dumps(APPROVERS_FILTER),
                filter_policy_scope="MessageAttributes",
                opts=child,
            )
        self.register_outputs({"topic": self.topic.arn})
