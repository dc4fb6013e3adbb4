"""DynamoDB adapters (PynamoDB and botocore), all on one table.

Item layout (tenant isolation by construction: every user's item is under `USER#<owner>`):

| item         | pk                | sk                | also                                     |
|--------------|-------------------|-------------------|------------------------------------------|
| task         | USER#<owner>      | TASK#<ulid>       | lsi1sk=<status>#<ulid>,                  |
|              |                   |                   | lsi2sk=<prio>#<ulid>,                    |
|              |                   |                   | gsi1pk=AWAITING_APPROVAL while awaiting  |
| idempotency  | USER#<owner>      | IDEMP#<key>       | expiresAt (TTL)                          |
| stats        | USER#<owner>      | STATS             | counters n#<status>, w#<week>, h#<bucket>|
| event mark   | USER#<owner>      | EVENT#<event id>  | expiresAt (TTL): stats apply once        |
| export       | USER#<owner>      | EXPORT#<ulid>     | no index keys                            |
| approval     | USER#<owner>      | APPROVAL#<taskId> | token, outcome, expiresAt (TTL)          |
| event marker | MARKER#<consumer> | EVENT#<event id>  | expiresAt (TTL): consumers act once      |
| notification | USER#<recipient>  | NOTE#<ulid>       | expiresAt (TTL), readAt, sentAt          |
|              | GROUP#approvers   | NOTE#<ulid>       | (the approvers' shared inbox)            |

Modules:

- `table`: the key scheme, the PynamoDB models and their binding, `table_definition()` (THE
  definition, deployed by `infra/`), `create_table()`, and `TableClient` for model-less items;
- `errors`: `storage_errors()`, the one mapping of storage failures to domain errors;
- `tasks`: `DynamoTaskRepository` and the task's item mapping;
- `stats`: `DynamoStatsStore`;
- `exports`: `DynamoExportRepository` and the export record's mapping;
- `markers`: `DynamoEventMarkers`, the consumers' idempotency by event id;
- `inbox`: `DynamoInbox`, the notifications' inboxes;
- `stream`: `decode_record()`, what a stream record's keys, images and identity mean.

The approval records are `taskcore.adapters.approvals` (they need Step Functions too).
PynamoDB's and botocore's errors never leave the package: they become `taskcore.errors` types.
"""

from taskcore.adapters.dynamodb.errors import ConditionFailed, storage_errors
from taskcore.adapters.dynamodb.exports import (
    DynamoExportRepository,
    export_from_item,
    export_to_item,
)
from taskcore.adapters.dynamodb.inbox import DynamoInbox
from taskcore.adapters.dynamodb.markers import DynamoEventMarkers
from taskcore.adapters.dynamodb.stats import DynamoStatsStore
from taskcore.adapters.dynamodb.stream import ExportRequest, TaskChange, decode_record
from taskcore.adapters.dynamodb.table import (
    TTL_ATTRIBUTE,
    ExportItem,
    IdempotencyItem,
    Models,
    TableClient,
    TaskItem,
    bind_export_model,
    bind_models,
    create_table,
    export_sk,
    table_definition,
    task_sk,
    user_pk,
)
from taskcore.adapters.dynamodb.tasks import (
    DynamoTaskRepository,
    from_item,
    task_from_image,
    to_item,
)

__all__ = [
    "TTL_ATTRIBUTE",
    "ConditionFailed",
    "DynamoEventMarkers",
    "DynamoExportRepository",
    "DynamoInbox",
    "DynamoStatsStore",
    "DynamoTaskRepository",
    "ExportItem",
    "ExportRequest",
    "IdempotencyItem",
    "Models",
    "TableClient",
    "TaskChange",
    "TaskItem",
    "bind_export_model",
    "bind_models",
    "create_table",
    "decode_record",
    "export_from_item",
    "export_sk",
    "export_to_item",
    "from_item",
    "storage_errors",
    "table_definition",
    "task_from_image",
    "task_sk",
    "to_item",
    "user_pk",
]
