"""Mews Connector API voucherCodes/getAll, add and delete: the spec page's examples as fixtures,
every limit at its edge, authentication, portfolio tokens and tenant isolation."""

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from functions.mews_add.app import handler as add_handler
from functions.mews_delete.app import handler as delete_handler
from functions.mews_get_all.app import handler as get_all_handler
from promo.domain.errors import NoCodeAvailable
from promo.domain.models import Issuance
from promo.secret_hashing import token_digest
from promo.services.tenants import put_tenant
from tests.support.builders import ACTOR, NO_WAIT, moment, tenant
from tests.support.deployment import cold_start, event, fixture, invoke, json_body, post_json
from tests.support.seed import (
    ACME_ENTERPRISE,
    ACME_TOKEN,
    ADD_VOUCHERS,
    GET_ALL_VOUCHER,
    GLOBEX_ENTERPRISE,
    GLOBEX_TOKEN,
    GLOBEX_VOUCHER,
    SPEC_TOKEN,
    MewsToken,
    seed_mews,
)
from tests.support.tables import Stores

pytestmark = pytest.mark.integration

GET_ALL = "/api/connector/v1/voucherCodes/getAll"
ADD = "/api/connector/v1/voucherCodes/add"
DELETE = "/api/connector/v1/voucherCodes/delete"
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
HANDLERS = {GET_ALL: get_all_handler, ADD: add_handler, DELETE: delete_handler}


@pytest.fixture
def world(deployed: Stores) -> Stores:
    seed_mews(deployed)
    return deployed


def call(path: str, body: Any, token: MewsToken | None = ACME_TOKEN) -> tuple[int, Any]:
    document = token.body(**body) if token is not None and isinstance(body, dict) else body
    response = invoke(HANDLERS[path], post_json(path, document))
    return response["statusCode"], json_body(response)


def add_codes(
    count: int,
    token: MewsToken = ACME_TOKEN,
    voucher: str = ADD_VOUCHERS[0],
    prefix: str = "V",
    **fields: Any,
) -> list[dict[str, Any]]:
    params = [{"VoucherId": voucher, "Value": f"{prefix}{i:05d}"} for i in range(count)]
    status, body = call(ADD, {"VoucherCodeParameters": params, **fields}, token)
    assert status == 200, body
    codes: list[dict[str, Any]] = body["VoucherCodes"]
    return codes


def get_all(token: MewsToken = ACME_TOKEN, count: int = 1000, **filters: Any) -> tuple[int, Any]:
    return call(GET_ALL, {"Limitation": {"Count": count}, **filters}, token)


def assert_mews_error(status: int, body: Any, expected_status: int) -> None:
    assert status == expected_status
    assert set(body) == {"Message", "RequestId"}
    assert isinstance(body["Message"], str)
    assert body["Message"]
    assert "Traceback" not in body["Message"]


def assert_shaped_like_spec(item: dict[str, Any], spec_item: dict[str, Any]) -> None:
    # the page's properties in its order, then IsActive, which Mews added in 2024 alongside
    # the deprecated ActivityState (docs/protocols/mews.md)
    assert list(item) == [*spec_item, "IsActive"]
    assert item["IsActive"] is (item["ActivityState"] == "Active")
    UUID(item["Id"])
    UUID(item["VoucherId"])
    assert ISO_Z.match(item["CreatedUtc"])
    assert ISO_Z.match(item["UpdatedUtc"])
    for name in ("ValidityStartUtc", "ValidityEndUtc"):
        assert item[name] is None or ISO_Z.match(item[name])


# ---------------------------------------------------------------- the spec page's examples


def test_spec_add_example_adds_both_codes_in_the_spec_response_shape(world: Stores) -> None:
    response = invoke(add_handler, event("mews_add"))
    spec_response = fixture("mews/add.response.json")

    assert response["statusCode"] == 200
    assert response["headers"]["content-type"].startswith("application/json")
    body = json_body(response)
    assert list(body) == list(spec_response)
    created = body["VoucherCodes"]
    assert [c["Value"] for c in created] == [c["Value"] for c in spec_response["VoucherCodes"]]
    assert [c["VoucherId"] for c in created] == list(ADD_VOUCHERS)
    for item, spec_item in zip(created, spec_response["VoucherCodes"], strict=True):
        assert_shaped_like_spec(item, spec_item)
        assert item["ActivityState"] == spec_item["ActivityState"] == "Active"
        assert item["ValidityStartUtc"] == item["ValidityEndUtc"] == "2023-10-09T22:00:00Z"
        assert item["CreatedUtc"] == item["UpdatedUtc"]


def test_spec_get_all_example_answers_in_the_spec_shape(world: Stores) -> None:
    added = add_codes(2, voucher=GET_ALL_VOUCHER, token=SPEC_TOKEN, EnterpriseId=ACME_ENTERPRISE)
    spec_request = json_body({"body": event("mews_get_all")["body"]})
    spec_response = fixture("mews/getAll.response.json")

    as_printed = invoke(get_all_handler, event("mews_get_all"))
    assert as_printed["statusCode"] == 200
    assert json_body(as_printed) == {"VoucherCodes": [], "Cursor": None}  # its ids are not ours

    now = datetime.now(UTC)
    spec_request["VoucherCodeIds"] = [code["Id"] for code in added]
    spec_request["UpdatedUtc"] = {
        "StartUtc": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "EndUtc": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    status, body = call(GET_ALL, spec_request, token=None)

    assert status == 200
    assert list(body) == list(spec_response)
    assert [code["Id"] for code in body["VoucherCodes"]] == [c["Id"] for c in reversed(added)]
    for item in body["VoucherCodes"]:
        assert_shaped_like_spec(item, spec_response["VoucherCodes"][0])
        assert item["VoucherId"] == GET_ALL_VOUCHER
    # Mews: the Id of the oldest item returned, even on a short page; null only with no data
    assert body["Cursor"] == body["VoucherCodes"][-1]["Id"]


def test_spec_delete_example_names_its_unknown_ids_and_deletes_nothing(world: Stores) -> None:
    add_codes(1)

    response = invoke(delete_handler, event("mews_delete"))

    body = json_body(response)
    assert_mews_error(response["statusCode"], body, 400)
    assert "8c364829-c7ae-4972-b67f-93ea704d7228" in body["Message"]
    assert "dc9d3488-7fc4-4fc9-a524-14e6504d8734" in body["Message"]


def test_delete_soft_deletes_and_answers_empty_object(world: Stores) -> None:
    added = add_codes(3)
    time.sleep(1.1)  # UpdatedUtc has whole-second precision on the wire

    status, body = call(DELETE, {"VoucherCodeIds": [added[0]["Id"], added[2]["Id"]]})

    assert (status, body) == (200, fixture("mews/delete.response.json"))
    _, listing = get_all(VoucherCodeIds=[c["Id"] for c in added])
    states = {c["Value"]: c for c in listing["VoucherCodes"]}
    assert states["V00000"]["ActivityState"] == states["V00002"]["ActivityState"] == "Deleted"
    assert states["V00001"]["ActivityState"] == "Active"
    assert states["V00000"]["IsActive"] is states["V00002"]["IsActive"] is False
    assert states["V00001"]["IsActive"] is True
    assert states["V00000"]["UpdatedUtc"] > states["V00000"]["CreatedUtc"]
    code = world.codes.get("acme", "V00000")
    assert code is not None
    assert code.is_deleted


# ---------------------------------------------------------------- one store for all protocols


def test_a_code_added_through_mews_is_issued_by_the_shared_store(world: Stores) -> None:
    add_codes(1, voucher=ADD_VOUCHERS[1], prefix="SHARED")
    pool = world.catalog.find_pool("acme", "mews", ADD_VOUCHERS[1])
    assert pool is not None

    issued = world.codes.claim(pool, Issuance(moment(), ACTOR))

    assert issued.value == "SHARED00000"
    with pytest.raises(NoCodeAvailable):
        world.codes.claim(pool, Issuance(moment(), ACTOR))


def test_a_deleted_code_is_never_issued(world: Stores) -> None:
    added = add_codes(1, voucher=ADD_VOUCHERS[1])
    call(DELETE, {"VoucherCodeIds": [added[0]["Id"]]})
    pool = world.catalog.find_pool("acme", "mews", ADD_VOUCHERS[1])
    assert pool is not None

    with pytest.raises(NoCodeAvailable):
        world.codes.claim(pool, Issuance(moment(), ACTOR))


# ---------------------------------------------------------------- add


def test_values_repeated_in_the_request_or_present_are_all_named_and_nothing_is_written(
    world: Stores,
) -> None:
    add_codes(2, prefix="OLD")
    params = [
        {"VoucherId": ADD_VOUCHERS[0], "Value": value}
        for value in ("NEW1", "TWICE", "OLD00000", "TWICE", "OLD00001", "NEW2")
    ]

    # a duplicate value breaks a business rule: 403, as Mews' guidelines answer those
    status, body = call(ADD, {"VoucherCodeParameters": params})
    assert_mews_error(status, body, 403)
    assert "TWICE" in body["Message"]

    status, body = call(ADD, {"VoucherCodeParameters": [p for i, p in enumerate(params) if i != 3]})
    assert_mews_error(status, body, 403)
    assert "OLD00000" in body["Message"]
    assert "OLD00001" in body["Message"]
    assert world.codes.existing_values("acme", ["NEW1", "NEW2", "TWICE"]) == set()


def test_in_a_case_insensitive_tenant_a_case_variant_is_a_duplicate_and_values_show_as_added(
    world: Stores,
) -> None:
    add_codes(1, prefix="Held-Before-")  # keyed as added, before the switch
    put_tenant(world.catalog, world.codes, tenant("acme", case_sensitive=False), NO_WAIT)
    add_codes(1, prefix="Added-After-")

    def add(*values: str) -> tuple[int, Any]:
        params = [{"VoucherId": ADD_VOUCHERS[0], "Value": value} for value in values]
        return call(ADD, {"VoucherCodeParameters": params})

    held, after, twins = add("HELD-BEFORE-00000"), add("added-after-00000"), add("Twin-1", "TWIN-1")

    for status, body in (held, after, twins):
        assert_mews_error(status, body, 403)
    assert "HELD-BEFORE-00000" in held[1]["Message"]
    assert "Twin-1, TWIN-1" in twins[1]["Message"] or "TWIN-1, Twin-1" in twins[1]["Message"]
    listed = get_all(VoucherIds=[ADD_VOUCHERS[0]])[1]["VoucherCodes"]
    assert sorted(code["Value"] for code in listed) == ["Added-After-00000", "Held-Before-00000"]


def test_an_unknown_or_foreign_voucher_refuses_the_whole_add(world: Stores) -> None:
    for voucher in (str(uuid4()), GLOBEX_VOUCHER):
        params = [
            {"VoucherId": ADD_VOUCHERS[0], "Value": "FINE"},
            {"VoucherId": voucher, "Value": "X"},
        ]
        status, body = call(ADD, {"VoucherCodeParameters": params})
        assert_mews_error(status, body, 400)
        assert voucher in body["Message"]
    assert world.codes.get("acme", "FINE") is None


@pytest.mark.parametrize(("count", "status"), [(1000, 200), (1001, 400)])
def test_add_takes_at_most_1000_codes(world: Stores, count: int, status: int) -> None:
    params = [{"VoucherId": ADD_VOUCHERS[0], "Value": f"BULK{i:05d}"} for i in range(count)]

    answered, body = call(ADD, {"VoucherCodeParameters": params})

    assert answered == status
    if status == 200:
        assert len(body["VoucherCodes"]) == 1000
        assert len({c["Id"] for c in body["VoucherCodes"]}) == 1000
    else:
        assert_mews_error(answered, body, 400)
        assert "VoucherCodeParameters" in body["Message"]
        assert world.codes.existing_values("acme", ["BULK00000"]) == set()


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("x" * 128, 200),
        ("x" * 129, 400),
        ("", 400),
        ("Ünïcødé ✓", 200),
        ("LINE\nBREAK", 400),
        ("NUL\x00", 400),
        ("BELL\x07", 400),
    ],
)
def test_value_is_one_to_128_characters(world: Stores, value: str, status: int) -> None:
    answered, body = call(
        ADD, {"VoucherCodeParameters": [{"VoucherId": ADD_VOUCHERS[0], "Value": value}]}
    )

    assert answered == status, body
    if status == 200:
        assert body["VoucherCodes"][0]["Value"] == value


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", 200),
        ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00+00:00", 200),
        ("2024-01-01T00:00:01Z", "2024-01-01T00:00:00Z", 400),
        ("2024-01-01", None, 400),
        ("not a date", None, 400),
    ],
)
def test_validity_start_may_not_be_after_end(
    world: Stores, start: str, end: str | None, status: int
) -> None:
    param: dict[str, Any] = {
        "VoucherId": ADD_VOUCHERS[0],
        "Value": "WINDOW",
        "ValidityStartUtc": start,
    }
    if end is not None:
        param["ValidityEndUtc"] = end

    answered, body = call(ADD, {"VoucherCodeParameters": [param]})

    assert answered == status, body
    if status == 200:
        assert body["VoucherCodes"][0]["ValidityEndUtc"] == (end or "").replace("+00:00", "Z")


def test_a_portfolio_token_must_name_the_enterprise_it_adds_to(world: Stores) -> None:
    params = [{"VoucherId": GLOBEX_VOUCHER, "Value": "PORTFOLIO"}]

    status, body = call(ADD, {"VoucherCodeParameters": params}, SPEC_TOKEN)
    assert_mews_error(status, body, 400)
    assert "EnterpriseId" in body["Message"]

    status, _ = call(
        ADD, {"VoucherCodeParameters": params, "EnterpriseId": GLOBEX_ENTERPRISE}, SPEC_TOKEN
    )
    assert status == 200
    assert world.codes.get("globex", "PORTFOLIO") is not None


def test_a_single_enterprise_token_refuses_an_enterprise_outside_its_scope_and_writes_nothing(
    world: Stores,
) -> None:
    """Issue 15 item 8: the add used to answer 200 and write to the token's own enterprise,
    while getAll answered 403 for the same EnterpriseId."""
    params = [{"VoucherId": ADD_VOUCHERS[0], "Value": "OUTSIDE"}]

    status, body = call(ADD, {"VoucherCodeParameters": params, "EnterpriseId": GLOBEX_ENTERPRISE})

    assert_mews_error(status, body, 403)
    assert GLOBEX_ENTERPRISE in body["Message"]
    assert world.codes.get("acme", "OUTSIDE") is None
    assert world.codes.get("globex", "OUTSIDE") is None


def test_a_single_enterprise_token_may_name_its_own_enterprise(world: Stores) -> None:
    params = [{"VoucherId": ADD_VOUCHERS[0], "Value": "OWN-ENTERPRISE"}]

    status, _ = call(ADD, {"VoucherCodeParameters": params, "EnterpriseId": ACME_ENTERPRISE})

    assert status == 200
    assert world.codes.get("acme", "OWN-ENTERPRISE") is not None


def test_delete_refuses_an_enterprise_outside_the_tokens_scope_and_deletes_nothing(
    world: Stores,
) -> None:
    added = add_codes(1, prefix="SCOPE")

    status, body = call(
        DELETE, {"VoucherCodeIds": [added[0]["Id"]], "EnterpriseId": GLOBEX_ENTERPRISE}
    )

    assert_mews_error(status, body, 403)
    code = world.codes.get("acme", added[0]["Value"])
    assert code is not None
    assert not code.is_deleted


# ---------------------------------------------------------------- getAll


@pytest.mark.parametrize(
    ("count", "status"), [(0, 400), (1, 200), (1000, 200), (1001, 400), ("10", 400)]
)
def test_limitation_count_is_1_to_1000(world: Stores, count: Any, status: int) -> None:
    answered, body = get_all(count=count)

    assert answered == status
    if status == 400:
        assert "Limitation.Count" in body["Message"]


def test_limitation_is_required(world: Stores) -> None:
    status, body = call(GET_ALL, {})

    assert_mews_error(status, body, 400)
    assert "Limitation" in body["Message"]


@pytest.mark.parametrize("field", ["EnterpriseIds", "VoucherCodeIds", "VoucherIds"])
def test_filters_take_at_most_1000_ids(world: Stores, field: str) -> None:
    ids = [str(uuid4()) for _ in range(1001)]

    filters: dict[str, Any] = {field: ids}
    status, body = get_all(**filters)
    assert_mews_error(status, body, 400)
    assert field in body["Message"]

    status, _ = get_all(**{**filters, field: ids[:1000]})
    assert status in (200, 403)  # 1000 unknown enterprises are outside the token's scope


@pytest.mark.parametrize(
    ("end", "status"),
    [("2024-04-30T00:00:00Z", 200), ("2024-04-30T00:00:01Z", 400), ("2024-01-29T00:00:00Z", 400)],
)
def test_updated_interval_is_at_most_three_months(world: Stores, end: str, status: int) -> None:
    answered, body = get_all(UpdatedUtc={"StartUtc": "2024-01-30T00:00:00Z", "EndUtc": end})

    assert answered == status, body


def test_updated_filter_includes_its_start_and_excludes_its_end(world: Stores) -> None:
    added = add_codes(1)
    updated = added[0]["UpdatedUtc"]
    later = (datetime.strptime(updated, "%Y-%m-%dT%H:%M:%SZ") + timedelta(seconds=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )

    _, inside = get_all(UpdatedUtc={"StartUtc": updated, "EndUtc": later})
    _, before = get_all(
        UpdatedUtc={"StartUtc": "2024-01-01T00:00:00Z", "EndUtc": "2024-01-02T00:00:00Z"}
    )

    assert [c["Id"] for c in inside["VoucherCodes"]] == [added[0]["Id"]]
    assert before["VoucherCodes"] == []


def test_voucher_filter_lists_only_that_vouchers_codes(world: Stores) -> None:
    add_codes(2, voucher=ADD_VOUCHERS[0], prefix="A")
    add_codes(3, voucher=ADD_VOUCHERS[1], prefix="B")

    _, body = get_all(VoucherIds=[ADD_VOUCHERS[1]])

    assert sorted(c["Value"] for c in body["VoucherCodes"]) == ["B00000", "B00001", "B00002"]


def test_pages_follow_the_cursor_newest_first_until_no_cursor(world: Stores) -> None:
    add_codes(7, prefix="P")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        limitation: dict[str, Any] = {"Count": 3} | ({"Cursor": cursor} if cursor else {})
        status, body = call(GET_ALL, {"Limitation": limitation})
        assert status == 200
        pages += 1
        seen += [c["Value"] for c in body["VoucherCodes"]]
        cursor = body["Cursor"]
        if cursor is None:
            assert body["VoucherCodes"] == []  # null only when no data comes back
            break
        # Mews: the Id of the oldest item returned, on a short page too
        assert cursor == body["VoucherCodes"][-1]["Id"]

    assert seen == [f"P{i:05d}" for i in reversed(range(7))]
    assert pages == 4  # 3 + 3 + 1, then an empty page with a null Cursor


def test_an_unknown_cursor_is_a_validation_error(world: Stores) -> None:
    status, body = call(GET_ALL, {"Limitation": {"Count": 3, "Cursor": str(uuid4())}})

    assert_mews_error(status, body, 400)
    assert "Cursor" in body["Message"]


def test_cursor_paging_returns_every_code_once_while_others_add_and_delete(world: Stores) -> None:
    initial = {c["Id"] for c in add_codes(300, prefix="INIT")}
    stop = threading.Event()

    def churn() -> None:
        index = 0
        while not stop.is_set():
            made = add_codes(5, prefix=f"CHURN{index:03d}-")
            call(DELETE, {"VoucherCodeIds": [made[0]["Id"], sorted(initial)[index % 300]]})
            index += 1

    other = threading.Thread(target=churn)
    other.start()
    try:
        seen: list[str] = []
        cursor = None
        while True:
            limitation: dict[str, Any] = {"Count": 25} | ({"Cursor": cursor} if cursor else {})
            status, body = call(
                GET_ALL, {"Limitation": limitation, "VoucherIds": [ADD_VOUCHERS[0]]}
            )
            assert status == 200
            seen += [c["Id"] for c in body["VoucherCodes"]]
            cursor = body["Cursor"]
            if cursor is None:
                break
    finally:
        stop.set()
        other.join()

    assert len(seen) == len(set(seen))  # nothing twice
    assert initial <= set(seen)  # nothing that existed when paging began was skipped


def test_a_portfolio_token_sees_all_its_enterprises_or_those_it_names(world: Stores) -> None:
    add_codes(2, prefix="ACME")
    add_codes(1, token=GLOBEX_TOKEN, voucher=GLOBEX_VOUCHER, prefix="GLOBEX")

    _, everything = get_all(token=SPEC_TOKEN)
    _, only_globex = get_all(token=SPEC_TOKEN, EnterpriseIds=[GLOBEX_ENTERPRISE])
    status, outside = get_all(token=ACME_TOKEN, EnterpriseIds=[GLOBEX_ENTERPRISE])

    assert sorted(c["Value"] for c in everything["VoucherCodes"]) == [
        "ACME00000",
        "ACME00001",
        "GLOBEX00000",
    ]
    assert [c["Value"] for c in only_globex["VoucherCodes"]] == ["GLOBEX00000"]
    assert_mews_error(status, outside, 403)


def test_a_portfolio_cursor_pages_across_enterprises(world: Stores) -> None:
    add_codes(3, prefix="ACME")
    add_codes(3, token=GLOBEX_TOKEN, voucher=GLOBEX_VOUCHER, prefix="GLOBEX")
    seen: list[str] = []
    cursor = None
    while True:
        limitation: dict[str, Any] = {"Count": 2} | ({"Cursor": cursor} if cursor else {})
        _, body = call(GET_ALL, {"Limitation": limitation}, SPEC_TOKEN)
        seen += [c["Value"] for c in body["VoucherCodes"]]
        cursor = body["Cursor"]
        if cursor is None:
            break

    assert sorted(seen) == sorted(
        [f"ACME{i:05d}" for i in range(3)] + [f"GLOBEX{i:05d}" for i in range(3)]
    )
    assert len(seen) == 6


# ---------------------------------------------------------------- tenant isolation


def test_another_enterprises_codes_behave_as_unknown(world: Stores) -> None:
    acme = add_codes(2, prefix="MINE")
    ids = [c["Id"] for c in acme]

    _, seen_by_globex = get_all(token=GLOBEX_TOKEN, VoucherCodeIds=ids)
    status, refused = call(DELETE, {"VoucherCodeIds": ids}, GLOBEX_TOKEN)
    _, unknown = call(DELETE, {"VoucherCodeIds": [str(uuid4())]}, GLOBEX_TOKEN)

    assert seen_by_globex["VoucherCodes"] == []
    assert_mews_error(status, refused, 400)
    assert refused["Message"].replace(ids[0], "X").replace(ids[1], "X") != refused["Message"]
    assert refused["Message"].split(":")[0] == unknown["Message"].split(":")[0]
    _, still = get_all(VoucherCodeIds=ids)
    assert all(c["ActivityState"] == "Active" for c in still["VoucherCodes"])


# ---------------------------------------------------------------- delete limits


def test_delete_takes_exactly_1000_ids(world: Stores) -> None:
    added = add_codes(1000, prefix="DEL")

    status, body = call(DELETE, {"VoucherCodeIds": [c["Id"] for c in added]})

    assert (status, body) == (200, {})
    _, listed = get_all(VoucherCodeIds=[c["Id"] for c in added])
    assert len(listed["VoucherCodes"]) == 1000
    assert {c["ActivityState"] for c in listed["VoucherCodes"]} == {"Deleted"}


@pytest.mark.parametrize(("count", "status"), [(0, 400), (1001, 400)])
def test_delete_takes_1_to_1000_ids(world: Stores, count: int, status: int) -> None:
    answered, body = call(DELETE, {"VoucherCodeIds": [str(uuid4()) for _ in range(count)]})

    assert_mews_error(answered, body, status)
    assert "VoucherCodeIds" in body["Message"]


# ---------------------------------------------------------------- authentication and errors


@pytest.mark.parametrize("path", [GET_ALL, ADD, DELETE])
@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"ClientToken": ACME_TOKEN.client_token},
        {"AccessToken": ACME_TOKEN.access_token},
        {"ClientToken": ACME_TOKEN.client_token, "AccessToken": "wrong"},
        {"ClientToken": "wrong", "AccessToken": ACME_TOKEN.access_token},
        {"ClientToken": GLOBEX_TOKEN.client_token, "AccessToken": ACME_TOKEN.access_token},
        {"ClientToken": 5, "AccessToken": ["x"]},
    ],
    ids=[
        "none",
        "no access token",
        "no client token",
        "wrong access",
        "wrong client",
        "mixed",
        "wrong types",
    ],
)
def test_bad_credentials_are_401_in_mews_shape_and_change_nothing(
    world: Stores, path: str, credentials: dict[str, Any]
) -> None:
    body = {
        "Client": "x",
        "Limitation": {"Count": 1},
        "VoucherCodeIds": [str(uuid4())],
        "VoucherCodeParameters": [{"VoucherId": ADD_VOUCHERS[0], "Value": "NOPE"}],
        **credentials,
    }

    status, answer = call(path, body, token=None)

    assert_mews_error(status, answer, 401)
    assert world.codes.get("acme", "NOPE") is None


def test_a_revoked_token_is_refused(world: Stores) -> None:
    credentials = seed_mews(world)
    assert get_all()[0] == 200

    credentials.revoke_mews_token(token_digest(ACME_TOKEN.access_token))

    status, body = get_all()
    assert_mews_error(status, body, 401)


def test_client_is_required(world: Stores) -> None:
    body = ACME_TOKEN.body(Limitation={"Count": 1})
    del body["Client"]

    status, answer = call(GET_ALL, body, token=None)

    assert_mews_error(status, answer, 400)
    assert "Client" in answer["Message"]


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b"[]", b'{"ClientToken": "a", "ClientToken": "b"}']
)
def test_malformed_json_is_refused_in_mews_shape(world: Stores, raw: bytes) -> None:
    response = invoke(get_all_handler, post_json(GET_ALL, raw))

    assert response["statusCode"] in (400, 401)
    assert_mews_error(response["statusCode"], json_body(response), response["statusCode"])


def test_errors_carry_the_request_id(world: Stores) -> None:
    request = post_json(GET_ALL, {"Limitation": {"Count": 1}})

    response = invoke(get_all_handler, request)

    assert json_body(response)["RequestId"] == request["requestContext"]["requestId"]
    assert response["headers"]["request-id"] == request["requestContext"]["requestId"]


def test_timestamps_with_offsets_are_accepted(world: Stores) -> None:
    status, _ = get_all(
        UpdatedUtc={"StartUtc": "2024-01-01T00:00:00+00:00", "EndUtc": "2024-01-02T00:00:00Z"}
    )

    assert status == 200


def test_optional_filters_may_be_omitted_or_null(world: Stores) -> None:
    add_codes(1)

    _, omitted = get_all()
    _, nulls = get_all(EnterpriseIds=None, VoucherIds=None, VoucherCodeIds=None, UpdatedUtc=None)

    assert omitted == nulls
    assert len(omitted["VoucherCodes"]) == 1


def test_an_add_meeting_another_unfinished_add_of_its_values_answers_409_which_mews_clients_retry(
    world: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promo.domain.errors import ConcurrentChange
    from promo.store.codes.bulk_staging import BulkAdds

    def in_flight(*args: Any, **kwargs: Any) -> None:
        raise ConcurrentChange(["V00000"])

    monkeypatch.setattr(BulkAdds, "write_codes", in_flight)
    params = [{"VoucherId": ADD_VOUCHERS[0], "Value": "V00000"}]

    status, body = call(ADD, {"VoucherCodeParameters": params})

    assert_mews_error(status, body, 409)
    assert "has not finished" in body["Message"]
    monkeypatch.undo()
    assert add_codes(1)[0]["Value"] == "V00000"  # nothing was written: the retry adds it


# ------------------------------------------------------- requests per AccessToken (429)


def test_an_access_token_past_its_request_limit_gets_429_with_retry_after(world: Stores) -> None:
    """Mews' guidelines: so many requests per AccessToken per window (200 per 30 s), then 429
    with Retry-After. A small limit here, so the test stays fast; every operation counts."""
    cold_start(mews_request_limit=3, mews_request_window_seconds=3600)
    add_codes(1)
    assert get_all()[0] == 200
    status, body = call(DELETE, {"VoucherCodeIds": [str(uuid4())]})
    assert status == 400  # refused, but counted: the request was made

    response = invoke(get_all_handler, post_json(GET_ALL, ACME_TOKEN.body(Limitation={"Count": 1})))

    body = json_body(response)
    assert_mews_error(response["statusCode"], body, 429)
    retry_after = int(response["headers"]["retry-after"])
    assert 1 <= retry_after <= 3600
    assert str(retry_after) in body["Message"]
    # every operation of that token stays refused, and nothing is written
    status, body = call(
        ADD, {"VoucherCodeParameters": [{"VoucherId": ADD_VOUCHERS[0], "Value": "LATE"}]}
    )
    assert_mews_error(status, body, 429)
    assert world.codes.existing_values("acme", ["LATE"]) == set()
    # another AccessToken has its own count
    assert get_all(token=GLOBEX_TOKEN)[0] == 200
    # a wrong token is refused as ever (401), never counted against anyone
    wrong = MewsToken(ACME_TOKEN.client_token, "not-the-token")
    assert call(GET_ALL, {"Limitation": {"Count": 1}}, wrong)[0] == 401


def test_the_request_limit_is_per_window_and_0_turns_it_off(world: Stores) -> None:
    cold_start(mews_request_limit=2, mews_request_window_seconds=2)
    time.sleep(2 - time.time() % 2)  # the start of a window (windows are aligned to the epoch)
    assert [get_all()[0] for _ in range(3)] == [200, 200, 429]
    time.sleep(2.05 - time.time() % 2)  # the next window

    assert get_all()[0] == 200

    cold_start(mews_request_limit=0)
    assert {get_all()[0] for _ in range(5)} == {200}
