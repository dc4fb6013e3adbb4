"""taskcore: the task-management domain.

The pure core (`model`, `commands`, `events`, `ports`, `services`, `errors`, `cursors`,
`stats`) imports no AWS or Pulumi SDK. `taskcore.testing` holds in-memory adapters;
`taskcore.adapters` (install the `aws` extra) holds the DynamoDB, S3, EventBridge and Step
Functions ones.
"""

__version__ = "0.1.0"
