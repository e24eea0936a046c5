"""What every fuzz test shares: one local stack for the whole folder, the demo credentials, a
pool of keep-alive HTTP sessions sending prepared requests concurrently, and the checks every
answer must pass (no 5xx, no stack trace, every error in the vendor's shape)."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml
from hypothesis import HealthCheck, Phase, seed, settings
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from lxml import etree

from tests.integration.test_local_stack import wait_until_answering
from tools.dynamodb_local import free_port
from tools.template import ROOT

REQUESTS_PER_ROUTE = int(os.environ.get("FUZZ_REQUESTS_PER_ROUTE", "1000"))
# Bounded time: one route's generation, requests and checks. A route still short of its count
# when the bound passes fails (TimeBoundExceeded); it never passes with fewer requests.
ROUTE_SECONDS = float(os.environ.get("FUZZ_ROUTE_SECONDS", "240"))
SENDERS = 4  # concurrent keep-alive connections (scrypt logins and DynamoDB calls overlap)

# Fixed seed: derandomize makes every run generate the same requests (CI). FUZZ_SEED=N draws
# other requests, reproducibly (`make fuzz` passes a new one each run and prints it). Generation
# only: no example database, and no shrinking (a CI gate reports the failing request as sent;
# shrinking it would take minutes of further requests against the stack).
SEED = os.environ.get("FUZZ_SEED") or None
FUZZ_SETTINGS = settings(
    max_examples=REQUESTS_PER_ROUTE,
    derandomize=SEED is None,
    database=None,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def fuzzed[T: Callable[..., None]](test: T) -> T:
    """FUZZ_SETTINGS, and FUZZ_SEED if set, for a ``@given`` test."""
    return FUZZ_SETTINGS(test if SEED is None else seed(int(SEED))(test))


# config/demo.yaml
MEWS_TOKENS = {
    "ClientToken": "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",
    "AccessToken": "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
    "Client": "fuzz",
}
MEWS_ENTERPRISE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
MEWS_VOUCHERS = ["fe568bbd-1ecb-4bb2-bf77-96c3698de20d", "8c364829-c7ae-4972-b67f-93ea704d7228"]
MAESTRA_ENDPOINT = "demo-website"
MAESTRA_KEY = "demo-maestra-secret-key"
MAESTRA_OPERATIONS = [
    "IssueSpringPromoCode",
    "IssuePromoCodeFromPool",
    "IssuePromoCodeByValue",
    "CreateAndIssuePromoCode",
    "CreateSpringPromoCode",
    "RedeemPromoCode",
]
CRM_LOGIN = {"username": "MPAdministrator", "password": "demo-crm-password", "organisation": "demo"}
CRM_CAMPAIGNS = [
    {"alternative_code": "BG4"},
    {"name": "Welcome"},
    {"id": "DDA3E17570FE4BEFB1550BD1C63389E7"},
]
SYNCTV_ADMIN = {"email": "admin@demo.example", "password": "demo-synctv-password"}
SYNCTV_VIEWER = {"email": "viewer@demo.example", "password": "demo-viewer-password"}
SYNCTV_DEVICE = "urn:synctv:devices:web:11223344"
SYNCTV_OFFERS = [2, 1020]
DEMO_CODES = ["SPRING-7KQ3", "SPRING-M4XR", "WELCOME-4F7Q", "WELCOME-9KD2"]

# What a stack trace or an exception leaking into a body looks like.
LEAKS = (
    "Traceback",
    'File "',
    "most recent call",
    "Exception:",
    "KeyError",
    "ValueError",
    "TypeError",
    "AttributeError",
    "IndexError",
    "RecursionError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "JSONDecodeError",
    "XMLSyntaxError",
    "ClientError",
    "botocore",
    "pydantic_core",
    "validation error for",
    "NoneType",
    "lxml.",
)

OPENAPI: dict[str, Any] = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())


def schema_validator(name: str) -> Draft202012Validator:
    """A validator for one schema of docs/openapi.yaml (its refs resolved in the document)."""
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}
    )


@dataclass(frozen=True)
class Stack:
    url: str
    log: Path
    crm_token: str  # live for the whole run
    crm_token_to_release: str
    synctv_admin: str  # session tokens
    synctv_viewer: str
    synctv_to_end: str


def start_stack(data_dir: Path) -> Iterator[Stack]:
    """The local stack as `make run` starts it, on a free port, logging to a file (a pipe
    nobody reads would fill up and stall it)."""
    port = free_port()
    # Every route gets at least 1,000 requests, many with the one demo AccessToken: Mews' limit
    # of 200 per token per 30 s (tested in tests/protocol/test_mews.py) would answer them 429.
    env = {**os.environ, "PORT": str(port), "MEWS_REQUEST_LIMIT": "0"}
    env.pop("TABLE_NAME", None)
    env.pop("DYNAMODB_ENDPOINT_URL", None)
    log = data_dir / "stack.log"
    with log.open("w") as out:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "tools.local_stack", "--data-dir", str(data_dir), "--fresh"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_until_answering(port, process)
        url = f"http://127.0.0.1:{port}"
        yield Stack(
            url,
            log,
            _crm_login(url),
            _crm_login(url),
            _synctv_login(url, SYNCTV_ADMIN),
            _synctv_login(url, SYNCTV_VIEWER),
            _synctv_login(url, SYNCTV_ADMIN),
        )
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def _crm_login(url: str) -> str:
    answer = requests.post(f"{url}/crmapi/rest/v2/authentication/token", json=CRM_LOGIN, timeout=10)
    return str(answer.json()["data"]["token"])


def _synctv_login(url: str, login: dict[str, str]) -> str:
    answer = requests.post(f"{url}/rest/v1/session", data=login, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.cookies["_synctv_session"])


# ---------------------------------------------------------------------- sending


@dataclass
class Prepared:
    """One request, as keyword arguments of ``requests.Session.request``."""

    method: str
    url: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        shown = {k: v for k, v in self.kwargs.items() if k != "timeout"}
        return f"{self.method} {self.url} {shown!r}"[:600]


Check = Callable[[requests.Response], str | None]


class TimeBoundExceeded(Exception):
    """A route ran out of its time bound before sending its count of requests."""


class Sender:
    """Sends requests over keep-alive sessions while the next ones are generated (generation and
    the stack's work overlap on two cores); ``problems`` lists what failed, one line each.

    ``sent`` counts requests handed to the pool, ``answered`` the responses that came back and
    were checked: the gate asserts on both, so it cannot pass having sent fewer."""

    def __init__(self, route: str, check: Check) -> None:
        self.route = route
        self.check = check
        self.sent: list[Prepared] = []
        self.answered = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(SENDERS)
        self._futures: list[Future[str | None]] = []
        self.started = time.monotonic()
        self._deadline = self.started + ROUTE_SECONDS

    def submit(self, request: Prepared, check: Check | None = None) -> None:
        """Send ``request`` and check its answer with ``check`` (the sender's by default)."""
        if time.monotonic() > self._deadline:
            # Raised inside the hypothesis test: generation stops at once and the test fails.
            raise TimeBoundExceeded(self._over_time())
        self.sent.append(request)
        self._futures.append(self._pool.submit(self._send, request, check or self.check))

    def problems(self) -> list[str]:
        self._pool.shutdown(wait=True)
        found = [problem for f in self._futures if (problem := f.result()) is not None]
        if time.monotonic() > self._deadline:
            found.insert(0, self._over_time())
        return found

    def _over_time(self) -> str:
        return (
            f"{self.route}: time bound ({ROUTE_SECONDS:.0f} s) exceeded with {len(self.sent)}"
            f" of {REQUESTS_PER_ROUTE} requests sent"
        )

    def _send(self, request: Prepared, check: Check) -> str | None:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            response = session.request(
                request.method, request.url, timeout=10, allow_redirects=False, **request.kwargs
            )
        except requests.RequestException as failed:
            return f"{type(failed).__name__} for {request.describe()}"
        with self._lock:
            self.answered += 1
        problem = common_problem(response) or check(response)
        if problem is None:
            return None
        answer = f"HTTP {response.status_code} {response.text[:300]!r}"
        return f"{problem} -- {answer} for {request.describe()}"


def common_problem(response: requests.Response) -> str | None:
    if response.status_code >= 500:
        return "5xx"
    text = response.content.decode("utf-8", "replace")
    leaked = [marker for marker in LEAKS if marker in text]
    if leaked:
        return f"leaked {leaked}"
    return None


def assert_clean(sender: Sender) -> None:
    """The gate for one route: at least REQUESTS_PER_ROUTE requests sent and answered within
    the time bound, and no problem."""
    route = sender.route
    problems = sender.problems()
    sent, answered = len(sender.sent), sender.answered
    seconds = time.monotonic() - sender.started
    print(
        f"{route}: {sent} requests, {answered} answered, {seconds:.1f} s, {len(problems)} problems"
    )
    assert sent >= REQUESTS_PER_ROUTE, f"{route}: only {sent} of {REQUESTS_PER_ROUTE} requests sent"
    assert problems == [], f"{len(problems)} problems; the first:\n" + "\n".join(problems[:5])
    # Every request was answered (a transport failure is a problem above), so this holds too.
    assert answered == sent, f"{route}: {answered} of {sent} requests answered"


# ---------------------------------------------------------------------- vendor shapes


def json_body(response: requests.Response) -> Any:
    if not response.headers.get("content-type", "").startswith("application/json"):
        raise ValueError(f"content-type {response.headers.get('content-type')!r}")
    return response.json()


def xml_root(response: requests.Response) -> etree._Element:
    if not response.headers.get("content-type", "").startswith("application/xml"):
        raise ValueError(f"content-type {response.headers.get('content-type')!r}")
    return etree.fromstring(response.content, etree.XMLParser(resolve_entities=False))


def validation_problem(validator: Draft202012Validator, data: Any) -> str | None:
    error = next(iter(validator.iter_errors(data)), None)
    return None if error is None else f"not in the documented shape: {error.message[:200]}"


_MEWS = {
    "error": schema_validator("MewsError"),
    "getAll": schema_validator("MewsGetAllResult"),
    "add": schema_validator("MewsAddResult"),
    "delete": schema_validator("MewsDeleteResult"),
}


def mews_check(operation: str) -> Check:
    def check(response: requests.Response) -> str | None:
        try:
            body = json_body(response)
        except ValueError as wrong:
            return f"not Mews JSON: {wrong}"
        if response.status_code == 200:
            return validation_problem(_MEWS[operation], body)
        if response.status_code not in (400, 401, 403):
            return "unexpected status"
        if response.headers.get("request-id") != body.get("RequestId"):
            return "Request-Id header differs from the body's RequestId"
        return validation_problem(_MEWS["error"], body)

    return check


_CRM_OK = {
    "login": schema_validator("CrmLoginData"),
    "release": Draft202012Validator({"type": "null"}),
    "request": schema_validator("CrmPromoCode"),
}
_CRM_ERROR = schema_validator("CrmError")


def crm_check(operation: str) -> Check:
    def check(response: requests.Response) -> str | None:
        try:
            body = json_body(response)
        except ValueError as wrong:
            return f"not CRM JSON: {wrong}"
        if response.status_code != 200:
            return "CRM.COM refusals are HTTP 200"
        if not isinstance(body, dict) or set(body) != {"data", "status"}:
            return "not the {data, status} envelope"
        status = body["status"]
        if isinstance(status, dict) and status.get("code") == "OK":
            return validation_problem(_CRM_OK[operation], body["data"])
        return validation_problem(_CRM_ERROR, body)

    return check


_MAESTRA_ERROR = schema_validator("MaestraProtocolError")
_MAESTRA_RESULT = schema_validator("MaestraResult")
_MAESTRA_VALIDATION = schema_validator("MaestraValidationError")


def _xml_data(element: etree._Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    return {child.tag: _xml_data(child) for child in children}


def maestra_check(expect_xml: bool | None) -> Check:
    """expect_xml: the format the client asked for (None: either is acceptable)."""

    def check(response: requests.Response) -> str | None:
        is_xml = response.headers.get("content-type", "").startswith("application/xml")
        if expect_xml is not None and is_xml != expect_xml:
            return f"answered in {'XML' if is_xml else 'JSON'}, asked for the other"
        try:
            if is_xml:
                root = xml_root(response)
                if root.tag != "result":
                    return f"XML root <{root.tag}>, not <result>"
                status = root.findtext("status")
                body: Any = {"status": status}
                if status in ("ProtocolError", "InternalServerError"):
                    body = _xml_data(root)
                    body["httpStatusCode"] = int(body.get("httpStatusCode", "x"))
                elif status == "ValidationError":
                    messages = root.find("validationMessages")
                    body["validationMessages"] = [
                        _xml_data(m) for m in (messages if messages is not None else [])
                    ]
            else:
                body = json_body(response)
        except ValueError as wrong:
            return f"not Maestra XML/JSON: {wrong}"
        if response.status_code == 200:
            if body.get("status") == "ValidationError":
                return validation_problem(_MAESTRA_VALIDATION, body)
            if body.get("status") != "Success":
                return "200 without status Success or ValidationError"
            return None if is_xml else validation_problem(_MAESTRA_RESULT, body)
        if response.status_code not in (400, 401, 403):
            return "unexpected status"
        if (
            body.get("status") != "ProtocolError"
            or body.get("httpStatusCode") != response.status_code
        ):
            return "not a ProtocolError naming its HTTP status"
        return validation_problem(_MAESTRA_ERROR, body)

    return check


def synctv_check(operation: str) -> Check:
    def check(response: requests.Response) -> str | None:
        try:
            root = xml_root(response)
        except (ValueError, etree.XMLSyntaxError) as wrong:
            return f"not SyncTV XML: {wrong}"
        if root.tag != "ssap":
            return f"root <{root.tag}>, not <ssap>"
        code_text = root.findtext("response/code")
        try:
            code = int(code_text or "")
        except ValueError:
            return f"<response><code> is {code_text!r}"
        if response.status_code == 200:
            allowed = {1, -45} if operation == "validate" else {1}
            return None if code in allowed else f"HTTP 200 with code {code}"
        # validate past a caller's miss limit (docs/protocols/synctv.md): the fuzzer's random
        # codes from the demo device reach it.
        too_many = operation == "validate" and (response.status_code, code) == (429, -30)
        if response.status_code != 400 and not too_many:
            return "unexpected status"
        if (
            code >= 0
            or root.findtext("version") != "0.5"
            or root.findtext("response/message") is None
        ):
            return "not the <ssap> error envelope with a negative code"
        return None

    return check
