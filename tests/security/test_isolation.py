"""Tenant isolation (issue 9, item 2): with its own live credentials, tenant ``rival`` cannot see,
issue, validate, redeem or delete tenant ``demo``'s codes, and every answer is byte for byte the
answer to a code, pool or enterprise that does not exist (the probed value itself, request ids
and error ids aside)."""

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from promo.store import keys
from tests.security.world import (
    CRM_REQUEST,
    DEMO_CODES,
    DEMO_DATA_MARKERS,
    DEMO_ENTERPRISE,
    DEMO_SPRING_VOUCHER,
    DEMO_WELCOME_OFFER,
    MAESTRA_ASYNC,
    MAESTRA_SYNC,
    MEWS_ADD,
    MEWS_DELETE,
    MEWS_GET_ALL,
    RIVAL_CODES,
    RIVAL_DEVICE,
    RIVAL_MAESTRA_KEY,
    RIVAL_OFFER,
    SYNCTV_CREATE,
    SYNCTV_INDEX,
    SYNCTV_SHOW,
    SYNCTV_VALIDATE,
    Answer,
    World,
    call,
    json_event,
    maestra_event,
    mews_body,
    miss_counters,
    request_event,
    scan,
)
from tests.support.deployment import use_sender

pytestmark = pytest.mark.integration

UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# A request id as tools.lambda_runtime makes it (API Gateway's are of the same kind).
REQUEST_ID = re.compile(r"[0-9a-f]{16}=")

Probe = Callable[[World, str], dict[str, Any]]


def _rival_mews(function: str, fields: Callable[[str], dict[str, Any]]) -> Probe:
    return lambda w, probe: json_event(function, mews_body(w.rival_mews, **fields(probe)))


def _rival_maestra(function: str, operation: str, body: Callable[[str], Any]) -> Probe:
    return lambda w, probe: maestra_event(
        function,
        operation,
        body(probe),
        endpoint="rival-website",
        authorization=f"SecretKey {RIVAL_MAESTRA_KEY}",
    )


def _by_value(probe: str) -> dict[str, Any]:
    return {"customer": {"ids": {"webSiteUserId": "7"}}, "promoCode": {"ids": {"value": probe}}}


def _from_pool(probe: str) -> dict[str, Any]:
    return {
        "customer": {"ids": {"webSiteUserId": "7"}},
        "promoCode": {"pool": {"ids": {"externalId": probe}}},
    }


def _synctv(function: str, query: dict[str, str] | None = None) -> Callable[..., Probe]:
    def probe_path(id_of: Callable[[World, str], dict[str, str]]) -> Probe:
        return lambda w, probe: request_event(
            function, path_parameters=id_of(w, probe), query=query, cookie=w.rival_synctv
        )

    return probe_path


def _crm(field: str) -> Probe:
    return lambda w, probe: json_event(
        CRM_REQUEST,
        {
            "token": w.rival_crm_token,
            "promotion_campaign_identifier": {field: probe},
            "rewards_participant_identifier": {"number": "RP0000000618"},
        },
    )


def _demo_uuid(value: str) -> Callable[[World], str]:
    return lambda w: w.code_uuids[value]


def _demo_number(value: str) -> Callable[[World], str]:
    return lambda w: str(w.code_numbers[value])


def _fixed(text: str) -> Callable[[World], str]:
    return lambda w: text


def _random_uuid(w: World) -> str:
    return str(uuid.uuid4())


# operation -> (request as rival, demo's record, a record that exists nowhere)
OPERATIONS: dict[str, tuple[Probe, Callable[[World], str], Callable[[World], str]]] = {
    "mews getAll by voucher": (
        _rival_mews(MEWS_GET_ALL, lambda p: {"VoucherIds": [p], "Limitation": {"Count": 10}}),
        _fixed(DEMO_SPRING_VOUCHER),
        _random_uuid,
    ),
    "mews getAll by code id": (
        _rival_mews(MEWS_GET_ALL, lambda p: {"VoucherCodeIds": [p], "Limitation": {"Count": 10}}),
        _demo_uuid("SPRING-7KQ3"),
        _random_uuid,
    ),
    "mews getAll by enterprise": (
        _rival_mews(MEWS_GET_ALL, lambda p: {"EnterpriseIds": [p], "Limitation": {"Count": 10}}),
        _fixed(DEMO_ENTERPRISE),
        _random_uuid,
    ),
    "mews add to a voucher": (
        _rival_mews(
            MEWS_ADD, lambda p: {"VoucherCodeParameters": [{"VoucherId": p, "Value": "ISO-1"}]}
        ),
        _fixed(DEMO_SPRING_VOUCHER),
        _random_uuid,
    ),
    "mews add for an enterprise": (
        _rival_mews(
            MEWS_ADD,
            lambda p: {
                "EnterpriseId": p,
                "VoucherCodeParameters": [{"VoucherId": DEMO_SPRING_VOUCHER, "Value": "ISO-2"}],
            },
        ),
        _fixed(DEMO_ENTERPRISE),
        _random_uuid,
    ),
    "mews delete": (
        _rival_mews(MEWS_DELETE, lambda p: {"VoucherCodeIds": [p]}),
        _demo_uuid("SPRING-M4XR"),
        _random_uuid,
    ),
    "synctv index": (
        _synctv(SYNCTV_INDEX)(lambda w, p: {"offer_id": p}),
        _fixed(str(DEMO_WELCOME_OFFER)),
        _fixed("9999"),
    ),
    "synctv show by code id": (
        _synctv(SYNCTV_SHOW)(lambda w, p: {"offer_id": str(RIVAL_OFFER), "id": p}),
        _demo_number("WELCOME-R3XM"),
        _fixed("99999"),
    ),
    "synctv show by offer": (
        _synctv(SYNCTV_SHOW)(lambda w, p: {"offer_id": p, "id": _demo_number("WELCOME-R3XM")(w)}),
        _fixed(str(DEMO_WELCOME_OFFER)),
        _fixed("9999"),
    ),
    "synctv create": (
        _synctv(SYNCTV_CREATE, {"count": "2", "length": "8"})(lambda w, p: {"offer_id": p}),
        _fixed(str(DEMO_WELCOME_OFFER)),
        _fixed("9999"),
    ),
    "synctv validate by device": (
        lambda w, p: request_event(SYNCTV_VALIDATE, query={"code": p, "device": RIVAL_DEVICE}),
        _fixed("SPRING-P9TW"),
        _fixed("NOSUCH-P9TW"),
    ),
    "synctv validate by session": (
        lambda w, p: request_event(SYNCTV_VALIDATE, query={"code": p}, cookie=w.rival_synctv),
        _fixed("SPRING-P9TW"),
        _fixed("NOSUCH-P9TW"),
    ),
    "maestra issue by value": (
        _rival_maestra(MAESTRA_SYNC, "IssuePromoCodeByValue", _by_value),
        _fixed("SPRING-HN62"),
        _fixed("NOSUCH-HN62"),
    ),
    "maestra issue from pool": (
        _rival_maestra(MAESTRA_SYNC, "IssuePromoCodeFromPool", _from_pool),
        _fixed("spring-2025"),
        _fixed("nosuch-2025"),
    ),
    "maestra redeem": (
        _rival_maestra(MAESTRA_SYNC, "RedeemPromoCode", _by_value),
        _fixed("SPRING-V8DC"),
        _fixed("NOSUCH-V8DC"),
    ),
    "maestra async issue by value": (
        _rival_maestra(MAESTRA_ASYNC, "IssuePromoCodeByValue", _by_value),
        _fixed("SPRING-HN62"),
        _fixed("NOSUCH-HN62"),
    ),
    "crm request by alternative code": (
        _crm("alternative_code"),
        _fixed("BG4"),
        _fixed("ZZ9"),
    ),
    "crm request by campaign id": (
        _crm("id"),
        _fixed("DDA3E17570FE4BEFB1550BD1C63389E7"),
        _fixed("FFA3E17570FE4BEFB1550BD1C63389FF"),
    ),
    "crm request by campaign name": (
        _crm("name"),
        _fixed("Bulk Generation 4"),
        _fixed("Bulk Generation 9"),
    ),
}


def normalised(answer: Answer, probe: str) -> tuple[int, dict[str, str], list[str], str]:
    """The answer with the probed value, request ids and error ids blanked out."""

    def blank(text: str) -> str:
        text = text.replace(probe, "<probe>")
        return REQUEST_ID.sub("<request-id>", UUID_TEXT.sub("<uuid>", text))

    headers = {name: blank(value) for name, value in answer.headers.items()}
    return answer.status, headers, [blank(c) for c in answer.cookies], blank(answer.body)


@pytest.fixture
def queued() -> Any:
    sent: list[dict[str, Any]] = []
    use_sender(sent.append)
    yield sent
    use_sender(None)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_another_tenants_record_is_answered_exactly_like_one_that_does_not_exist(
    world: World, queued: list[dict[str, Any]], operation: str
) -> None:
    build, demo_record, missing_record = OPERATIONS[operation]
    theirs, nowhere = demo_record(world), missing_record(world)
    before, counted = scan(world), miss_counters(world)

    against_demo = call(_function(build, world, theirs), build(world, theirs))
    against_nothing = call(_function(build, world, nowhere), build(world, nowhere))

    assert normalised(against_demo, theirs) == normalised(against_nothing, nowhere)
    assert scan(world) == before, "rival changed the table"
    # Validate's -45s count against rival's own caller, never against demo's.
    changed = {key for key, misses in miss_counters(world).items() if counted.get(key) != misses}
    assert all(key.startswith(f"{keys.MISSES_PREFIX}rival#") for key in changed), changed
    for marker in (*DEMO_DATA_MARKERS, *DEMO_CODES):
        assert marker not in against_demo.body.replace(theirs, "<probe>")
    # Async: the answer is the same (Success, queued), and the queued work will find nothing;
    # the worker is exercised by tests/protocol/test_maestra.py.
    assert len(queued) in (0, 2)


def _function(build: Probe, world: World, probe: str) -> str:
    """The template function whose route the built event targets."""
    from tests.security.world import ROUTES

    event = build(world, probe)
    return next(name for name, route in ROUTES.items() if route.route_key == event["routeKey"])


def test_rival_lists_only_its_own_codes_through_mews(world: World) -> None:
    answer = call(
        MEWS_GET_ALL,
        json_event(MEWS_GET_ALL, mews_body(world.rival_mews, Limitation={"Count": 1000})),
    )
    assert answer.status == 200, answer.body
    values = sorted(code["Value"] for code in answer.json()["VoucherCodes"])
    assert values == sorted(RIVAL_CODES)


def test_rival_lists_only_its_own_codes_through_synctv(world: World) -> None:
    event = request_event(
        SYNCTV_INDEX, path_parameters={"offer_id": str(RIVAL_OFFER)}, cookie=world.rival_synctv
    )
    answer = call(SYNCTV_INDEX, event)
    assert answer.status == 200, answer.body
    for value in RIVAL_CODES:
        assert value in answer.body
    for marker in DEMO_DATA_MARKERS:
        assert marker not in answer.body


def test_a_demo_code_id_shown_to_rival_is_not_found_even_where_rival_has_that_number(
    world: World,
) -> None:
    """Integer ids are per tenant: rival's own code 1 is rival's, never demo's code 1."""
    event = request_event(
        SYNCTV_SHOW,
        path_parameters={"offer_id": str(RIVAL_OFFER), "id": "1"},
        cookie=world.rival_synctv,
    )
    answer = call(SYNCTV_SHOW, event)
    assert answer.status == 200, answer.body
    assert "RIVAL-" in answer.body
    for marker in DEMO_DATA_MARKERS:
        assert marker not in answer.body
