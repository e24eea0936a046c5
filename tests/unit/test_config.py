"""The declarative configuration: validated with errors that say where, applied idempotently."""

import re
from pathlib import Path
from typing import Any

import pytest

from promo.secret_hashing import token_digest
from promo.store.credentials import CredentialStore
from tests.support.builders import NO_WAIT
from tests.support.tables import Stores
from tools import config
from tools.template import ROOT

DEMO = ROOT / "config" / "demo.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(config.ConfigError) as refused:
        config.load(path)
    return refused.value.problems


def test_the_demo_configuration_is_valid() -> None:
    loaded = config.load(DEMO)

    assert [t.id for t in loaded.tenants] == ["demo"]
    pools = loaded.tenants[0].pools
    assert all(
        p.aliases.maestra and p.aliases.crm and p.aliases.synctv and p.aliases.mews for p in pools
    )


def test_errors_name_the_key_and_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
tenants:
  - id: "bad id"
    name: Shop
    pools:
      - id: spring
        name: Spring
        shard_count: 0
        aliases:
          mews: {voucher_id: not-a-uuid}
        colour: red
""",
    )

    found = problems(path)

    assert any(p.startswith("tenants[0].id (line 2)") for p in found)
    assert any(p.startswith("tenants[0].pools[0].shard_count (line 7)") for p in found)
    assert any(p.startswith("tenants[0].pools[0].aliases.mews.voucher_id (line 9)") for p in found)
    assert any(p.startswith("tenants[0].pools[0].colour (line 10)") and "Extra" in p for p in found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tenants: []", "tenants (line 1)"),
        ("tenants:\n  - {id: a, name: A}\n  - {id: a, name: B}\n", "tenant ids repeat"),
        (
            "tenants:\n  - {id: a, name: A}\nmews_tokens:\n  - {name: t, client_token: client-token, access_token: access-token, tenants: [b]}\n",
            "no tenant 'b'",
        ),
        (
            "tenants:\n  - {id: a, name: A, maestra_endpoints: [{id: e, operations: {Op: {kind: from-pool, pool: nope}}}]}\n",
            "no pool 'nope'",
        ),
        (
            "tenants:\n  - {id: a, name: A, maestra_endpoints: [{id: e, operations: {Op: {kind: teleport}}}]}\n",
            "kind",
        ),
        (
            "tenants:\n  - {id: a, name: A, maestra_endpoints: [{id: e, operations: {Op: {kind: redeem, hold_minutes: 5}}}]}\n",
            "hold_minutes is for operations of kind reserve only",
        ),
        (
            "tenants:\n  - {id: a, name: A, maestra_endpoints: [{id: e, operations: {Op: {kind: reserve, hold_minutes: 0}}}]}\n",
            "hold_minutes",
        ),
        ("tenants: [", "not valid YAML"),
        (
            "tenants:\n  - {id: a, name: A, synctv_users: [{username: u, password: password8, unit: {id: '1', name: U}}]}\n",
            "synctv_users have no unit",
        ),
        (
            "tenants:\n  - {id: a, name: A, crm_users: [{username: u, password: password8, unit: {id: '1'}}]}\n",
            "crm_users[0].unit",
        ),
    ],
)
def test_invalid_files_are_refused_with_a_reason(tmp_path: Path, text: str, expected: str) -> None:
    assert any(expected in problem for problem in problems(write(tmp_path, text)))


def test_seed_codes_follow_the_value_policy_refused_not_stripped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
tenants:
  - id: shop
    name: Shop
    pools:
      - id: spring
        name: Spring
        seed_codes: ["OK-1", " PADDED ", "\\uFF33PRING"]
""",
    )

    found = problems(path)

    assert any(p.startswith("tenants[0].pools[0].seed_codes[1]") for p in found), found
    assert any("not stripped" in p for p in found)
    assert any(p.startswith("tenants[0].pools[0].seed_codes[2]") and "U+FF33" in p for p in found)
    assert not any("seed_codes[0]" in p for p in found)


def test_secrets_may_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        "tenants:\n  - id: a\n    name: A\n    maestra_endpoints: [{id: web, secret_key: {env: SHOP_KEY}}]\n",
    )
    loaded = config.load(path)
    key = loaded.tenants[0].maestra_endpoints[0].secret_key
    assert key is not None

    monkeypatch.delenv("SHOP_KEY", raising=False)
    with pytest.raises(ValueError, match="SHOP_KEY"):
        config.reveal(key)
    monkeypatch.setenv("SHOP_KEY", "from-the-environment")
    assert config.reveal(key) == "from-the-environment"


def scan(stores: Stores) -> list[dict[str, Any]]:
    items = stores.client.scan(TableName=stores.table_name)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def apply(stores: Stores, path: Path = DEMO) -> config.ApplyReport:
    return config.apply(
        config.load(path),
        stores.catalog,
        stores.codes,
        CredentialStore(stores.table, stores.settings),
        NO_WAIT,
    )


def test_applying_the_same_file_twice_changes_nothing(moto_stores: Stores) -> None:
    apply(moto_stores)
    first = scan(moto_stores)

    report = apply(moto_stores)

    assert scan(moto_stores) == first
    assert sorted(report.unchanged_passwords) == [
        "MPAdministrator",
        "admin@demo.example",
        "viewer@demo.example",
    ]


def test_a_reservations_hold_time_is_kept_and_defaults_to_15_minutes(
    moto_stores: Stores, tmp_path: Path
) -> None:
    text = (
        "tenants:\n  - {id: a, name: A, maestra_endpoints: [{id: shop, operations: {"
        "Hold: {kind: reserve, hold_minutes: 45}, HoldDefault: {kind: reserve}}}]}\n"
    )
    apply(moto_stores, write(tmp_path, text))

    endpoint = CredentialStore(moto_stores.table, moto_stores.settings).maestra_endpoint("shop")

    assert endpoint is not None
    assert endpoint.operations["Hold"].hold_minutes == 45
    assert endpoint.operations["HoldDefault"].hold_minutes == 15


def test_a_crm_users_unit_is_kept_in_its_profile(moto_stores: Stores) -> None:
    apply(moto_stores)
    credentials = CredentialStore(moto_stores.table, moto_stores.settings)

    user = credentials.user("crm", "demo", "MPAdministrator")

    assert user is not None
    assert user.profile["unit"] == "1"  # config/demo.yaml: CRM.COM's example unit
    assert user.profile["unit_name"] == "Admin Unit"


def test_only_hashes_of_secrets_are_stored(moto_stores: Stores) -> None:
    apply(moto_stores)
    stored = str(scan(moto_stores))

    for secret in (
        "demo-maestra-secret-key",
        "demo-crm-password",
        "demo-synctv-password",
        "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
    ):
        assert secret not in stored
    assert token_digest("demo-maestra-secret-key") in stored


def test_removing_a_pool_from_the_file_keeps_its_codes_and_a_changed_alias_moves(
    moto_stores: Stores, tmp_path: Path
) -> None:
    from tests.support.builders import ACTOR, new_codes

    apply(moto_stores)
    spring = moto_stores.catalog.get_pool("demo", "spring")
    assert spring is not None
    moto_stores.codes.add("demo", {"spring": spring}, new_codes("spring", 2, "KEEP"), ACTOR)
    text = DEMO.read_text().replace("external_id: spring-2025", "external_id: spring-2026")
    start, end = text.index("      - id: welcome"), text.index("    maestra_endpoints:")
    path = write(tmp_path, text[:start] + text[end:])

    apply(moto_stores, path)

    assert moto_stores.codes.get("demo", "KEEP00000") is not None
    assert moto_stores.catalog.get_pool("demo", "welcome") is not None
    fresh = moto_stores.fresh()
    assert fresh.catalog.find_pool("demo", "maestra", "spring-2026") is not None
    assert fresh.catalog.find_pool("demo", "maestra", "spring-2025") is None


def demo_tenant(case_sensitive: str | None) -> str:
    """config/demo.yaml with its tenant's ``case_sensitive`` set (or left out, for None)."""
    text = re.sub(r"\n    case_sensitive: \w+", "", DEMO.read_text())
    if case_sensitive is None:
        return text
    named = "    name: Demo Shop\n"
    return text.replace(named, f"{named}    case_sensitive: {case_sensitive}\n")


def test_a_tenant_is_case_sensitive_unless_its_file_says_otherwise(tmp_path: Path) -> None:
    assert config.load(write(tmp_path, demo_tenant(None))).tenants[0].case_sensitive
    assert not config.load(write(tmp_path, demo_tenant("false"))).tenants[0].case_sensitive
    found = problems(write(tmp_path, demo_tenant("maybe")))
    assert any(p.startswith("tenants[0].case_sensitive (line 9)") for p in found)


def test_applying_case_sensitive_false_is_refused_naming_values_that_collide_when_folded(
    moto_stores: Stores, tmp_path: Path
) -> None:
    from promo.domain.errors import CaseRuleRefused
    from promo.domain.models import NewCode
    from tests.support.builders import ACTOR

    apply(moto_stores, write(tmp_path, demo_tenant("true")))
    spring = moto_stores.catalog.get_pool("demo", "spring")
    assert spring is not None
    held = [NewCode("spring", "SPRING-7KQ3"), NewCode("spring", "spring-7kq3")]
    moto_stores.codes.add("demo", {"spring": spring}, held, ACTOR)

    with pytest.raises(CaseRuleRefused, match="SPRING-7KQ3, spring-7kq3"):
        apply(moto_stores, write(tmp_path, demo_tenant("false")))

    assert moto_stores.fresh().catalog.case_sensitive("demo")


@pytest.mark.parametrize("watermark", ["0", "-3", "ten", "1.5"])
def test_a_low_watermark_is_a_whole_number_of_codes_from_one(
    tmp_path: Path, watermark: str
) -> None:
    text = f"tenants:\n  - id: a\n    name: A\n    pools:\n      - {{id: p, name: P, low_watermark: {watermark}}}\n"

    assert any(
        problem.startswith("tenants[0].pools[0].low_watermark (line 5)")
        for problem in problems(write(tmp_path, text))
    )


def test_a_pools_low_watermark_reaches_the_stored_pool(tmp_path: Path, moto_stores: Stores) -> None:
    text = "tenants:\n  - id: a\n    name: A\n    pools:\n      - {id: p, name: P, low_watermark: 25}\n      - {id: q, name: Q}\n"
    apply(moto_stores, write(tmp_path, text))

    stored = {pool.pool_id: pool for pool in moto_stores.catalog.list_pools("a")}
    assert stored["p"].low_watermark == 25
    assert stored["q"].low_watermark is None


def test_the_pool_model_refuses_a_watermark_below_one(moto_stores: Stores) -> None:
    from promo.domain.errors import InvalidRequest
    from tests.support.builders import pool

    with pytest.raises(InvalidRequest) as refused:
        moto_stores.catalog.put_pool(pool("a", "p", low_watermark=0))
    assert refused.value.location == "low_watermark"
