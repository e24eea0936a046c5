"""Thin helpers over the low-level DynamoDB client shared by the stores of this package."""

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from promo.domain.errors import StoreUnavailable
from promo.store.items import Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

TRANSACTION_LIMIT = 100
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
_RETRYABLE_CANCELLATIONS = {
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
}


class ConditionFailed(Exception):
    """A conditional write's condition did not hold; ``item`` is the item as it was, if any;
    in a transaction, ``action`` is the index of the action whose condition failed."""

    def __init__(self, item: Item | None, action: int = 0) -> None:
        super().__init__("conditional check failed")
        self.item = item
        self.action = action


class TransactionCancelled(Exception):
    """A transaction failed; ``reasons`` aligns with its actions (``Code``, optional ``Item``)."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons

    @property
    def retryable(self) -> bool:
        codes = {reason.get("Code", "None") for reason in self.reasons}
        return bool(codes & _RETRYABLE_CANCELLATIONS) and "ConditionalCheckFailed" not in codes


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn DynamoDB failures that survived botocore's retries into one domain exception."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed(exc.response.get("Item")) from exc  # type: ignore[arg-type]
        if code == "TransactionCanceledException":
            raise TransactionCancelled(exc.response.get("CancellationReasons", [])) from exc  # type: ignore[arg-type]
        raise StoreUnavailable(
            f"DynamoDB error {code or 'unknown'}: {error.get('Message', '')}"
        ) from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"DynamoDB unreachable: {type(exc).__name__}") from exc


class Table:
    def __init__(self, client: "DynamoDBClient", name: str) -> None:
        self.client = client
        self.name = name

    def get(self, key: Item, projection: str | None = None) -> Item | None:
        """A strongly consistent read of one item."""
        request: dict[str, Any] = {"TableName": self.name, "Key": key, "ConsistentRead": True}
        if projection:
            request["ProjectionExpression"] = projection
        with store_errors():
            return self.client.get_item(**request).get("Item")

    def batch_get(self, keys: Sequence[Item], projection: str | None = None) -> list[Item]:
        """Strongly consistent reads of many items, any number of keys, unprocessed keys retried."""
        found: list[Item] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                "Keys": list(keys[start : start + BATCH_GET_LIMIT]),
                "ConsistentRead": True,
            }
            if projection:
                request["ProjectionExpression"] = projection
            pending: dict[str, Any] = {self.name: request}
            for _ in range(8):
                with store_errors():
                    response = self.client.batch_get_item(RequestItems=pending)
                found.extend(response["Responses"].get(self.name, []))
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise StoreUnavailable("DynamoDB kept keys unprocessed")
        return found

    def transact(self, actions: Sequence[Any], attempts: int = 3) -> None:
        """One atomic TransactWriteItems call, retried on transient conflicts and on lost
        answers. The client request token makes every retry of an applied transaction a
        no-op success for DynamoDB (for ten minutes), not a failed condition."""
        token = uuid.uuid4().hex
        for attempt in range(attempts):
            try:
                with store_errors():
                    self.client.transact_write_items(
                        TransactItems=list(actions), ClientRequestToken=token
                    )
                return
            except TransactionCancelled as cancelled:
                if not cancelled.retryable or attempt == attempts - 1:
                    raise
            except StoreUnavailable:
                if attempt == attempts - 1:
                    raise

    def update(self, **request: Any) -> Item:
        with store_errors():
            response = self.client.update_item(TableName=self.name, **request)
        return response.get("Attributes", {})

    def put(self, **request: Any) -> None:
        with store_errors():
            self.client.put_item(TableName=self.name, **request)

    def query(self, **request: Any) -> dict[str, Any]:
        with store_errors():
            return dict(self.client.query(TableName=self.name, **request))

    def scan(self, **request: Any) -> dict[str, Any]:
        with store_errors():
            return dict(self.client.scan(TableName=self.name, **request))

    def paginate(self, query: Callable[..., dict[str, Any]], **request: Any) -> Iterator[Item]:
        while True:
            page = query(**request)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, **request: Any) -> None:
        with store_errors():
            self.client.delete_item(TableName=self.name, **request)

    def batch_delete(self, item_keys: Sequence[Item]) -> None:
        """Unconditional deletes, in as few requests as allowed, unprocessed items retried."""
        self._batch_write([{"DeleteRequest": {"Key": key}} for key in item_keys])

    def batch_put(self, items: Sequence[Item]) -> None:
        """Unconditional puts, in as few requests as allowed, unprocessed items retried."""
        self._batch_write([{"PutRequest": {"Item": item}} for item in items])

    def _batch_write(self, requests: Sequence[Item]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending: Any = {self.name: list(requests[start : start + BATCH_WRITE_LIMIT])}
            for _ in range(8):
                with store_errors():
                    pending = (
                        self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems")
                        or {}
                    )
                if not pending:
                    break
            else:
                raise StoreUnavailable("DynamoDB kept writes unprocessed")


def chunked[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (a request's item limit)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
