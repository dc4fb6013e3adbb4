"""SNS: the notifications' topic, `SnsChannel`.

Each notification is one Publish with message attributes `recipient` (`user:<sub>` or
`group:approvers`) and `kind`, so a subscription's filter policy picks what it is sent (the
approvers' email list: `{"recipient": ["group:approvers"]}`). The message is per protocol
(`MessageStructure=json`): email gets a line for people, every other protocol (SQS, HTTPS,
Lambda) the notification's JSON as the inbox shows it. The limits are SNS's (the Publish API
reference, also in botocore's model): a subject under 100 characters with no line breaks or
control characters, a message of at most 256 KiB with its attributes; ours are far below
(fixed subjects; titles of at most 200 characters). botocore errors never leave this module.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from taskcore.adapters import clients
from taskcore.errors import Unavailable
from taskcore.notifications import Notification
from taskcore.serialization import notification_to_json

SUBJECT_MAX = 99  # "less than 100 characters"


def message_attributes(notification: Notification) -> dict[str, dict[str, str]]:
    return {
        "recipient": {"DataType": "String", "StringValue": notification.recipient},
        "kind": {"DataType": "String", "StringValue": notification.kind.value},
    }


def publish_arguments(topic_arn: str, notification: Notification) -> dict[str, Any]:
    subject = notification.subject
    if len(subject) > SUBJECT_MAX or not subject.isprintable():
        raise ValueError(f"an SNS subject is under 100 printable characters: {subject!r}")
    body = json.dumps(notification_to_json(notification), ensure_ascii=False)
    return {
        "TopicArn": topic_arn,
        "Subject": subject,
        "MessageStructure": "json",
        "Message": json.dumps({"default": body, "email": notification.message}),
        "MessageAttributes": message_attributes(notification),
    }


@attrs.define
class SnsChannel:
    """`NotificationChannel` on an SNS topic."""

    topic_arn: str
    endpoint_url: str | None = None
    region: str | None = None
    _client: clients.LazyClient = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._client = clients.LazyClient("sns", self.endpoint_url, self.region)

    @property
    def client(self) -> Any:
        return self._client.get()

    def publish(self, notification: Notification) -> None:
        try:
            self.client.publish(**publish_arguments(self.topic_arn, notification))
        except (ClientError, BotoCoreError) as error:
            raise Unavailable(f"the notifications topic is unavailable ({error})") from error
