"""The stack's SQS queues: where failed work waits to be looked at and redriven.

Two kinds, both encrypted with the stack's key and kept SQS's maximum of two weeks:
- a function's failure queue (Lambda's on-failure destination after its own retries, or the
  batch a stream mapping gave up on), which the function's role may send to;
- a rule's dead-letter queue (events EventBridge could not deliver), which only that rule may
  send to.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.context import policy

QUEUE_RETENTION_S = 14 * 24 * 3600  # SQS's maximum: two weeks to look and redrive


def failure_queue(
    name: str, *, physical: str, key_arn: pulumi.Input[str], parent: pulumi.Resource
) -> aws.sqs.Queue:
    return aws.sqs.Queue(
        name,
        name=physical,
        kms_master_key_id=key_arn,
        message_retention_seconds=QUEUE_RETENTION_S,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def dead_letter_queue(
    name: str,
    *,
    physical: str,
    key_arn: pulumi.Input[str],
    rule_arn: pulumi.Input[str],
    parent: pulumi.Resource,
) -> aws.sqs.Queue:
    """A rule's dead-letter queue, and the queue policy that lets only that rule send to it."""
    queue = failure_queue(name, physical=physical, key_arn=key_arn, parent=parent)
    aws.sqs.QueuePolicy(
        f"{name}-policy",
        queue_url=queue.url,
        policy=policy(
            [
                {
                    "Sid": "OnlyThisRuleDeadLetters",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue.arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ]
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return queue
