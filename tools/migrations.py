"""The table's schema version, and the migrations that bring an older table to it.

The version is one item (``keys.schema_key()``). A table without it was made either before
versions existed (version 1: it still has schema 1's ``available`` index) or by a stack or tool
of the current version, which promo-admin stamps when it first meets the table.

A migration is the part of an upgrade CloudFormation cannot do: stack updates change the
indexes (docs/operations.md, Upgrading), ``promo-admin migrate`` changes the items. Each step
of a migration is a conditional write that is a no-op when repeated, and the migration records
how far it got after every page it finishes, so a run that dies is resumed by running it again.

Only promo-admin checks the version: a function would pay a read on every cold start to learn
what the upgrade's order already guarantees (no function is deployed before the index it
queries is built), and a function meeting schema-1 items before the migration has run answers
correctly: a committed but unpublished code is visible and can be changed by value; only
claims pass it by until it is published.
"""

import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from promo.services import Services
from promo.store import keys
from promo.store.codes.visibility import ABORTED, COMMITTED, NOT_STAGED, BatchOutcomes
from promo.store.items import Item, key_of, n, s
from promo.store.table import ConditionFailed, Table, store_errors

CURRENT_VERSION = 2
# Schema 1's claim index (its projection changed twice; docs/operations.md, Upgrading).
PREVIOUS_INDEX = "available"
SCAN_PAGE = 1000

Report = Callable[[str], None]


class SchemaOutdated(Exception):
    """The table is older than this code; ``promo-admin migrate`` first."""


def _schema(table: Table) -> Item | None:
    return table.get(keys.schema_key())


def _indexes(table: Table) -> dict[str, Any]:
    with store_errors():
        described = table.client.describe_table(TableName=table.name)["Table"]
    return {index["IndexName"]: index for index in described.get("GlobalSecondaryIndexes", [])}


def version(table: Table) -> int:
    """The table's schema version (see the module's docstring for a table without one)."""
    item = _schema(table)
    if item is not None and "version" in item:
        return int(item["version"]["N"])
    return 1 if PREVIOUS_INDEX in _indexes(table) else CURRENT_VERSION


def stamp(table: Table) -> None:
    """Record the current version on a table made at it (no-op if it has a version)."""
    try:
        table.put(
            Item={**keys.schema_key(), "version": n(CURRENT_VERSION)},
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ConditionFailed:
        return


def require_current(table: Table) -> None:
    """Refuse a table older than this code; stamp a new one."""
    found = version(table)
    if found < CURRENT_VERSION:
        raise SchemaOutdated(
            f"Table {table.name} is at schema version {found}; this promo-admin needs version"
            f" {CURRENT_VERSION}. Run `promo-admin migrate` (docs/operations.md, Upgrading)."
        )
    if found == CURRENT_VERSION and _schema(table) is None:
        stamp(table)


# ---------------------------------------------------------------------- 1 -> 2


def _check_index_v2(table: Table) -> None:
    """Version 2's claim index must exist, built and projecting what claims read from it."""
    wanted = keys.TableLayout().available_index
    index = _indexes(table).get(wanted)
    projected = set() if index is None else set(index["Projection"].get("NonKeyAttributes", []))
    if index is None or index.get("IndexStatus", "ACTIVE") != "ACTIVE":
        raise SchemaOutdated(
            f"Table {table.name} has no active index {wanted!r} yet: add it and wait until it"
            " is ACTIVE, then deploy this release with KeepPreviousAvailableIndex=true"
            " (docs/operations.md, Upgrading)."
        )
    if not {"value", "uuid", "staged_batch"} <= projected:
        raise SchemaOutdated(f"Index {wanted!r} of {table.name} projects too little: {projected}")


class _Publisher:
    """Settles the codes schema 1's bulk adds left staged: a staged code there carried its
    index keys as ``staged_avail_pk``/``staged_avail_sk`` (absent from every index) until a
    publishing pass moved them once its batch committed. A writer that died between its
    commit and that pass left committed codes unclaimable; one that died before its commit
    left a stage nobody aborted. Each is settled as its batch's outcome says."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self._outcomes = BatchOutcomes(table)

    def settle(self, item: Item) -> str:
        if "staged_batch" in item:
            outcome = self._outcome(item)
            if outcome != COMMITTED:
                self._outcomes.clear_staged(item["tenant"]["S"], item)
                return "cleared"
            if self._update(
                item,
                "SET avail_pk = staged_avail_pk, avail_sk = staged_avail_sk"
                " REMOVE staged_avail_pk, staged_avail_sk, staged_batch, staged_until",
                "staged_batch = :batch",
                {":batch": item["staged_batch"]},
            ):
                return "published"
        # Changed by version 2's code (before this run read it, or since), whose first change
        # dropped the marker and with it the code's availability: only the leftover keys go.
        self._update(item, "REMOVE staged_avail_pk, staged_avail_sk", NOT_STAGED, {})
        return "tidied"

    def _outcome(self, item: Item) -> str:
        """The batch's final outcome; a stage still within its deadline (an old writer may
        still be running during the deploy) is waited for, at most the stage's expiry."""
        while True:
            outcome = self._outcomes.of_item(item["tenant"]["S"], item)
            if outcome in (COMMITTED, ABORTED):
                return outcome
            time.sleep(max(0.0, int(item["staged_until"]["N"]) - time.time()) + 1)

    def _update(self, item: Item, expression: str, condition: str, values: Item) -> bool:
        """Whether the write applied (it does not once another run or a function did it)."""
        request: dict[str, Any] = {
            "Key": key_of(item),
            "UpdateExpression": expression,
            "ConditionExpression": f"attribute_exists(staged_avail_pk) AND {condition}",
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self._table.update(**request)
        except ConditionFailed:
            return False
        return True


def _publish_staged_codes(table: Table, report: Report, page_size: int) -> None:
    publisher = _Publisher(table)
    cursor = _cursor(table)
    settled: dict[str, int] = {}
    while True:
        request: dict[str, Any] = {
            "FilterExpression": "attribute_exists(staged_avail_pk)",
            "Limit": page_size,
            "ConsistentRead": True,
        }
        if cursor:
            request["ExclusiveStartKey"] = cursor
        page = table.scan(**request)
        for item in page.get("Items", []):
            outcome = publisher.settle(item)
            settled[outcome] = settled.get(outcome, 0) + 1
        cursor = page.get("LastEvaluatedKey")
        if not cursor:
            break
        _save_cursor(table, cursor)
    summary = ", ".join(f"{count} {what}" for what, count in sorted(settled.items()))
    report(f"  codes staged by schema 1's bulk adds: {summary or 'none'}")


def _to_version_2(table: Table, report: Report, page_size: int) -> None:
    _check_index_v2(table)
    _publish_staged_codes(table, report, page_size)


# ---------------------------------------------------------------------- running them


class Migration(NamedTuple):
    to_version: int
    description: str
    run: Callable[[Table, Report, int], None]


MIGRATIONS = (
    Migration(
        2,
        "claims read index available_v2 (ids, creation, staging marker projected); codes"
        " staged by schema 1's bulk adds published or cleared as their batch's outcome says",
        _to_version_2,
    ),
)


def _cursor(table: Table) -> Item | None:
    item = _schema(table)
    return None if item is None or "cursor" not in item else json.loads(item["cursor"]["S"])


def _save_cursor(table: Table, cursor: Item) -> None:
    table.update(
        Key=keys.schema_key(),
        UpdateExpression="SET #cursor = :cursor",
        ExpressionAttributeNames={"#cursor": "cursor"},
        ExpressionAttributeValues={":cursor": s(json.dumps(cursor))},
    )


def _finish(table: Table, to_version: int) -> None:
    table.update(
        Key=keys.schema_key(),
        UpdateExpression="SET version = :version REMOVE #cursor",
        ExpressionAttributeNames={"#cursor": "cursor"},
        ExpressionAttributeValues={":version": n(to_version)},
    )


def migrate(svc: Services, report: Report = print, page_size: int = SCAN_PAGE) -> int:
    """Run the migrations the table has not had, in order; the version it ends at."""
    table = svc.codes.table
    current = version(table)
    for migration in MIGRATIONS:
        if migration.to_version <= current:
            continue
        resumed = " (resumed)" if _cursor(table) is not None else ""
        report(f"migrating to schema version {migration.to_version}{resumed}:")
        report(f"  {migration.description}")
        migration.run(table, report, page_size)
        _finish(table, migration.to_version)
        current = migration.to_version
    report(f"table {table.name} is at schema version {current}")
    return current
