"""Per-user stats on the table: `DynamoStatsStore`.

The stats item (`pk = USER#<owner>`, `sk = STATS`) holds flat counters, `n#<status>`,
`w#<ISO week>` and `h#<bucket>`, updated with `ADD`. Each applied event leaves a mark
(`sk = EVENT#<event id>`, TTL 7 days) written in the same transaction, so a redelivered event
changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import attrs

from taskcore.adapters.dynamodb.errors import ConditionFailed, storage_errors
from taskcore.adapters.dynamodb.table import (
    STATS_SK,
    TTL_ATTRIBUTE,
    Models,
    bind_models,
    event_sk,
    user_pk,
)
from taskcore.model import UserId
from taskcore.ports import Clock
from taskcore.stats import StatsDelta, UserStats
from taskcore.system import SystemClock

EVENT_MARK_TTL = timedelta(days=7)


@attrs.define
class DynamoStatsStore:
    """`StatsStore` on the same table: flat counters updated with ADD, and a marker item per
    applied event, written in one transaction, so a redelivered event changes nothing."""

    table_name: str
    endpoint_url: str | None = None
    region: str | None = None
    clock: Clock = attrs.field(factory=SystemClock)
    STATS_SK: ClassVar[str] = STATS_SK
    _models: Models = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        self._models = bind_models(self.table_name, self.endpoint_url, self.region)

    @property
    def _client(self) -> Any:
        return self._models.connection.client

    def get(self, owner_id: UserId) -> UserStats:
        with storage_errors():
            item = self._client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": user_pk(owner_id)}, "sk": {"S": self.STATS_SK}},
                ConsistentRead=True,
            ).get("Item", {})
        counters = {name: int(value["N"]) for name, value in item.items() if "N" in value}
        return UserStats(
            owner_id=owner_id,
            by_status={k[2:]: v for k, v in counters.items() if k.startswith("n#")},
            completed_by_week={k[2:]: v for k, v in counters.items() if k.startswith("w#")},
            completion_histogram={int(k[2:]): v for k, v in counters.items() if k.startswith("h#")},
        )

    def apply(self, owner_id: UserId, event_id: str, delta: StatsDelta) -> bool:
        additions = {f"n#{status}": change for status, change in delta.status_counts.items()}
        if delta.completed_week is not None:
            additions[f"w#{delta.completed_week}"] = 1
        if delta.completion_bucket is not None:
            additions[f"h#{delta.completion_bucket}"] = 1
        names = {f"#a{i}": name for i, name in enumerate(additions)}
        values = {f":a{i}": {"N": str(change)} for i, change in enumerate(additions.values())}
        expires = int((self.clock.now() + EVENT_MARK_TTL).timestamp())
        pk = {"S": user_pk(owner_id)}
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {
                        "pk": pk,
                        "sk": {"S": event_sk(event_id)},
                        TTL_ATTRIBUTE: {"N": str(expires)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        if additions:
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"pk": pk, "sk": {"S": self.STATS_SK}},
                        "UpdateExpression": "ADD "
                        + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True)),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        try:
            with storage_errors():
                self._client.transact_write_items(TransactItems=items)
        except ConditionFailed:
            return False  # only the mark has a condition: the event was applied before
        return True
