"""Logs never contain a secret, token, password, session cookie or Authorization header value
(issue 9, item 6): one representative request of every route, successful and refused, with every
logger at DEBUG (Powertools' JSON lines, the standard library's, botocore's) and stdout/stderr
captured, including the async worker's."""

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

import promo.observability
from tests.security.world import (
    CRM_LOGIN,
    CRM_LOGOUT,
    CRM_REQUEST,
    DEMO_CRM_PASSWORD,
    DEMO_CRM_USER,
    DEMO_DEVICE,
    DEMO_SPRING_VOUCHER,
    DEMO_SYNCTV_ADMIN,
    DEMO_SYNCTV_PASSWORD,
    MAESTRA_ASYNC,
    MAESTRA_SYNC,
    MEWS_ADD,
    MEWS_DELETE,
    MEWS_GET_ALL,
    ROUTES,
    SYNCTV_CREATE,
    SYNCTV_INDEX,
    SYNCTV_LOGIN,
    SYNCTV_LOGOUT,
    SYNCTV_SHOW,
    SYNCTV_VALIDATE,
    Answer,
    MewsPair,
    World,
    call,
    json_event,
    maestra_event,
    mews_body,
    request_event,
)
from tests.support.deployment import cold_start, invoke, use_sender

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "wrong-password-9c1e77"
WRONG_TOKEN = "wrong-token-0b5d3f2a8e"


@pytest.fixture
def captured(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> Iterator[Callable[[], str]]:
    """Everything any logger wrote so far, at DEBUG, plus the process's stdout and stderr."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    cold_start()
    service = promo.observability.logger
    previous = service.log_level
    service.setLevel("DEBUG")
    buffer = io.StringIO()
    # Powertools' logger does not propagate: listen to it with its own JSON formatter too.
    listener = logging.StreamHandler(buffer)
    listener.setFormatter(service.registered_formatter)
    stdlib = logging.getLogger(service.name)
    stdlib.addHandler(listener)
    caplog.set_level(logging.DEBUG)
    streams: list[str] = []

    def logs() -> str:
        out, err = capfd.readouterr()
        streams.extend((out, err))
        records = "\n".join(str(record.__dict__) for record in caplog.records)
        return "\n".join([buffer.getvalue(), *streams, caplog.text, records])

    try:
        yield logs
    finally:
        stdlib.removeHandler(listener)
        service.setLevel(previous)


def _maestra(function: str, w: World, authorization: str) -> dict[str, Any]:
    return maestra_event(
        function,
        "IssuePromoCodeFromPool",
        {
            "customer": {"ids": {"webSiteUserId": "42"}},
            "promoCode": {"pool": {"ids": {"externalId": "welcome"}}},
        },
        authorization=authorization,
    )


def test_no_secret_token_password_or_session_value_reaches_the_logs(
    world: World, captured: Callable[[], str]
) -> None:
    sent: list[dict[str, Any]] = []
    use_sender(sent.append)
    answers: dict[str, list[Answer]] = {function: [] for function in ROUTES}
    authorizations = [
        f"SecretKey {world.maestra_key}",
        f'Mindbox secretKey="{world.maestra_key}"',
        f"SecretKey {WRONG_TOKEN}",
    ]

    def run(function: str, event: dict[str, Any]) -> Answer:
        answer = call(function, event)
        answers[function].append(answer)
        return answer

    try:
        # CRM.COM: a refused and a successful login, a request, a release, a released token.
        run(
            CRM_LOGIN,
            json_event(
                CRM_LOGIN,
                {"username": DEMO_CRM_USER, "password": WRONG_PASSWORD, "organisation": "demo"},
            ),
        )
        login = run(
            CRM_LOGIN,
            json_event(
                CRM_LOGIN,
                {"username": DEMO_CRM_USER, "password": DEMO_CRM_PASSWORD, "organisation": "demo"},
            ),
        )
        crm_token = login.json()["data"]["token"]
        request = {
            "token": crm_token,
            "promotion_campaign_identifier": {"alternative_code": "WLC"},
            "rewards_participant_identifier": {"number": "RP1"},
        }
        assert run(CRM_REQUEST, json_event(CRM_REQUEST, request)).json()["status"]["code"] == "OK"
        run(CRM_LOGOUT, json_event(CRM_LOGOUT, {"token": crm_token}))
        run(CRM_REQUEST, json_event(CRM_REQUEST, request))
        run(CRM_REQUEST, json_event(CRM_REQUEST, {**request, "token": WRONG_TOKEN}))
        # SyncTV: a refused and a successful login, every admin action, validate, logout.
        form = "application/x-www-form-urlencoded"
        run(
            SYNCTV_LOGIN,
            request_event(
                SYNCTV_LOGIN,
                body=urlencode({"email": DEMO_SYNCTV_ADMIN, "password": WRONG_PASSWORD}).encode(),
                content_type=form,
            ),
        )
        session = run(
            SYNCTV_LOGIN,
            request_event(
                SYNCTV_LOGIN,
                body=urlencode(
                    {"email": DEMO_SYNCTV_ADMIN, "password": DEMO_SYNCTV_PASSWORD}
                ).encode(),
                content_type=form,
            ),
        )
        cookie = session.cookies[0].split(";", 1)[0].split("=", 1)[1]
        assert len(cookie) > 20
        run(
            SYNCTV_INDEX,
            request_event(SYNCTV_INDEX, path_parameters={"offer_id": "2"}, cookie=cookie),
        )
        run(
            SYNCTV_SHOW,
            request_event(SYNCTV_SHOW, path_parameters={"offer_id": "2", "id": "1"}, cookie=cookie),
        )
        run(
            SYNCTV_CREATE,
            request_event(
                SYNCTV_CREATE,
                path_parameters={"offer_id": "1020"},
                query={"count": "2"},
                cookie=cookie,
            ),
        )
        run(
            SYNCTV_VALIDATE,
            request_event(SYNCTV_VALIDATE, query={"code": "SPRING-7KQ3"}, cookie=cookie),
        )
        run(
            SYNCTV_VALIDATE,
            request_event(SYNCTV_VALIDATE, query={"code": "SPRING-7KQ3", "device": DEMO_DEVICE}),
        )
        run(
            SYNCTV_INDEX,
            request_event(SYNCTV_INDEX, path_parameters={"offer_id": "2"}, cookie=WRONG_TOKEN),
        )
        run(SYNCTV_LOGOUT, request_event(SYNCTV_LOGOUT, cookie=cookie))
        # Mews: every operation, and a refused token.
        add = mews_body(
            world.mews, VoucherCodeParameters=[{"VoucherId": DEMO_SPRING_VOUCHER, "Value": "LOG-1"}]
        )
        added = run(MEWS_ADD, json_event(MEWS_ADD, add)).json()["VoucherCodes"]
        run(MEWS_GET_ALL, json_event(MEWS_GET_ALL, mews_body(world.mews, Limitation={"Count": 5})))
        run(
            MEWS_DELETE,
            json_event(MEWS_DELETE, mews_body(world.mews, VoucherCodeIds=[added[0]["Id"]])),
        )
        wrong = MewsPair(WRONG_TOKEN, world.mews.access_token)
        run(MEWS_GET_ALL, json_event(MEWS_GET_ALL, mews_body(wrong, Limitation={"Count": 5})))
        # Maestra: both key forms, a wrong key, sync and async, and the worker on the queue.
        for authorization in authorizations:
            run(MAESTRA_SYNC, _maestra(MAESTRA_SYNC, world, authorization))
            run(MAESTRA_ASYNC, _maestra(MAESTRA_ASYNC, world, authorization))
        assert len(sent) == 2
        from functions.maestra_worker.app import handler as worker

        records = [{"messageId": f"m{i}", "body": json.dumps(m)} for i, m in enumerate(sent)]
        invoke(worker, {"Records": records})
    finally:
        use_sender(None)

    assert all(answers[function] for function in ROUTES), "a route was not exercised"
    secrets = [
        *world.secrets(),
        crm_token,
        cookie,
        WRONG_PASSWORD,
        WRONG_TOKEN,
        *authorizations,
        *(f"_synctv_session={cookie}",),
    ]
    text = captured()
    assert "botocore" in text  # botocore's DEBUG lines are in the capture too
    assert '"message":"Answered"' in text.replace(" ", "")  # the capture saw the service's logs
    for secret in secrets:
        assert secret not in text, f"a secret reached the logs: {secret[:6]}…"
    # The queued work carries the endpoint, never its key.
    assert world.maestra_key not in json.dumps(sent)


def test_the_capture_would_see_a_secret_that_was_logged(captured: Callable[[], str]) -> None:
    """Control: a value logged through the service's logger, or printed, is found by the check
    above."""
    promo.observability.logger.debug("leak check", extra={"value": WRONG_TOKEN})
    print(WRONG_PASSWORD)
    text = captured()
    assert WRONG_TOKEN in text
    assert WRONG_PASSWORD in text
