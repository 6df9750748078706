"""What a failed DynamoDB call is in domain terms (chatkeep.errors), for every table access of the package.

After botocore's own retries (standard mode, chatkeep.aws): throttling and transient or server-side faults
become ServiceUnavailable; a refused condition is decided by the caller, from the item DynamoDB returns with
the refusal (NotFound, SessionClosed, ...); a cancelled transaction is a TransactionCancelled the caller maps.
botocore is imported here on failure paths only: it is not on the cold-start path of a request."""

from __future__ import annotations

from typing import Any, NoReturn

from chatkeep.errors import ServiceUnavailable

TRANSIENT = frozenset({
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "LimitExceededException",
})


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def translate_error(exc: Exception) -> Exception:
    """What a failed DynamoDB call (after botocore's retries) is in domain terms: ServiceUnavailable for a
    transient or server-side failure, TransactionCancelled for a cancelled transaction (its caller maps the
    refusals), else the error itself."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        cancelled = _cancelled(exc)
        if cancelled is not None:
            return cancelled
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        # Any 5xx is the store's fault whatever its code (an HTML 500 from a proxy or emulator has none).
        if _error_code(exc) in TRANSIENT or status >= 500:
            return ServiceUnavailable("the data store is busy: nothing was written, retry shortly")
    elif isinstance(exc, BotoCoreError):  # connection errors, timeouts
        return ServiceUnavailable("the data store is unreachable: nothing was written, retry shortly")
    return exc


def client_error_code(exc: Exception) -> str | None:
    """The DynamoDB error code of a botocore ClientError, None for any other exception. The write methods
    catch Exception and ask this."""
    from botocore.exceptions import ClientError

    return _error_code(exc) if isinstance(exc, ClientError) else None


def is_condition_refused(exc: Exception) -> bool:
    """A conditional write (PutItem, UpdateItem, DeleteItem) whose condition DynamoDB refused."""
    return client_error_code(exc) == "ConditionalCheckFailedException"


def refused_item(exc: Exception) -> dict[str, Any] | None:
    """The item as it was when a condition was refused (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""
    item = getattr(exc, "response", {}).get("Item")
    return item if isinstance(item, dict) else None


class TransactionCancelled(Exception):
    """A cancelled TransactWriteItems call, as TableAccess._call raises it: one reason per item, in request order
    ("None" for an item that passed). The caller maps `failed(i)` (item i's condition was refused) to its domain
    error, then calls `unmapped()`. Never leaves the repository."""

    def __init__(self, error: Exception, reasons: list[dict[str, Any]]) -> None:
        super().__init__(str(error))
        self.error = error  # the ClientError DynamoDB answered
        self.reasons = reasons
        self.codes = [r.get("Code") for r in reasons]

    def failed(self, index: int) -> bool:
        return index < len(self.codes) and self.codes[index] == "ConditionalCheckFailed"

    def item(self, index: int) -> dict[str, Any] | None:
        """The item as it was when its condition was refused (ReturnValuesOnConditionCheckFailure)."""
        return self.reasons[index].get("Item")

    @property
    def conflict(self) -> bool:
        """A concurrent transaction touched one of the items: nothing was written."""
        return "TransactionConflict" in self.codes

    def unmapped(self) -> NoReturn:
        """What is left once the caller has mapped its own items' refusals: a conflict with a concurrent
        transaction is a 503 (nothing was written, and botocore does not retry a cancelled transaction); any
        other reason, DynamoDB's error itself."""
        if self.conflict:
            raise ServiceUnavailable("a concurrent write conflicted: nothing was written, retry") from self.error
        raise self.error from None


def _cancelled(exc: Exception) -> TransactionCancelled | None:
    if _error_code(exc) != "TransactionCanceledException":
        return None
    reasons = getattr(exc, "response", {}).get("CancellationReasons")
    return TransactionCancelled(exc, reasons) if reasons else None
