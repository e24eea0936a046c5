"""``make sam-local-db``: DynamoDB Local for ``sam local invoke`` and ``sam local start-api``.

Starts AWS DynamoDB Local on a fixed port (8000; ``SAM_LOCAL_DYNAMODB_PORT`` for another), on
every interface so that the functions' containers reach it through ``host.docker.internal``,
with its data in ``.local/sam-dynamodb``. It creates the table ``sam local`` gives the
functions (``PromoTable``: ``!Ref PromoTable`` resolves to the logical id outside AWS, and
``config/sam-local.json`` says so explicitly), applies ``config/demo.yaml``, and writes
``.local/events/*.json``: ``events/*.json`` with their placeholders filled in from this
database (a live CRM.COM token for ``{{token}}``, a live SyncTV session for ``{{session}}``,
a demo code's id for ``{{mews_code_id}}``). It runs until Ctrl-C, and DynamoDB Local stops
with it. ``FRESH=1`` starts from an empty database. ``events/README.md`` says what each event
answers.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from tools.dynamodb_local import DynamoDBLocal, stop_leftover
from tools.template import ROOT

TABLE_NAME = "PromoTable"
PORT = 8000
DATA_DIR = ROOT / ".local" / "sam-dynamodb"
EVENTS = ROOT / "events"
FILLED = ROOT / ".local" / "events"
DEMO = ROOT / "config" / "demo.yaml"
# The demo code {{mews_code_id}} names (mews_delete deletes it).
MEWS_DELETE_VALUE = "SPRING-M4XR"


def fill(event: dict[str, Any], services: Any) -> dict[str, Any]:
    """``event`` with its placeholders replaced by live values of ``services``' demo data;
    each value is made only when the event needs it (a login costs a scrypt check)."""
    from promo.protocols.crm import auth as crm_auth
    from promo.protocols.synctv import auth as synctv_auth

    text = json.dumps(event)
    if "{{token}}" in text:
        token = crm_auth.login(
            services.credentials, "demo", "MPAdministrator", "demo-crm-password", timedelta(hours=2)
        )
        text = text.replace("{{token}}", token)
    if "{{session}}" in text:
        session, _ = synctv_auth.start_session(
            services.credentials, "admin@demo.example", "demo-synctv-password", timedelta(hours=1)
        )
        text = text.replace("{{session}}", session)
    if "{{mews_code_id}}" in text:
        code = services.codes.get("demo", MEWS_DELETE_VALUE)
        if code is None:
            raise LookupError(f"the demo code {MEWS_DELETE_VALUE} is not in the table")
        text = text.replace("{{mews_code_id}}", str(code.uuid))
    filled: dict[str, Any] = json.loads(text)
    return filled


def event_names() -> list[str]:
    return sorted(path.stem for path in EVENTS.glob("*.json"))


def write_filled_events(services: Any, target: Path = FILLED) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in event_names():
        event = json.loads((EVENTS / f"{name}.json").read_text())
        path = target / f"{name}.json"
        path.write_text(json.dumps(fill(event, services), indent=2) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("SAM_LOCAL_DYNAMODB_PORT", PORT))
    )
    parser.add_argument("--fresh", action="store_true", default=os.environ.get("FRESH") == "1")
    args = parser.parse_args(argv)

    stop_leftover(DATA_DIR)  # one a killed run left behind must not hold the files
    if args.fresh and DATA_DIR.exists():
        shutil.rmtree(DATA_DIR)
    database = DynamoDBLocal(port=args.port, data_dir=DATA_DIR)
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        database.start()
        os.environ.update(
            {
                "TABLE_NAME": TABLE_NAME,
                "DYNAMODB_ENDPOINT_URL": database.endpoint,
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
            }
        )
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(variable, "local")
        os.environ.setdefault("AWS_REGION", "us-east-1")
        from promo.bootstrap import services
        from tools.admin import apply_config, ensure_table

        ensure_table(services())
        report = apply_config(DEMO, services())
        written = write_filled_events(services())
        print(
            f"DynamoDB Local answers on port {args.port} (table {TABLE_NAME}); applied"
            f" config/demo.yaml: {report.seeded_codes} demo code(s) added.\n"
            f"Filled {len(written)} events in {FILLED.relative_to(ROOT)}/ (tokens last 1-2 h)."
            "\nIn another terminal:\n"
            "  sam build\n"
            "  sam local invoke MewsGetAllFunction -e .local/events/mews_get_all.json\n"
            "  sam local start-api\n"
            "Ctrl-C stops DynamoDB Local.",
            flush=True,
        )
        stopping.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        with contextlib.suppress(OSError):
            print("Stopping.", flush=True)
        database.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
