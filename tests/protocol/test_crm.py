"""CRM.COM promotion_campaigns/request_promo_code with its login and token release: the page's
example as fixtures, every identifier rule and campaign restriction, tokens, fields_set."""

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

import promo.services.issuing
from functions.crm_request_promo_code import app as request_app
from promo.domain.credentials import Session, User
from promo.domain.errors import StoreUnavailable
from promo.domain.models import CodeState, PointOfContact, Recipient
from promo.services import Services
from promo.store.credentials import CredentialStore
from tests.support.builders import tenant
from tests.support.crm import (
    LOGIN,
    ORGANISATION,
    PASSWORD,
    RELEASE,
    REQUEST,
    SPEC_CAMPAIGN,
    SPEC_POOL,
    SPEC_RECIPIENT,
    USERNAME,
    WELCOME_POOL,
    call,
    campaign_pool,
    login,
    request_code,
    seed_demo,
    spec_event,
    states,
)
from tests.support.deployment import cold_start, fixture, invoke, json_body, post_json
from tests.support.tables import Stores

pytestmark = pytest.mark.integration

CRM_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
ID_HEX = re.compile(r"^[0-9A-F]{32}$")
RECIPIENTS = (
    "contact_information_identifier",
    "accounts_receivable_identifier",
    "subscription_identifier",
    "rewards_participant_identifier",
)


@pytest.fixture
def svc(deployed: Stores) -> Services:
    return seed_demo()


@pytest.fixture
def token(svc: Services) -> str:
    return login()


def credentials(svc: Services) -> CredentialStore:
    return svc.credentials


def assert_refused(status: int, body: Any, code: str, *fragments: str) -> None:
    assert status == 200
    assert body["data"] is None
    assert set(body["status"]) == {"code", "description", "message"}
    assert body["status"]["code"] == code
    assert body["status"]["description"]
    for fragment in fragments:
        assert fragment in body["status"]["message"]
    assert "Traceback" not in json.dumps(body)


def assert_ok(status: int, body: Any) -> dict[str, Any]:
    assert status == 200, body
    assert body["status"] == {"code": "OK", "description": "", "message": ""}
    data: dict[str, Any] = body["data"]
    return data


# ---------------------------------------------------------------- the page's example


def test_spec_example_request_answers_field_by_field_like_the_spec_response(
    svc: Services, token: str
) -> None:
    spec = fixture("crm/request_promo_code.response.json")

    response = invoke(request_app.handler, spec_event(token))

    assert response["statusCode"] == 200
    body = json_body(response)
    assert set(body) == set(spec) == {"data", "status"}
    assert body["status"] == spec["status"]
    data, spec_data = body["data"], spec["data"]
    assert set(data) == set(spec_data)
    assert ID_HEX.match(data["id"])
    assert ID_HEX.match(spec_data["id"])
    assert data["code"].startswith("SPRING-")  # a seeded code of the campaign's pool
    assert data["life_cycle_state"] == spec_data["life_cycle_state"] == "EFFECTIVE"
    assert CRM_DATE.match(data["expiration_date"])
    assert CRM_DATE.match(spec_data["expiration_date"])
    assert data["promotion_campaign"] == spec_data["promotion_campaign"]  # the same campaign
    log, spec_log = data["log_information"], spec_data["log_information"]
    assert set(log) == set(spec_log)
    for name in ("created_date", "updated_date"):
        assert CRM_DATE.match(log[name])
        assert CRM_DATE.match(spec_log[name])
    spec_updater = {k: v for k, v in spec_log["updated_by_user"].items() if k != "id"}
    assert {k: v for k, v in log["updated_by_user"].items() if k != "id"} == spec_updater
    assert set(log["created_by_user"]) == set(spec_log["created_by_user"]) - {"person_name"}
    assert log["created_by_user"]["username"] == "config:seed"  # the demo seeding credential
    assert log["created_by_unit"] is None  # made by the demo seeding, not by a CRM.COM unit
    # the demo user's unit (config/demo.yaml): an object like the spec's, with what we know of it
    assert log["updated_by_unit"] == {"id": "1", "name": "Admin Unit"}
    assert {k: spec_log["updated_by_unit"][k] for k in log["updated_by_unit"]} == {
        "id": "1",
        "name": "Admin Unit",
    }


def test_spec_example_issues_its_code_to_the_rewards_participant_exactly_once(
    svc: Services, token: str
) -> None:
    data = json_body(invoke(request_app.handler, spec_event(token)))["data"]

    code = svc.codes.get(ORGANISATION, data["code"])
    assert code is not None
    assert code.state is CodeState.ISSUED
    assert code.uuid == UUID(hex=data["id"])
    assert code.issued_to == Recipient("crm.rewards_participant.number", "RP0000000618")
    assert code.audit.updated_by == f"crm:{USERNAME}"
    assert data["expiration_date"] == code.validity.end.strftime("%Y-%m-%dT%H:%M:%S")  # type: ignore[union-attr]
    assert states(svc, SPEC_POOL) == {"ISSUED": 1, "AVAILABLE": 9}


def test_consecutive_requests_issue_different_codes(svc: Services, token: str) -> None:
    first = assert_ok(*request_code(token))
    second = assert_ok(*request_code(token))

    assert first["code"] != second["code"]
    assert first["id"] != second["id"]
    assert states(svc, SPEC_POOL)["ISSUED"] == 2


# ---------------------------------------------------------------- login and tokens


def test_login_answers_a_long_random_token_that_expires_after_two_hours(svc: Services) -> None:
    status, body = call(
        LOGIN, {"username": USERNAME, "password": PASSWORD, "organisation": ORGANISATION}
    )

    data = assert_ok(status, body)
    assert set(data) == {"token"}
    assert len(data["token"]) > 32
    assert data["token"] != login()
    session = credentials(svc).session("crm", data["token"])
    assert session is not None
    assert (session.tenant_id, session.username) == (ORGANISATION, USERNAME)
    expected = datetime.now(UTC) + timedelta(seconds=7200)
    assert abs((session.expires_at - expected).total_seconds()) < 5


def test_token_lifetime_follows_crm_token_seconds_and_an_expired_token_is_refused(
    svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    cold_start(crm_token_seconds=1)
    short_lived = login()
    assert_ok(*request_code(short_lived))

    time.sleep(1.2)
    status, body = request_code(short_lived)

    assert_refused(status, body, "AUTHENTICATION_FAILED", "token")
    assert states(svc, SPEC_POOL)["ISSUED"] == 1


@pytest.mark.parametrize(
    ("username", "password", "organisation"),
    [
        (USERNAME, "wrong-password", ORGANISATION),
        ("nobody", PASSWORD, ORGANISATION),
        (USERNAME, PASSWORD, "another-organisation"),
        (USERNAME.lower(), PASSWORD, ORGANISATION),
    ],
)
def test_login_with_wrong_credentials_is_refused_without_saying_which(
    svc: Services, username: str, password: str, organisation: str
) -> None:
    status, body = call(
        LOGIN, {"username": username, "password": password, "organisation": organisation}
    )

    assert_refused(status, body, "AUTHENTICATION_FAILED")
    assert body["status"]["message"] == "Invalid username, password or organisation."
    assert password not in json.dumps(body)


@pytest.mark.parametrize("missing", ["username", "password", "organisation"])
def test_login_without_a_mandatory_parameter_names_it(svc: Services, missing: str) -> None:
    body = {"username": USERNAME, "password": PASSWORD, "organisation": ORGANISATION}
    del body[missing]

    status, answer = call(LOGIN, body)

    assert_refused(status, answer, "INVALID_PARAMETER", missing)
    assert PASSWORD not in json.dumps(answer)


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("missing", None),
        ("unknown", "not-a-token-we-issued-0123456789abcdef0123456789"),
        ("empty", ""),
        ("not a string", 12345),
        ("too long", "x" * 513),
    ],
)
def test_request_without_a_live_token_is_refused_and_changes_nothing(
    svc: Services, name: str, token: Any
) -> None:
    body = {"promotion_campaign_identifier": {"alternative_code": "BG4"}, **SPEC_RECIPIENT}
    if token is not None:
        body["token"] = token

    status, answer = call(REQUEST, body)

    assert_refused(status, answer, "AUTHENTICATION_FAILED")
    assert states(svc, SPEC_POOL) == {"AVAILABLE": 10}


def test_an_expired_session_is_refused(svc: Services) -> None:
    expired = Session("crm", ORGANISATION, USERNAME, False, datetime.now(UTC) - timedelta(1))
    credentials(svc).start_session("expired-token-0123456789abcdef0123456789", expired)

    status, body = request_code("expired-token-0123456789abcdef0123456789")

    assert_refused(status, body, "AUTHENTICATION_FAILED")
    assert states(svc, SPEC_POOL)["ISSUED"] == 0


def test_authentication_is_checked_before_the_parameters(svc: Services) -> None:
    status, body = call(REQUEST, {"token": "unknown-token", "fields_set": 3})

    assert_refused(status, body, "AUTHENTICATION_FAILED")


def test_release_revokes_the_token_at_once(svc: Services, token: str) -> None:
    assert_ok(*request_code(token))

    status, body = call(RELEASE, {"token": token})

    assert status == 200
    assert body == {"data": None, "status": {"code": "OK", "description": "", "message": ""}}
    assert credentials(svc).session("crm", token) is None
    assert_refused(*request_code(token), "AUTHENTICATION_FAILED")
    assert_refused(*call(RELEASE, {"token": token}), "AUTHENTICATION_FAILED")
    assert states(svc, SPEC_POOL)["ISSUED"] == 1


def test_release_of_one_token_leaves_the_users_other_tokens_working(
    svc: Services, token: str
) -> None:
    other = login()

    assert_ok(*call(RELEASE, {"token": other}))

    assert_ok(*request_code(token))


@pytest.mark.parametrize("body", [{}, {"token": "never-issued-token"}])
def test_release_without_a_live_token_is_refused(svc: Services, body: dict[str, Any]) -> None:
    assert_refused(*call(RELEASE, body), "AUTHENTICATION_FAILED")


def test_a_removed_user_loses_its_live_tokens(svc: Services, token: str) -> None:
    credentials(svc).revoke("crm", f"{ORGANISATION}#{USERNAME}")

    assert_refused(*request_code(token), "AUTHENTICATION_FAILED")


def test_token_may_come_in_the_query_string(svc: Services, token: str) -> None:
    body = {"promotion_campaign_identifier": {"name": "Welcome"}, **SPEC_RECIPIENT}

    data = assert_ok(*call(REQUEST, body, query={"token": token}))

    assert data["promotion_campaign"]["alternative_code"] == "WLC"


# ---------------------------------------------------------------- promotion campaign identifier


@pytest.mark.parametrize(
    "identifier",
    [
        {"id": SPEC_CAMPAIGN["id"]},
        {"name": SPEC_CAMPAIGN["name"]},
        {"alternative_code": "BG4"},
    ],
)
def test_each_campaign_identifier_field_names_the_campaign(
    svc: Services, token: str, identifier: dict[str, str]
) -> None:
    data = assert_ok(*request_code(token, promotion_campaign_identifier=identifier))

    assert data["promotion_campaign"]["id"] == SPEC_CAMPAIGN["id"]
    assert data["code"].startswith("SPRING-")


@pytest.mark.parametrize(
    ("identifier", "fragments"),
    [
        ({}, ["promotion_campaign_identifier", "mandatory to specify one of"]),
        (
            {"id": SPEC_CAMPAIGN["id"], "name": SPEC_CAMPAIGN["name"]},
            ["promotion_campaign_identifier", "Only one of", "got id, name"],
        ),
        ({"alternative_code": "BG4", "code": "x"}, ["promotion_campaign_identifier.code"]),
        ({"alternative_code": ""}, ["promotion_campaign_identifier.alternative_code"]),
        ({"id": 7}, ["promotion_campaign_identifier.id"]),
    ],
)
def test_a_campaign_identifier_without_exactly_one_valid_field_is_refused(
    svc: Services, token: str, identifier: dict[str, Any], fragments: list[str]
) -> None:
    status, body = request_code(token, promotion_campaign_identifier=identifier)

    assert_refused(status, body, "INVALID_PARAMETER", *fragments)
    assert states(svc, SPEC_POOL)["ISSUED"] == 0


def test_a_request_without_campaign_identifier_is_refused(svc: Services, token: str) -> None:
    status, body = call(REQUEST, {"token": token, **SPEC_RECIPIENT})

    assert_refused(status, body, "INVALID_PARAMETER", "promotion_campaign_identifier")


def test_promo_code_parameter_is_refused_rather_than_ignored(svc: Services, token: str) -> None:
    status, body = request_code(token, promo_code="SPRING-7KQ3")

    assert_refused(status, body, "INVALID_PARAMETER", "promo_code")
    assert states(svc, SPEC_POOL)["ISSUED"] == 0


@pytest.mark.parametrize(
    "identifier",
    [{"id": "NO-SUCH-CAMPAIGN"}, {"name": "bulk generation 4"}, {"alternative_code": "X"}],
)
def test_an_unknown_campaign_is_not_found(
    svc: Services, token: str, identifier: dict[str, str]
) -> None:
    status, body = request_code(token, promotion_campaign_identifier=identifier)

    assert_refused(status, body, "PROMOTION_CAMPAIGN_NOT_FOUND")


def test_another_organisations_campaign_is_answered_as_not_found(
    svc: Services, deployed: Stores, token: str
) -> None:
    deployed.catalog.put_tenant(tenant("other"))
    campaign_pool(deployed, "foreign", codes=2, tenant_id="other", alternative_code="FRN")

    status, body = request_code(token, promotion_campaign_identifier={"alternative_code": "FRN"})

    assert_refused(status, body, "PROMOTION_CAMPAIGN_NOT_FOUND")
    assert states(svc, "foreign", tenant_id="other") == {"AVAILABLE": 2}


@pytest.mark.parametrize(
    ("restriction", "value"),
    [
        ("state", "DRAFT"),
        ("type", "REWARD_PROMOTION"),
        ("distribution_method", "INSTANT"),
    ],
)
def test_only_posted_discount_campaigns_distributed_upon_request_give_codes(
    svc: Services, deployed: Stores, token: str, restriction: str, value: str
) -> None:
    campaign_pool(deployed, "restricted", codes=3, alternative_code="RST", **{restriction: value})

    status, body = request_code(token, promotion_campaign_identifier={"alternative_code": "RST"})

    assert_refused(status, body, "PROMOTION_CAMPAIGN_NOT_ALLOWED", value)
    assert states(svc, "restricted") == {"AVAILABLE": 3}


def test_a_campaign_meeting_every_restriction_gives_a_code(
    svc: Services, deployed: Stores, token: str
) -> None:
    campaign_pool(deployed, "allowed", codes=1, alternative_code="ALW")

    data = assert_ok(
        *request_code(token, promotion_campaign_identifier={"alternative_code": "ALW"})
    )

    assert data["code"] == "ALLOWED-000"
    assert data["expiration_date"] is None  # a code without validity end


# ---------------------------------------------------------------- recipients


@pytest.mark.parametrize(
    ("parameter", "identifier", "kind", "value"),
    [
        ("contact_information_identifier", {"id": "CI1"}, "crm.contact_information.id", "CI1"),
        (
            "contact_information_identifier",
            {"vat_registration_number": "CY10000000X"},
            "crm.contact_information.vat_registration_number",
            "CY10000000X",
        ),
        (
            "accounts_receivable_identifier",
            {"number": "AR0001"},
            "crm.accounts_receivable.number",
            "AR0001",
        ),
        (
            "accounts_receivable_identifier",
            {"access_token_identifier": {"identifier": "card-42", "pass_code": "1234"}},
            "crm.accounts_receivable.access_token.identifier",
            "card-42",
        ),
        (
            "accounts_receivable_identifier",
            {"access_token_identifier": {"authentication_code": "AC-9"}},
            "crm.accounts_receivable.access_token.authentication_code",
            "AC-9",
        ),
        ("subscription_identifier", {"number": "S0042"}, "crm.subscription.number", "S0042"),
        ("subscription_identifier", {"id": "SUB-ID"}, "crm.subscription.id", "SUB-ID"),
        ("rewards_participant_identifier", {"id": "RP-ID"}, "crm.rewards_participant.id", "RP-ID"),
        (
            "rewards_participant_identifier",
            {"access_token_identifier": {"one_time_password": 123456}},
            "crm.rewards_participant.access_token.one_time_password",
            "123456",
        ),
    ],
)
def test_each_recipient_is_recorded_on_the_issued_code(
    svc: Services,
    token: str,
    parameter: str,
    identifier: dict[str, Any],
    kind: str,
    value: str,
) -> None:
    body = {"token": token, "promotion_campaign_identifier": {"alternative_code": "BG4"}}

    data = assert_ok(*call(REQUEST, {**body, parameter: identifier}))

    code = svc.codes.get(ORGANISATION, data["code"])
    assert code is not None
    assert code.issued_to == Recipient(kind, value)


def test_a_request_without_recipient_is_refused(svc: Services, token: str) -> None:
    body = {"token": token, "promotion_campaign_identifier": {"alternative_code": "BG4"}}

    status, answer = call(REQUEST, body)

    assert_refused(status, answer, "INVALID_PARAMETER", "mandatory to specify one of", *RECIPIENTS)
    assert states(svc, SPEC_POOL)["ISSUED"] == 0


def test_two_recipients_are_refused_naming_both(svc: Services, token: str) -> None:
    status, body = request_code(token, subscription_identifier={"number": "S1"})

    assert_refused(
        status,
        body,
        "INVALID_PARAMETER",
        "Only one of those parameters is allowed to be specified",
        "got subscription_identifier, rewards_participant_identifier",
    )
    assert states(svc, SPEC_POOL)["ISSUED"] == 0


@pytest.mark.parametrize(
    ("parameter", "two_fields"),
    [
        ("contact_information_identifier", {"id": "1", "passport_number": "P1"}),
        ("accounts_receivable_identifier", {"number": "A1", "name": "Acme"}),
        ("subscription_identifier", {"id": "1", "number": "S1"}),
        ("rewards_participant_identifier", {"id": "1", "number": "RP1"}),
    ],
)
def test_a_recipient_identifier_needs_exactly_one_field(
    svc: Services, token: str, parameter: str, two_fields: dict[str, str]
) -> None:
    base = {"token": token, "promotion_campaign_identifier": {"alternative_code": "BG4"}}

    empty = call(REQUEST, {**base, parameter: {}})
    two = call(REQUEST, {**base, parameter: two_fields})

    assert_refused(*empty, "INVALID_PARAMETER", parameter, "mandatory to specify one of")
    assert_refused(
        *two, "INVALID_PARAMETER", parameter, "Only one of", "got " + ", ".join(two_fields)
    )
    assert states(svc, SPEC_POOL)["ISSUED"] == 0


@pytest.mark.parametrize(
    ("access_token", "fragment"),
    [
        ({"identifier": "card-42"}, "pass_code is mandatory when identifier is specified"),
        ({"authentication_code": "AC", "pass_code": "1"}, "pass_code is applicable only"),
        ({"authentication_code": "AC", "one_time_password": 1}, "Only one of"),
        ({}, "mandatory to specify one of"),
    ],
)
def test_an_access_token_identifier_follows_its_own_rules(
    svc: Services, token: str, access_token: dict[str, Any], fragment: str
) -> None:
    recipient = {"access_token_identifier": access_token}

    status, body = request_code(token, rewards_participant_identifier=recipient)

    location = "rewards_participant_identifier.access_token_identifier"
    assert_refused(status, body, "INVALID_PARAMETER", location, fragment)
    assert states(svc, SPEC_POOL)["ISSUED"] == 0


def test_the_pass_code_is_never_recorded(svc: Services, token: str) -> None:
    recipient = {"access_token_identifier": {"identifier": "card-42", "pass_code": "s3cret-pass"}}

    data = assert_ok(*request_code(token, rewards_participant_identifier=recipient))

    code = svc.codes.get(ORGANISATION, data["code"])
    assert code is not None
    assert code.issued_to is not None
    assert "s3cret-pass" not in repr(code)
    assert "s3cret-pass" not in json.dumps(data)


# ---------------------------------------------------------------- fields_set


@pytest.mark.parametrize(
    ("fields_set", "expected"),
    [
        ("code", {"code"}),
        ("id, code ,life_cycle_state", {"id", "code", "life_cycle_state"}),
        (["code", "expiration_date"], {"code", "expiration_date"}),
        ("code,no_such_field", {"code"}),
        (
            "",
            {
                "id",
                "code",
                "life_cycle_state",
                "expiration_date",
                "promotion_campaign",
                "log_information",
            },
        ),
    ],
)
def test_fields_set_limits_the_top_level_fields(
    svc: Services, token: str, fields_set: Any, expected: set[str]
) -> None:
    data = assert_ok(*request_code(token, fields_set=fields_set))

    assert set(data) == expected


def test_fields_set_dotted_names_keep_part_of_an_object(svc: Services, token: str) -> None:
    fields_set = (
        "code,promotion_campaign.name,promotion_campaign.id,log_information.created_by_user"
    )
    data = assert_ok(*request_code(token, fields_set=fields_set))

    assert set(data) == {"code", "promotion_campaign", "log_information"}
    assert data["promotion_campaign"] == SPEC_CAMPAIGN
    assert data["log_information"] == {
        "created_by_user": {"id": "config:seed", "username": "config:seed"}
    }


def test_fields_set_a_whole_object_wins_over_its_parts(svc: Services, token: str) -> None:
    data = assert_ok(*request_code(token, fields_set="promotion_campaign.name,promotion_campaign"))

    assert set(data["promotion_campaign"]) == {
        "id",
        "name",
        "alternative_code",
        "description",
        "long_description",
        "short_description",
        "type",
    }


def test_fields_set_limits_the_answer_not_the_issue(svc: Services, token: str) -> None:
    data = assert_ok(*request_code(token, fields_set="id"))

    assert states(svc, SPEC_POOL)["ISSUED"] == 1
    assert ID_HEX.match(data["id"])


def test_fields_set_of_the_wrong_type_is_refused(svc: Services, token: str) -> None:
    assert_refused(*request_code(token, fields_set=7), "INVALID_PARAMETER", "fields_set")


# ---------------------------------------------------------------- issuing


def test_a_campaign_with_no_code_left_is_refused_and_nothing_is_issued_twice(
    svc: Services, token: str
) -> None:
    wlc = {"alternative_code": "WLC"}
    issued = [assert_ok(*request_code(token, promotion_campaign_identifier=wlc)) for _ in range(3)]

    status, body = request_code(token, promotion_campaign_identifier=wlc)

    assert_refused(status, body, "NO_PROMO_CODE_AVAILABLE")
    assert len({data["code"] for data in issued}) == 3
    assert states(svc, WELCOME_POOL) == {"ISSUED": 3}


def test_a_campaign_without_any_code_is_refused(
    svc: Services, deployed: Stores, token: str
) -> None:
    campaign_pool(deployed, "empty", codes=0, alternative_code="EMP")

    status, body = request_code(token, promotion_campaign_identifier={"alternative_code": "EMP"})

    assert_refused(status, body, "NO_PROMO_CODE_AVAILABLE")


def test_the_users_unit_is_the_point_of_contact_and_the_updating_unit(svc: Services) -> None:
    store = credentials(svc)
    user = store.user("crm", ORGANISATION, USERNAME)
    assert user is not None
    profile = {**user.profile, "unit": "U1", "unit_name": "Admin Unit"}
    store.put_user("crm", User(ORGANISATION, USERNAME, user.password_hash, profile=profile))

    data = assert_ok(*request_code(login()))

    code = svc.codes.get(ORGANISATION, data["code"])
    assert code is not None
    assert code.issued_point_of_contact == PointOfContact("U1", "Admin Unit")
    assert data["log_information"]["updated_by_unit"] == {"id": "U1", "name": "Admin Unit"}
    assert data["log_information"]["created_by_unit"] is None


# ---------------------------------------------------------------- malformed requests, faults


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"{not json", "application/json"),
        (b'{"token": "a", "token": "b"}', "application/json"),
        (b"[1, 2]", "application/json"),
        (b"token=abc", "application/x-www-form-urlencoded"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_in_the_crm_envelope(
    svc: Services, raw: bytes, content_type: str
) -> None:
    event = post_json(REQUEST, raw, headers={"content-type": content_type})

    response = invoke(request_app.handler, event)

    assert_refused(response["statusCode"], json_body(response), "MALFORMED_REQUEST")


def test_a_store_outage_is_a_503_without_detail(
    svc: Services, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("ProvisionedThroughputExceeded on table promo-secret-name")

    monkeypatch.setattr(promo.services.issuing, "claim_code", unavailable)

    status, body = request_code(token)

    assert status == 503
    assert body["status"]["code"] == "SERVICE_UNAVAILABLE"
    assert "promo-secret-name" not in body["status"]["message"]


def test_an_unexpected_failure_is_a_500_without_stack_trace(
    svc: Services, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(promo.services.issuing, "claim_code", broken)

    status, body = request_code(token)

    assert status == 500
    assert body["data"] is None
    assert body["status"]["code"] == "UNEXPECTED_ERROR"
    assert "internal detail" not in json.dumps(body)
    assert "Traceback" not in json.dumps(body)
