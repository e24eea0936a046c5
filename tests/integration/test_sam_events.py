"""Every events/*.json, replayed through its function's real handler in-process against the demo
data of config/demo.yaml, answers what events/README.md documents (what `sam local invoke`
would get from `make sam-local-db`, without Docker)."""

import importlib
import json
import re
from typing import Any

import pytest

from promo import aws
from promo.bootstrap import services
from promo.event_bus import BusEvent
from promo.queue import QueueSender
from tests.support.deployment import invoke, use_publisher, use_sender
from tests.support.tables import Stores
from tools import sam_local
from tools.admin import apply_config, reconcile_pools
from tools.template import ROOT, load_template

pytestmark = pytest.mark.integration

README = ROOT / "events" / "README.md"
SAM_LOCAL_ENV = ROOT / "config" / "sam-local.json"
ROW = re.compile(r"^\| `(?P<name>\w+)\.json` \| (?P<status>\d{3}|—) \|", re.M)


def documented() -> dict[str, int | None]:
    """Event name -> the HTTP status events/README.md gives it (None: not an HTTP event)."""
    rows = {m["name"]: m["status"] for m in ROW.finditer(README.read_text())}
    return {name: None if status == "—" else int(status) for name, status in rows.items()}


def test_every_event_is_documented_and_every_documented_event_exists() -> None:
    assert sorted(documented()) == sam_local.event_names()
    functions = {path.parent.name for path in (ROOT / "functions").glob("*/app.py")}
    assert set(documented()) == functions  # one event per function, named after it


@pytest.fixture
def demo(deployed: Stores) -> Stores:
    apply_config(ROOT / "config" / "demo.yaml", services())
    return deployed


def replay(name: str) -> dict[str, Any]:
    raw = json.loads((sam_local.EVENTS / f"{name}.json").read_text())
    event = sam_local.fill(raw, services())
    assert "{{" not in json.dumps(event), "a placeholder was left unfilled"
    handler = importlib.import_module(f"functions.{name}.app").handler
    return invoke(handler, event, name)


def status_of(answer: dict[str, Any]) -> str:
    """The vendor's own success marker in the answer body."""
    body = answer["body"]
    if body.startswith("<"):
        match = re.search(r"<code>(-?\d+)</code>|<status>(\w+)</status>", body)
        return next(g for g in match.groups() if g) if match else ""
    document = json.loads(body)
    if isinstance(document.get("status"), dict):
        return str(document["status"]["code"])  # CRM.COM
    return str(document.get("status", "ok"))  # Maestra "Success"; Mews has none


SUCCESS = {"1", "OK", "Success", "ok"}
# The vendor's marker of a refusal the caller has to act on (events/README.md says why).
REFUSED = {"ProtocolError"}


def sam_local_queue() -> QueueSender:
    """The queue ``MaestraAsyncFunction`` sends to under ``sam local``: the ASYNC_QUEUE_URL
    config/sam-local.json gives that function (SAM CLI would otherwise pass the queue's logical
    id, as it resolves ``!Ref`` of a resource it cannot create)."""
    url = json.loads(SAM_LOCAL_ENV.read_text())["MaestraAsyncFunction"]["ASYNC_QUEUE_URL"]
    settings = services().settings.model_copy(update={"async_queue_url": url or None})
    return QueueSender(settings, aws.get_session())


def every_item(stores: Stores) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in stores.client.get_paginator("scan").paginate(TableName=stores.table_name):
        items.extend(page["Items"])
    return items


@pytest.mark.parametrize("name", sorted(documented()))
def test_each_event_answers_its_documented_status_against_the_demo_data(
    demo: Stores, name: str
) -> None:
    expected = documented()[name]
    queued: list[dict[str, Any]] = []
    use_sender(queued.append)  # make run's and AWS's queue
    if name == "maestra_async":
        use_sender(sam_local_queue())  # none: events/README.md, "Maestra async"
    published: list[BusEvent] = []
    use_publisher(published.extend)  # make run's event file, AWS's event bus
    if name == "change_stream":  # this table has no stream: its pools are counted once first
        reconcile_pools(services(), "demo")

    answer = replay(name)

    if expected is None:  # the worker and the stream consumer: answered with failed records
        assert answer == {"batchItemFailures": []}
        if name == "change_stream":
            assert [event.kind for event in published] == ["CodeIssued"]
        return
    assert answer["statusCode"] == expected, answer["body"][:500]
    assert status_of(answer) in (SUCCESS if expected < 400 else REFUSED), answer["body"][:500]


def test_async_under_sam_local_says_it_needs_the_queue_and_does_nothing(demo: Stores) -> None:
    use_sender(sam_local_queue())
    before = every_item(demo)

    answer = replay("maestra_async")

    body = json.loads(answer["body"])
    assert (answer["statusCode"], body["status"]) == (400, "ProtocolError")
    assert body["httpStatusCode"] == 400
    assert "need the stack's SQS queue" in body["errorMessage"]
    assert "nothing was done" in body["errorMessage"]
    assert "/v3/operations/sync" in body["errorMessage"]
    assert "make run" in body["errorMessage"]
    assert every_item(demo) == before


def test_the_async_event_is_queued_once_where_the_stack_has_its_queue(demo: Stores) -> None:
    queued: list[dict[str, Any]] = []
    use_sender(queued.append)  # AWS's queue, and make run's

    answer = replay("maestra_async")

    assert (answer["statusCode"], json.loads(answer["body"])) == (200, {"status": "Success"})
    assert len(queued) == 1


def test_sam_local_gives_the_async_function_an_empty_queue_url() -> None:
    # SAM CLI applies an env-vars file only to the variables the template declares.
    declared = load_template()["Resources"]["MaestraAsyncFunction"]["Properties"]["Environment"]
    overrides = json.loads(SAM_LOCAL_ENV.read_text())["MaestraAsyncFunction"]

    assert "ASYNC_QUEUE_URL" in declared["Variables"]
    assert overrides == {"ASYNC_QUEUE_URL": ""}


def test_the_events_that_change_data_answer_as_documented_when_sent_again(demo: Stores) -> None:
    assert replay("mews_add")["statusCode"] == 200
    assert replay("mews_add")["statusCode"] == 403  # the values exist now
    assert replay("mews_delete")["statusCode"] == 200
    assert replay("mews_delete")["statusCode"] == 200  # already deleted: nothing written


def test_show_names_the_first_demo_code_of_offer_2(demo: Stores) -> None:
    body = replay("synctv_show")["body"]

    assert "<code>SPRING-7KQ3</code>" in body


def test_filled_events_are_written_for_every_event(demo: Stores, tmp_path: Any) -> None:
    written = sam_local.write_filled_events(services(), tmp_path)

    assert sorted(path.stem for path in written) == sam_local.event_names()
    assert not [path for path in written if "{{" in path.read_text()]
