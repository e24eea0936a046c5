"""promo-admin: manage tenants, pools, codes and credentials of a promo-codes table.

Works against the local stack (default: the table and DynamoDB Local of `make run`, found from
.local/) and against a deployed stack (--stack NAME reads the table from the stack's outputs,
or --table NAME with the default AWS credentials).

  promo-admin apply CONFIG.yaml
  promo-admin pools [--tenant T]                 counts the change stream keeps (a read a pool)
  promo-admin reconcile [--tenant T] [--pool P]  recount pools from the table, repair drift
  promo-admin events [--follow] [--json]         the events of `make run` (.local/events.jsonl)
  promo-admin import POOL FILE.csv [--tenant T] [-q]  columns: value[,valid_from,valid_until]
  promo-admin export POOL [--tenant T] [-o FILE.csv] [-q]
  promo-admin credential create mews --name N --tenant T [--tenant T2 ...] [--replace]
  promo-admin credential create maestra-key --endpoint ID [--replace]
  promo-admin credential rotate mews --name N | maestra-key --endpoint ID
  promo-admin credential revoke mews --name N
  promo-admin migrate      bring the table to this version's schema (docs/operations.md)
"""

import argparse
import contextlib
import csv
import getpass
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from promo.domain import clock
from promo.domain.errors import DuplicateValues, InvalidRequest, PromoError
from promo.domain.inventory import Bucket, PoolCounts
from promo.domain.models import Code, Issuance, NewCode, Pool, Window
from promo.domain.values import fold_value, normalize_value
from promo.secret_hashing import new_token, token_digest
from promo.services import Services, inventory
from promo.services.tenants import SwitchWait
from tools import config as config_file
from tools import migrations
from tools.local_stream import EVENTS_FILE
from tools.template import ROOT, create_table_request

BATCH = 1000  # codes per atomic add: the most one Mews add takes


def _no_progress(done: int, total: int | None) -> None:
    """No progress display."""


# ---------------------------------------------------------------------- table and config


def ensure_table(svc: Services, stream: bool = True) -> bool:
    """Create the services' table from template.yaml's definition unless it exists; True if
    created. ``stream=False``: without the change stream (``make bench``)."""
    client, table_name = svc.codes.table.client, svc.settings.table_name
    wanted = create_table_request(table_name)
    if not stream:
        wanted.pop("StreamSpecification", None)
    if table_name in client.list_tables().get("TableNames", []):
        existing = client.describe_table(TableName=table_name)["Table"]
        if _index_layout(existing.get("GlobalSecondaryIndexes", [])) != _index_layout(
            wanted.get("GlobalSecondaryIndexes", [])
        ):
            raise SystemExit(
                f"Table {table_name} has the indexes of an older template.yaml. Start from an"
                " empty database (make run FRESH=1); a deployed stack is upgraded as"
                " docs/operations.md says."
            )
        migrations.require_current(svc.codes.table)
        return False
    # A retried create whose first attempt landed is refused as in use; so is a lost race.
    with contextlib.suppress(client.exceptions.ResourceInUseException):
        client.create_table(**wanted)
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1})
    migrations.stamp(svc.codes.table)
    return True


def ensure_stream(svc: Services) -> bool:
    """Turn on the table's change stream as template.yaml defines it, if it is off (a table
    created before it had one); True if turned on now: codes written before are then in no
    count until ``reconcile``."""
    client, table_name = svc.codes.table.client, svc.settings.table_name
    wanted = create_table_request(table_name).get("StreamSpecification")
    existing = client.describe_table(TableName=table_name)["Table"].get("StreamSpecification")
    if wanted is None or (existing is not None and existing.get("StreamEnabled")):
        return False
    client.update_table(TableName=table_name, StreamSpecification=wanted)
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1})
    return True


def _index_layout(indexes: list[Any]) -> dict[str, Any]:
    """What of each index the code relies on: its keys and the attributes it projects."""
    return {
        index["IndexName"]: (
            sorted((key["AttributeName"], key["KeyType"]) for key in index["KeySchema"]),
            index["Projection"]["ProjectionType"],
            sorted(index["Projection"].get("NonKeyAttributes", [])),
        )
        for index in indexes
    }


def apply_config(path: Path, svc: Services) -> config_file.ApplyReport:
    loaded = config_file.load(path)

    def seed(pool: Pool, values: list[str]) -> int:
        if next(iter(svc.codes.list(pool.tenant_id, [pool.pool_id])), None) is not None:
            return 0  # demo codes go into empty pools only, so re-applying adds nothing
        new = [NewCode(pool.pool_id, value) for value in values]
        return len(svc.codes.add(pool.tenant_id, {pool.pool_id: pool}, new, "config:seed"))

    settle = SwitchWait.for_settings(svc.settings)
    return config_file.apply(loaded, svc.catalog, svc.codes, svc.credentials, settle, seed)


# ---------------------------------------------------------------------- pools


def pool_summary(svc: Services, tenant_id: str) -> list[tuple[Pool, Counter[str]]]:
    summary = []
    for pool in svc.catalog.list_pools(tenant_id):
        states: Counter[str] = Counter()
        for _, code in svc.codes.list(tenant_id, [pool.pool_id]):
            states["DELETED" if code.is_deleted else code.state.value] += 1
        summary.append((pool, states))
    return summary


def pool_counts(svc: Services, tenant_id: str) -> list[tuple[Pool, PoolCounts | None]]:
    """Each pool of the tenant with the counts the change stream keeps: one read a pool."""
    counts = inventory.counts_of(svc)
    return [
        (pool, counts.get(tenant_id, pool.pool_id)) for pool in svc.catalog.list_pools(tenant_id)
    ]


def reconcile_pools(
    svc: Services, tenant_id: str | None = None, pool_id: str | None = None
) -> list[inventory.Repair]:
    """Recount the chosen pools (all of every tenant by default) and repair their counts."""
    tenants = [tenant_id] if tenant_id else sorted(_tenants(svc))
    repairs = []
    for tenant in tenants:
        pools = [_pool(svc, tenant, pool_id)] if pool_id else svc.catalog.list_pools(tenant)
        for pool in pools:
            repairs.append(inventory.reconcile(svc, tenant, pool.pool_id))
    return repairs


# ---------------------------------------------------------------------- events


def read_events(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The events appended to ``path`` from byte ``offset`` on, and the offset after them
    (a line still being written is left for the next read)."""
    if not path.exists():
        return [], offset
    with path.open("rb") as stream:
        stream.seek(offset)
        data = stream.read()
    complete = data[: data.rfind(b"\n") + 1]
    events = [json.loads(line) for line in complete.decode().splitlines() if line.strip()]
    return events, offset + len(complete)


def describe_event(event: dict[str, Any]) -> str:
    """One line: when, what, where, which code(s), by whom."""
    detail = event.get("detail", {})
    kind = event.get("detail-type", detail.get("kind", "?"))
    where = f"{detail.get('tenant', '?')}/{detail.get('pool', '?')}"
    if "code" in detail:
        what = detail["code"]["value"]
    elif "codes" in detail:
        values = [code["value"] for code in detail["codes"]]
        what = ", ".join(values[:3]) + (
            f" … ({detail.get('count', len(values))})" if len(values) > 3 else ""
        )
    else:
        watermark = detail.get("low_watermark")
        what = f"available {detail.get('available')}" + (
            f" (low_watermark {watermark})" if watermark is not None else ""
        )
    when, actor = detail.get("at", event.get("time", "")), detail.get("actor", "?")
    return f"{when}  {kind:20} {where:20} {what}  by {actor}"


# ---------------------------------------------------------------------- import / export


COLUMNS = ("value", "valid_from", "valid_until")


@dataclass
class ImportReport:
    added: int = 0
    present: int = 0  # already in the pool with the same validity: an earlier run's work
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # line, value, reason
    # True when the file failed validation: then nothing was written.
    invalid: bool = False


def _rows(stream: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    """The file's rows by line number. A first row naming the columns is a header (its first
    cell ``value``, or only known column names); without one the columns are value,
    valid_from, valid_until."""
    reader = csv.reader(stream)
    columns: tuple[str, ...] | None = None
    try:
        for cells in reader:
            if not cells:
                continue  # blank lines
            if columns is None:
                named = [cell.strip().lstrip("\ufeff") for cell in cells]
                if named[0] == "value" or ("value" in named and set(named) <= set(COLUMNS)):
                    unknown = set(named) - set(COLUMNS)
                    if unknown:
                        raise InvalidRequest(
                            f"Unknown CSV columns: {', '.join(sorted(unknown))}", "header"
                        )
                    columns = tuple(named)
                    continue
                columns = COLUMNS
                cells[0] = cells[0].lstrip("\ufeff")
            if len(cells) > len(columns):
                problem = "more than the columns " + ", ".join(columns)
                yield reader.line_num, {"value": cells[0], "": problem}
                continue
            yield reader.line_num, dict(zip(columns, cells, strict=False))
    except csv.Error as broken:
        raise InvalidRequest(f"line {reader.line_num}: not CSV: {broken}", "file") from None
    except UnicodeDecodeError as broken:
        raise InvalidRequest(f"line {reader.line_num + 1}: not UTF-8: {broken}", "file") from None


def _parse_row(row: dict[str, str]) -> tuple[str, Window]:
    if "" in row:
        raise InvalidRequest(f"has {row['']}")
    # The one value policy: refused, never repaired (a value with a space at an end is not
    # imported as another value), and kept in its canonical (NFC) form.
    value = normalize_value(row.get("value") or "")
    moments = []
    for name in ("valid_from", "valid_until"):
        text = (row.get(name) or "").strip()
        moments.append(clock.parse_iso8601(text, name) if text else None)
    window = Window(moments[0], moments[1])
    if window.start and window.end and window.start > window.end:
        raise InvalidRequest("valid_from is after valid_until")
    return value, window


def _conflict(pool: Pool, new: NewCode, found: Code | None) -> str | None:
    """Why an existing value cannot stand for this row; None when it is this row's code
    (same pool, same validity: an earlier, interrupted run of the import wrote it)."""
    if found is None:
        return "being added by another add that has not finished (retry later)"
    if found.value != new.value:
        return f"matches {found.value!r}, which the tenant holds, when case is ignored"
    if found.pool_id != pool.pool_id:
        return f"already exists in the tenant, in pool {found.pool_id}"
    if found.is_deleted:
        return "was deleted from this pool"
    wanted = new.validity
    if wanted.end is None and pool.default_validity_days is not None:
        # The store gives such a code the pool's default validity from its start (or creation).
        start = wanted.start or found.audit.created_at
        wanted = Window(wanted.start, start + timedelta(days=pool.default_validity_days))
    if found.validity != wanted:
        return "already in this pool with another validity"
    return None


def import_codes(
    svc: Services,
    pool: Pool,
    stream: TextIO,
    progress: Callable[[int, int], None] = _no_progress,
) -> ImportReport:
    """Bring the pool to the file's end state: every row's code in the pool.

    The whole file is checked first (values, times, repeats, values the tenant holds in
    another pool or with another validity): any problem is reported by line and nothing is
    written. Then the new codes go in atomic batches of 1,000. Codes already in the pool with
    the same validity count as present, so an interrupted import run again finishes the job.
    ``progress(done, total)`` follows the rows written or found present.
    """
    report = ImportReport()
    matched = None if svc.catalog.case_sensitive(pool.tenant_id) else fold_value
    rows = _checked_rows(pool, stream, report, matched)
    fresh = _not_yet_present(svc, pool, rows, report)
    if report.rejected:
        report.invalid = True
        report.present = 0
        report.rejected.sort()
        return report
    progress(report.present, len(rows))
    for start in range(0, len(fresh), BATCH):
        _add_batch(svc, pool, fresh[start : start + BATCH], report)
        progress(report.added + report.present, len(rows))
    return report


def _checked_rows(
    pool: Pool, stream: TextIO, report: ImportReport, matched: Callable[[str], str] | None
) -> list[tuple[int, NewCode]]:
    """The file's rows as new codes, each by its line; invalid and repeated rows rejected
    (repeated as the tenant matches values: ``matched`` is its fold, if it ignores case)."""
    seen: dict[str, int] = {}
    rows: list[tuple[int, NewCode]] = []
    for line, row in _rows(stream):
        try:
            value, window = _parse_row(row)
            code = NewCode(pool.pool_id, value, window)
        except PromoError as invalid:
            report.rejected.append((line, row.get("value") or "", invalid.message))
            continue
        key = value if matched is None else matched(code.value)
        if key in seen:
            report.rejected.append((line, value, f"repeats line {seen[key]}"))
            continue
        seen[key] = line
        rows.append((line, code))
    return rows


def _not_yet_present(
    svc: Services, pool: Pool, rows: list[tuple[int, NewCode]], report: ImportReport
) -> list[tuple[int, NewCode]]:
    """The rows whose values the tenant does not hold; the others count as present, or are
    rejected when the value stands for another code."""
    fresh: list[tuple[int, NewCode]] = []
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        existing = svc.codes.existing_values(pool.tenant_id, [code.value for _, code in batch])
        for line, code in batch:
            if code.value not in existing:
                fresh.append((line, code))
            else:
                _settle_existing(svc, pool, line, code, report)
    return fresh


def _settle_existing(
    svc: Services, pool: Pool, line: int, code: NewCode, report: ImportReport
) -> None:
    if reason := _conflict(pool, code, svc.codes.get(pool.tenant_id, code.value)):
        report.rejected.append((line, code.value, reason))
    else:
        report.present += 1


def _add_batch(
    svc: Services, pool: Pool, batch: list[tuple[int, NewCode]], report: ImportReport
) -> None:
    """Add a batch atomically; values someone else added since the check are settled one by
    one and the rest of the batch is added again."""
    while batch:
        try:
            svc.codes.add(
                pool.tenant_id, {pool.pool_id: pool}, [c for _, c in batch], "admin:import"
            )
        except DuplicateValues as raced:
            taken = set(raced.values)
            for line, code in batch:
                if code.value in taken:
                    _settle_existing(svc, pool, line, code, report)
            batch = [(line, code) for line, code in batch if code.value not in taken]
            continue
        report.added += len(batch)
        return


EXPORT_COLUMNS = [
    "value",
    "id",
    "number",
    "state",
    "activity",
    "valid_from",
    "valid_until",
    "created_at",
    "updated_at",
    "issued_at",
    "issued_to",
    "used_at",
    "used_by",
]


def export_rows(codes: Iterable[Code]) -> Iterator[list[str]]:
    def stamp(moment: datetime | None) -> str:
        return "" if moment is None else clock.format_iso8601(moment)

    for code in codes:
        issued_to = f"{code.issued_to.kind}:{code.issued_to.identifier}" if code.issued_to else ""
        yield [
            code.value,
            str(code.uuid),
            str(code.number),
            code.state.value,
            code.activity.value,
            stamp(code.validity.start),
            stamp(code.validity.end),
            stamp(code.audit.created_at),
            stamp(code.audit.updated_at),
            stamp(code.issued_at),
            issued_to,
            stamp(code.used_at),
            code.used_by or "",
        ]


# ---------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class NewMewsToken:
    name: str
    client_token: str
    access_token: str


def create_mews_token(
    svc: Services, name: str, tenant_ids: list[str], replace: bool = False
) -> NewMewsToken:
    """A new Mews token pair named ``name``. A name in use is refused unless ``replace``:
    then the new pair takes its place and the old pairs are revoked."""
    from promo.domain.credentials import MewsAccessToken

    old = svc.credentials.mews_tokens_named(name)
    if old and not replace:
        raise InvalidRequest(
            f"A Mews token named {name!r} exists: rotate it, or create with --replace."
        )

    enterprises = {}
    for tenant_id in tenant_ids:
        tenant = svc.catalog.get_tenant(tenant_id)
        if tenant is None or tenant.mews_enterprise_id is None:
            raise InvalidRequest(f"Tenant {tenant_id!r} does not exist or has no Mews enterprise.")
        enterprises[str(tenant.mews_enterprise_id)] = tenant_id
    created = NewMewsToken(name, new_token(), new_token())
    svc.credentials.put_mews_token(
        MewsAccessToken(
            token_digest(created.access_token),
            token_digest(created.client_token),
            enterprises,
            len(enterprises) > 1,
            name,
        )
    )
    for token in old:
        svc.credentials.revoke_mews_token(token.token_digest)
    return created


def rotate_mews_token(svc: Services, name: str) -> NewMewsToken:
    """New tokens for the same enterprises; the old ones stop working within the cache TTL."""
    old = svc.credentials.mews_tokens_named(name)
    if not old:
        raise InvalidRequest(f"No Mews token named {name!r}.")
    return create_mews_token(svc, name, sorted(set(old[0].enterprises.values())), replace=True)


def revoke_mews_token(svc: Services, name: str) -> int:
    old = svc.credentials.mews_tokens_named(name)
    for token in old:
        svc.credentials.revoke_mews_token(token.token_digest)
    return len(old)


def set_maestra_key(svc: Services, endpoint_id: str, replace: bool = True) -> str:
    """A new secret key for the endpoint; one it already has is refused unless ``replace``."""
    endpoint = svc.credentials.maestra_endpoint(endpoint_id)
    if endpoint is None:
        raise InvalidRequest(f"No Maestra endpoint {endpoint_id!r}; add it to the configuration.")
    if endpoint.secret_key_digest is not None and not replace:
        raise InvalidRequest(
            f"Maestra endpoint {endpoint_id!r} has a key: rotate it, or create with --replace."
        )
    key = new_token()
    svc.credentials.put_maestra_endpoint(endpoint._replace(secret_key_digest=token_digest(key)))
    return key


# ---------------------------------------------------------------------- command line


def _connect(args: argparse.Namespace, check_schema: bool = True) -> Services:
    """The services over the chosen table, built from settings of their own; unless asked
    not to, refused if the table's schema is older than this code's."""
    from promo.bootstrap import bootstrap, install
    from promo.settings import Settings

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    if args.stack:
        import boto3

        stack = boto3.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        settings = Settings(table_name=outputs["TableName"], aws_region=region)
    else:
        endpoint = args.endpoint_url or _local_endpoint()
        if endpoint:
            # DynamoDB Local accepts any credentials; botocore still wants some.
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                os.environ.setdefault(name, "local")
        settings = Settings(
            table_name=args.table, dynamodb_endpoint_url=endpoint, aws_region=region
        )
    svc = bootstrap(settings)
    if check_schema:
        migrations.require_current(svc.codes.table)
    install(svc)  # handlers run in-process (import, export) use the same services
    return svc


def _local_endpoint() -> str | None:
    marker = ROOT / ".local" / "dynamodb.endpoint"
    return marker.read_text().strip() if marker.exists() else None


class Progress:
    """How far a long import or export is, on stderr. On a terminal one line rewritten in
    place (at most ten times a second); elsewhere (a log, a CI job) a line at every tenth of
    the total, or every 10,000 codes when the total is unknown. Nothing when quiet."""

    EVERY = 10_000

    def __init__(self, verb: str, quiet: bool = False, out: TextIO | None = None) -> None:
        self.verb = verb
        self.out = sys.stderr if out is None else out
        self.quiet = quiet
        self.tty = self.out.isatty()
        self._shown: tuple[int, int | None] | None = None
        self._step = -1
        self._at = 0.0

    def _text(self, done: int, total: int | None) -> str:
        if total is None:
            return f"  {self.verb} {done:,} codes"
        share = 100 * done // total if total else 100
        return f"  {self.verb} {done:,} of {total:,} codes ({share}%)"

    def __call__(self, done: int, total: int | None = None) -> None:
        if self.quiet:
            return
        if self.tty:
            now = time.monotonic()
            if now - self._at >= 0.1 or done == total:
                self._at = now
                print(f"\r{self._text(done, total)}", end="", file=self.out, flush=True)
                self._shown = (done, total)
            return
        if total is None:
            step = done // self.EVERY
            if step == 0:
                return
        else:
            step = 10 * done // total if total else 10
        if step > self._step:
            self._step = step
            print(self._text(done, total), file=self.out, flush=True)
            self._shown = (done, total)

    def close(self, done: int, total: int | None = None) -> None:
        """Show the final count (once) and end the line."""
        if self.quiet:
            return
        if self._shown != (done, total):
            if self.tty:
                print(f"\r{self._text(done, total)}", end="", file=self.out)
            else:
                print(self._text(done, total), file=self.out)
        if self.tty and (self._shown is not None or done):
            print(file=self.out, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (config_file.ConfigError, migrations.SchemaOutdated) as exc:
        print(exc, file=sys.stderr)
        return 2
    except PromoError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promo-admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME", "promo-codes-local"))
    parser.add_argument("--endpoint-url", default=os.environ.get("DYNAMODB_ENDPOINT_URL"))
    parser.add_argument("--stack", help="a deployed stack: its TableName output is used")
    commands = parser.add_subparsers(dest="command", required=True)
    apply_cmd = commands.add_parser("apply", help="apply a configuration file")
    apply_cmd.add_argument("config", type=Path)
    pools_cmd = commands.add_parser("pools", help="pools with their codes by state")
    pools_cmd.add_argument("--tenant")
    reconcile_cmd = commands.add_parser(
        "reconcile", help="recount pools from the table and repair their counts"
    )
    reconcile_cmd.add_argument("--tenant")
    reconcile_cmd.add_argument("--pool", help="one pool (with --tenant, default demo)")
    events_cmd = commands.add_parser("events", help="the domain events of the local stack")
    events_cmd.add_argument("--follow", "-f", action="store_true", help="wait for more")
    events_cmd.add_argument("--json", action="store_true", help="each event as received")
    events_cmd.add_argument("--file", type=Path, default=ROOT / ".local" / EVENTS_FILE)
    import_cmd = commands.add_parser("import", help="add codes from a CSV file")
    import_cmd.add_argument("pool")
    import_cmd.add_argument("file", type=Path)
    import_cmd.add_argument("--tenant", default="demo")
    import_cmd.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    export_cmd = commands.add_parser("export", help="write a pool's codes as CSV")
    export_cmd.add_argument("pool")
    export_cmd.add_argument("--tenant", default="demo")
    export_cmd.add_argument("-o", "--output", type=Path)
    export_cmd.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    credential = commands.add_parser("credential", help="create, rotate or revoke credentials")
    credential.add_argument("action", choices=["create", "rotate", "revoke"])
    credential.add_argument("kind", choices=["mews", "maestra-key"])
    credential.add_argument("--name")
    credential.add_argument("--tenant", action="append", default=[])
    credential.add_argument("--endpoint")
    credential.add_argument(
        "--replace", action="store_true", help="create: replace a credential of that name"
    )
    redemption = commands.add_parser("redemption", help="give a redemption of a code back")
    redemption.add_argument("action", choices=["rollback"])
    redemption.add_argument("value", help="the code's value")
    redemption.add_argument("--tenant", default="demo")
    redemption.add_argument("--reason", required=True, help="recorded with the rollback")
    commands.add_parser("migrate", help="run the table's pending schema migrations, resumably")
    return parser


def _apply(args: argparse.Namespace) -> int:
    config_file.load(args.config)  # validated before connecting: a bad file touches nothing
    result = apply_config(args.config, _connect(args))
    print(
        f"applied: {result.tenants} tenant(s), {result.pools} pool(s), "
        f"{result.seeded_codes} seed code(s), {result.credentials} credential(s)"
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    migrations.migrate(_connect(args, check_schema=False))
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "apply": _apply,
    "pools": lambda args: _print_pools(_connect(args), args.tenant),
    "reconcile": lambda args: _reconcile(_connect(args), args),
    "events": lambda args: _events(args),
    "import": lambda args: _import(_connect(args), args),
    "export": lambda args: _export(_connect(args), args),
    "redemption": lambda args: _roll_back(_connect(args), args),
    "migrate": _migrate,
    "credential": lambda args: _credential(_connect(args), args),
}


def _roll_back(svc: Services, args: argparse.Namespace) -> int:
    issuance = Issuance(clock.now(), f"admin:{getpass.getuser()}")
    code = svc.codes.roll_back_redemption(args.tenant, args.value, issuance, args.reason)
    left = "" if code.uses_left is None else f", {code.uses_left} use(s) left"
    print(f"rolled back one redemption of {code.value}: now {code.state}{left}")
    return 0


_COLUMNS = (
    ("available", Bucket.AVAILABLE, 9),
    ("issued", Bucket.ISSUED, 7),
    ("used", Bucket.USED, 6),
    ("blocked", Bucket.BLOCKED, 7),
    ("deleted", Bucket.DELETED, 7),
    ("staged", Bucket.STAGED, 6),
)


def _print_pools(svc: Services, tenant: str | None) -> int:
    """The counts the change stream keeps (``staged``: held by bulk adds not committed)."""
    tenants = [tenant] if tenant else sorted(_tenants(svc))
    header = " ".join(f"{name:>{width}}" for name, _, width in _COLUMNS)
    print(f"{'tenant':12} {'pool':16} {header} {'low at':>6} {'level':>5}")
    for tenant_id in tenants:
        for pool, counts in pool_counts(svc, tenant_id):
            cells = " ".join(
                f"{counts.of(which) if counts else 0:{width}}" for _, which, width in _COLUMNS
            )
            low = "" if pool.low_watermark is None else str(pool.low_watermark)
            level = counts.alert.value if counts else "-"
            print(f"{tenant_id:12} {pool.pool_id:16} {cells} {low:>6} {level:>5}")
    return 0


def _reconcile(svc: Services, args: argparse.Namespace) -> int:
    tenant = args.tenant or ("demo" if args.pool else None)
    repaired = 0
    for repair in reconcile_pools(svc, tenant, args.pool):
        where = f"{repair.tenant_id}/{repair.pool_id}"
        if not repair.changed:
            print(f"{where}: counts match the table ({sum(repair.after.values())} codes)")
            continue
        repaired += 1
        changes = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in repair.changed.items())
        print(f"{where}: repaired {changes}")
    print(f"{repaired} pool(s) repaired")
    return 0


def _events(args: argparse.Namespace) -> int:
    def show(events: list[dict[str, Any]]) -> None:
        for event in events:
            print(json.dumps(event, ensure_ascii=False) if args.json else describe_event(event))

    events, offset = read_events(args.file)
    if not events and not args.follow:
        print(f"no events in {args.file} (make run writes them there)", file=sys.stderr)
    show(events)
    try:
        while args.follow:
            sys.stdout.flush()
            time.sleep(0.5)
            events, offset = read_events(args.file, offset)
            show(events)
    except KeyboardInterrupt:
        pass
    return 0


def _tenants(svc: Services) -> set[str]:
    found = svc.catalog.list_tenants()
    return {tenant.tenant_id for tenant in found}


def _pool(svc: Services, tenant: str, pool_id: str) -> Pool:
    pool = svc.catalog.get_pool(tenant, pool_id)
    if pool is None:
        raise InvalidRequest(f"No pool {pool_id!r} in tenant {tenant!r}.")
    return pool


def _import(svc: Services, args: argparse.Namespace) -> int:
    pool = _pool(svc, args.tenant, args.pool)
    progress = Progress("imported", quiet=args.quiet)
    # utf-8-sig: a spreadsheet's byte-order mark is not part of the first value.
    with args.file.open(newline="", encoding="utf-8-sig") as stream:
        report = import_codes(svc, pool, stream, progress)
    if not report.invalid:
        progress.close(report.added + report.present, report.added + report.present)
    for line, value, reason in report.rejected:
        print(f"line {line}: {value!r}: {reason}", file=sys.stderr)
    if report.invalid:
        print(f"not imported: {len(report.rejected)} row(s) to fix; nothing was written")
        return 1
    present = f"; {report.present} already present" if report.present else ""
    print(f"added {report.added} code(s); rejected {len(report.rejected)} row(s){present}")
    return 1 if report.rejected else 0


def _export(svc: Services, args: argparse.Namespace) -> int:
    pool = _pool(svc, args.tenant, args.pool)
    progress = Progress("exported", quiet=args.quiet)
    target: TextIO = args.output.open("w", newline="") if args.output else sys.stdout
    exported = 0
    try:
        writer = csv.writer(target)
        writer.writerow(EXPORT_COLUMNS)
        codes = (code for _, code in svc.codes.list(pool.tenant_id, [pool.pool_id]))
        for row in export_rows(codes):
            writer.writerow(row)
            exported += 1
            if exported % BATCH == 0:
                progress(exported)
    finally:
        if args.output:
            target.close()
    progress.close(exported)
    return 0


def _credential(svc: Services, args: argparse.Namespace) -> int:
    if args.kind == "maestra-key":
        if not args.endpoint or args.action == "revoke":
            raise InvalidRequest("maestra-key needs --endpoint (and create or rotate)")
        replace = args.action == "rotate" or args.replace
        key = set_maestra_key(svc, args.endpoint, replace=replace)
        print(f"secret key for {args.endpoint} (shown once): {key}")
        return 0
    if not args.name:
        raise InvalidRequest("mews credentials need --name")
    if args.action == "revoke":
        print(f"revoked {revoke_mews_token(svc, args.name)} token(s) named {args.name}")
        return 0
    if args.action == "create":
        if not args.tenant:
            raise InvalidRequest("mews create needs --tenant (repeat it for a portfolio token)")
        token = create_mews_token(svc, args.name, args.tenant, replace=args.replace)
    else:
        token = rotate_mews_token(svc, args.name)
    print(
        f"Mews token {token.name} (shown once; only hashes are stored)\n"
        f"  ClientToken: {token.client_token}\n  AccessToken: {token.access_token}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
