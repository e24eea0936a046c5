"""Upgrading a table of schema version 1 (template_v1_table.yaml: the available index projects
validity only; a bulk add's staged codes hide their index keys until a publishing pass) to the
current schema, as docs/operations.md tells an operator to, against DynamoDB Local: a stack
update adds available_v2 beside the old index, `promo-admin migrate` settles the items (dying
midway and run again), the last update drops the old index; then claims and bulk adds pass the
same tests as on a table made at the current version."""

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import tests.integration.test_exactly_once as exactly_once
from promo.domain.errors import StoreUnavailable
from promo.domain.models import Issuance
from promo.store import keys
from promo.store.codes.bulk_staging import new_code_item
from promo.store.codes.visibility import ABORTED, COMMITTED
from promo.store.items import Item, n, s
from promo.store.table import Table
from tests.support.builders import ACTOR, moment, new_codes, pool, tenant
from tests.support.tables import Stores
from tools import admin, migrations
from tools.dynamodb_local import DynamoDBLocal
from tools.template import create_table_request

pytestmark = pytest.mark.integration

SCHEMA_1 = Path(__file__).parent / "fixtures" / "template_v1_table.yaml"
LEGACY = pool(pool_id="legacy", offer_id=7)
STAGED = 60  # more than one transaction takes: schema 1 staged such adds


def _schema_1_staged(item: Item, batch: str, deadline: int) -> Item:
    """A code as schema 1's bulk add staged it: outside every index until published."""
    staged = {k: v for k, v in item.items() if k not in ("avail_pk", "avail_sk")}
    return {
        **staged,
        "staged_avail_pk": item["avail_pk"],
        "staged_avail_sk": item["avail_sk"],
        "staged_batch": s(batch),
        "staged_until": n(deadline),
    }


def _stage_schema_1_batch(stores: Stores, prefix: str, outcome: str | None) -> list[str]:
    """A bulk add schema 1's writer left behind: committed but unpublished, aborted, or
    never decided (its writer died before the commit; its deadline long past)."""
    counter = stores.table.update(
        Key=keys.counter_key("acme"),
        UpdateExpression="ADD next_number :count",
        ExpressionAttributeValues={":count": n(STAGED)},
        ReturnValues="UPDATED_NEW",
    )
    first = int(counter["next_number"]["N"]) - STAGED + 1
    batch, deadline = uuid.uuid4().hex, int(time.time()) - 3600
    stamped = "2026-11-01T00:00:00.000000Z"
    written: list[Item] = []
    for offset, new in enumerate(new_codes("legacy", STAGED, prefix)):
        key = keys.code_key("acme", new.value)
        item, pointer = new_code_item(key, LEGACY, new, first + offset, stamped, ACTOR)
        written += [_schema_1_staged(item, batch, deadline), pointer]
    stores.table.batch_put(written)
    if outcome is not None:
        record = {**keys.batch_key("acme", batch), "outcome": s(outcome), "count": n(STAGED)}
        stores.table.put(Item=record)
    return [new.value for new in new_codes("legacy", STAGED, prefix)]


def _index_update(client: Any, table: str, update: dict[str, Any]) -> None:
    """One index added or dropped, as the stack update does; waits until it is done."""
    wanted = create_table_request(table)
    client.update_table(
        TableName=table,
        AttributeDefinitions=wanted["AttributeDefinitions"],
        GlobalSecondaryIndexUpdates=[update],
    )
    for _ in range(120):
        described = client.describe_table(TableName=table)["Table"]
        statuses = [i["IndexStatus"] for i in described.get("GlobalSecondaryIndexes", [])]
        if described["TableStatus"] == "ACTIVE" and set(statuses) == {"ACTIVE"}:
            return
        time.sleep(0.5)
    raise AssertionError(f"index update of {table} did not finish")


def _add_index_v2(client: Any, table: str) -> None:
    request = create_table_request(table)
    (index_v2,) = [
        index
        for index in request["GlobalSecondaryIndexes"]
        if index["IndexName"] == keys.TableLayout().available_index
    ]
    _index_update(client, table, {"Create": index_v2})


class Legacy:
    """A schema-1 table with what schema 1's writers left in it."""

    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        stores.catalog.put_tenant(tenant("acme"))
        stores.catalog.put_pool(LEGACY)
        # Plain codes: written whole in one transaction, in the index under both schemas.
        self.plain = [
            c.value
            for c in stores.codes.add(
                "acme", {"legacy": LEGACY}, new_codes("legacy", 20, "PLAIN"), ACTOR
            )
        ]
        self.committed = _stage_schema_1_batch(stores, "UNPUBLISHED", COMMITTED)
        self.aborted = _stage_schema_1_batch(stores, "ABORTED", ABORTED)
        self.undecided = _stage_schema_1_batch(stores, "UNDECIDED", None)


@pytest.fixture
def legacy(local_client: Any) -> Any:
    name = f"promo-test-v1-{uuid.uuid4().hex[:12]}"
    local_client.create_table(**create_table_request(name, path=SCHEMA_1))
    local_client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    try:
        yield Legacy(Stores(local_client, name))
    finally:
        local_client.delete_table(TableName=name)


def _connection(stores: Stores, dynamodb_local: DynamoDBLocal) -> list[str]:
    return ["--table", stores.table_name, "--endpoint-url", dynamodb_local.endpoint]


def _upgrade(legacy: Legacy, dynamodb_local: DynamoDBLocal) -> Stores:
    """docs/operations.md's upgrade: the index added, migrate, the old index dropped (the
    release's own deploy between the first two changes no index)."""
    stores = legacy.stores
    _add_index_v2(stores.client, stores.table_name)
    assert admin.main([*_connection(stores, dynamodb_local), "migrate"]) == 0
    _index_update(stores.client, stores.table_name, {"Delete": {"IndexName": "available"}})
    return stores.fresh()


def test_given_a_schema_1_table_then_promo_admin_refuses_it_until_it_is_migrated(
    legacy: Legacy, dynamodb_local: DynamoDBLocal, capsys: pytest.CaptureFixture[str]
) -> None:
    connection = _connection(legacy.stores, dynamodb_local)
    _add_index_v2(legacy.stores.client, legacy.stores.table_name)

    assert admin.main([*connection, "pools", "--tenant", "acme"]) == 2
    assert "schema version 1" in capsys.readouterr().err
    assert admin.main([*connection, "migrate"]) == 0
    assert admin.main([*connection, "pools", "--tenant", "acme"]) == 0
    assert migrations.version(legacy.stores.table) == migrations.CURRENT_VERSION


def test_given_a_table_made_at_the_current_version_then_promo_admin_stamps_it_and_migrate_has_nothing_to_do(
    local_stores: Stores, dynamodb_local: DynamoDBLocal, capsys: pytest.CaptureFixture[str]
) -> None:
    connection = _connection(local_stores, dynamodb_local)

    assert local_stores.table.get(keys.schema_key()) is None
    assert admin.main([*connection, "pools"]) == 0
    assert local_stores.table.get(keys.schema_key()) == {
        **keys.schema_key(),
        "version": n(migrations.CURRENT_VERSION),
    }
    assert admin.main([*connection, "migrate"]) == 0
    said = capsys.readouterr().out
    assert said.endswith(f"is at schema version {migrations.CURRENT_VERSION}\n")
    assert "migrating" not in said


def test_given_no_index_v2_yet_then_migrate_refuses_and_changes_nothing(
    legacy: Legacy, dynamodb_local: DynamoDBLocal, capsys: pytest.CaptureFixture[str]
) -> None:
    assert admin.main([*_connection(legacy.stores, dynamodb_local), "migrate"]) == 2

    assert "KeepPreviousAvailableIndex=true" in capsys.readouterr().err
    assert migrations.version(legacy.stores.table) == 1
    assert legacy.stores.table.get(keys.schema_key()) is None


def _staged_schema_1_items(table: Table) -> list[Item]:
    page = table.scan(FilterExpression="attribute_exists(staged_avail_pk)", ConsistentRead=True)
    return list(page["Items"])


def test_given_a_migration_dies_midway_then_running_it_again_publishes_the_committed_stage_and_clears_the_others(
    legacy: Legacy, dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = legacy.stores
    _add_index_v2(stores.client, stores.table_name)
    # Version 2's code met one unpublished code before the migration: issued by value, its
    # first change dropped the marker and left schema 1's hidden index keys behind.
    stores.codes.issue("acme", legacy.committed[0], Issuance(moment(), ACTOR))
    writes = {"left": 40}
    real_update = Table.update

    def dies_after_40_writes(self: Table, **request: Any) -> Item:
        writes["left"] -= 1
        if writes["left"] < 0:
            raise StoreUnavailable("the operator's laptop went to sleep")
        return real_update(self, **request)

    monkeypatch.setattr(Table, "update", dies_after_40_writes)
    with pytest.raises(StoreUnavailable):
        migrations.migrate(Stores(stores.client, stores.table_name).services(), page_size=25)
    monkeypatch.setattr(Table, "update", real_update)

    assert migrations.version(stores.table) == 1
    assert "cursor" in (stores.table.get(keys.schema_key()) or {})
    assert 0 < len(_staged_schema_1_items(stores.table)) < 3 * STAGED

    messages: list[str] = []
    migrated = migrations.migrate(stores.fresh().services(), messages.append, page_size=25)

    assert migrated == migrations.CURRENT_VERSION
    assert "migrating to schema version 2 (resumed):" in messages
    assert "cursor" not in (stores.table.get(keys.schema_key()) or {})
    assert _staged_schema_1_items(stores.table) == []
    fresh = stores.fresh()
    for value in legacy.aborted + legacy.undecided:
        assert fresh.codes.get("acme", value) is None, value
    claimed = {fresh.codes.claim(LEGACY, Issuance(moment(), ACTOR)).value for _ in range(79)}
    assert claimed == set(legacy.plain + legacy.committed[1:])
    # Every id pointer of a cleared code is gone with it; the published codes' remain.
    numbers = [
        code.number for value in legacy.committed if (code := fresh.codes.get("acme", value))
    ]
    assert len(numbers) == STAGED
    assert all(fresh.codes.get_by_number("acme", number) for number in numbers)
    assert migrations.migrate(fresh.services(), messages.append) == migrations.CURRENT_VERSION


def test_given_a_migrated_table_then_32_callers_issue_each_code_of_a_pool_once(
    legacy: Legacy, dynamodb_local: DynamoDBLocal
) -> None:
    stores = _upgrade(legacy, dynamodb_local)

    exactly_once.test_given_32_callers_on_a_pool_of_500_then_exactly_500_distinct_codes_are_issued(
        stores, 0
    )


@pytest.mark.parametrize("size", [40, 1000], ids=["one transaction", "staged 1000"])
def test_given_a_migrated_table_then_a_colliding_bulk_add_writes_nothing_and_names_each_value(
    legacy: Legacy, dynamodb_local: DynamoDBLocal, size: int
) -> None:
    stores = _upgrade(legacy, dynamodb_local)

    exactly_once.test_given_a_bulk_add_colliding_with_existing_values_then_nothing_is_written_and_each_is_named(
        stores, size
    )


def test_given_a_migrated_table_then_racing_bulk_adds_leave_each_value_once(
    legacy: Legacy, dynamodb_local: DynamoDBLocal
) -> None:
    stores = _upgrade(legacy, dynamodb_local)

    exactly_once.test_given_two_bulk_adds_racing_on_the_same_values_then_each_value_exists_once(
        stores
    )
