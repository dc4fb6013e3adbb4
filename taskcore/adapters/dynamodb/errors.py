"""The one way the DynamoDB adapters turn storage failures into domain errors.

Every request to the table, through PynamoDB or through its botocore client, runs inside
`storage_errors()`. Inside it:

- a failed condition (`ConditionalCheckFailedException`, or a transaction cancelled because an
  item's condition failed) becomes `ConditionFailed`, which the caller turns into what it means
  for its item (`Conflict`, `NotFound`, `ConcurrentModification`, an event seen before...);
- a `ValidationException` becomes `StorageRejected` (a request we built wrong: the API answers
  500 and logs it);
- everything else, throttling, server errors and unreachable endpoints included, becomes
  `Unavailable` (the API answers 503; an event is retried).

Neither PynamoDB's nor botocore's exceptions leave the package.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException, TransactWriteError

from taskcore.errors import DomainError, StorageRejected, Unavailable

CONDITION_FAILED = "ConditionalCheckFailedException"
ITEM_CONDITION_FAILED = "ConditionalCheckFailed"
"""A cancelled transaction's reason code for an item whose condition failed."""
TRANSACTION_CANCELLED = "TransactionCanceledException"
THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflictException",
    }
)


class ConditionFailed(Exception):
    """A conditional write's condition did not hold. For a transaction, `reasons` holds each
    item's cancellation reason code, in the order of the items (None: not a reason)."""

    def __init__(self, reasons: Sequence[str | None] = ()) -> None:
        super().__init__("the write's condition failed")
        self.reasons = tuple(reasons)

    def failed_at(self, index: int) -> bool:
        """Whether the transaction's item at `index` is one whose condition failed."""
        return self.reasons[index : index + 1] == (ITEM_CONDITION_FAILED,)


@contextmanager
def storage_errors(*, rejected_as: type[DomainError] = StorageRejected) -> Iterator[None]:
    """Map the failures of the requests made inside to `ConditionFailed` or a domain error.

    `rejected_as` is what a `ValidationException` becomes; the approval records and the event
    markers, whose callers retry whatever they raise, have always reported it as `Unavailable`.
    """
    try:
        yield
    except PynamoDBException as error:
        reasons = (
            [reason.code if reason else None for reason in error.cancellation_reasons]
            if isinstance(error, TransactWriteError)
            else []
        )
        _raise(error.cause_response_code, error.cause_response_message, reasons, error, rejected_as)
    except ClientError as error:
        details = error.response.get("Error", {})
        reasons = [
            None if reason.get("Code") == "None" else reason.get("Code")
            for reason in error.response.get("CancellationReasons", [])
        ]
        _raise(details.get("Code"), details.get("Message"), reasons, error, rejected_as)
    except BotoCoreError as error:
        _raise(None, None, [], error, rejected_as)


def _raise(
    code: str | None,
    message: str | None,
    reasons: Sequence[str | None],
    error: Exception,
    rejected_as: type[DomainError],
) -> NoReturn:
    if code == CONDITION_FAILED or (
        code == TRANSACTION_CANCELLED and ITEM_CONDITION_FAILED in reasons
    ):
        raise ConditionFailed(reasons) from error
    if code == "ValidationException":
        raise rejected_as(f"storage rejected the request: {message}") from error
    if code is None or code in THROTTLED:
        raise Unavailable(f"the task store is unavailable ({code or 'no connection'})") from error
    raise Unavailable(f"the task store failed ({code})") from error
