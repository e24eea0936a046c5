"""Where a tenant keys the code of a value, and how the tenant's setting is read and cached."""

from datetime import datetime

from promo.domain.models import NewCode, Tenant
from promo.store import keys
from promo.store.codes.naming import CodeKeys, pointed_value, pointer_item
from tests.support.builders import ACTOR, pool, tenant
from tests.support.tables import Stores


class _Rules:
    """Tenant "exact" is case-sensitive, any other is not; no switch is under way."""

    def case_sensitive(self, tenant_id: str) -> bool:
        return tenant_id == "exact"

    def adds_paused_until(self, tenant_id: str) -> datetime | None:
        return None


def test_a_sensitive_tenant_keys_a_code_by_its_value_and_an_insensitive_one_by_its_fold() -> None:
    code_keys = CodeKeys(_Rules())

    assert code_keys.key("exact", "Straße-1") == keys.code_key("exact", "Straße-1")
    assert code_keys.key("folded", "Straße-1") == keys.code_key("folded", "strasse-1")
    assert code_keys.key("folded", "STRASSE-1") == code_keys.key("folded", "straße-1")


def test_a_pointer_sits_at_the_folded_key_and_names_the_value_as_added() -> None:
    item = pointer_item("acme", "SPRING-7KQ3")

    assert item["pk"] == keys.code_key("acme", "spring-7kq3")["pk"]
    assert pointed_value(item) == "SPRING-7KQ3"
    assert "state" not in item  # no transition's condition can hold on a pointer
    assert pointed_value({"value": {"S": "SPRING-7KQ3"}}) is None


def test_the_tenant_setting_is_read_once_per_cache_ttl_and_known_at_once_after_a_write(
    moto_stores: Stores,
) -> None:
    moto_stores.catalog.put_tenant(tenant("acme", case_sensitive=False))
    other_function = moto_stores.fresh()

    assert not moto_stores.catalog.case_sensitive("acme")  # written here: known
    assert not other_function.catalog.case_sensitive("acme")  # read from the table
    moto_stores.catalog.put_tenant(tenant("acme"))
    assert not other_function.catalog.case_sensitive("acme")  # cached until the TTL
    assert other_function.fresh().catalog.case_sensitive("acme")
    assert moto_stores.catalog.case_sensitive("unknown")  # no item: as before the setting


def test_a_tenant_written_before_the_setting_reads_as_case_sensitive(moto_stores: Stores) -> None:
    moto_stores.catalog.put_tenant(Tenant("acme", "Acme"))
    item = moto_stores.table.get(keys.tenant_key("acme"))

    assert item is not None
    assert "case_sensitive" not in item  # a sensitive tenant's item is as it always was
    assert moto_stores.fresh().catalog.get_tenant("acme") == Tenant("acme", "Acme")


def test_an_insensitive_tenant_refuses_case_variants_within_one_add(moto_stores: Stores) -> None:
    import pytest

    from promo.domain.errors import DuplicateValues

    moto_stores.catalog.put_tenant(tenant("acme", case_sensitive=False))
    new = [NewCode("spring", "Promo-1"), NewCode("spring", "PROMO-1"), NewCode("spring", "x")]

    with pytest.raises(DuplicateValues) as refused:
        moto_stores.codes.add("acme", {"spring": pool()}, new, ACTOR)

    assert refused.value.values == ["PROMO-1", "Promo-1"]
    assert moto_stores.codes.get("acme", "x") is None
