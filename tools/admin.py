"""promo-admin: manage tenants, pools, codes and credentials of a promo-codes table.

Works against the local stack (default: the table and DynamoDB Local of `make run`, found from
.local/) and against a deployed stack (--stack NAME reads the table from the stack's outputs,
or --table NAME with the default AWS credentials).

  promo-admin apply CONFIG.yaml
  promo-admin pools [--tenant T]
  promo-admin import POOL FILE.csv [--tenant T]      columns: value[,valid_from,valid_until]
  promo-admin export POOL [--tenant T] [-o FILE.csv]
  promo-admin credential create mews --name N --tenant T [--tenant T2 ...]
  promo-admin credential create maestra-key --endpoint ID
  promo-admin credential rotate mews --name N | maestra-key --endpoint ID
  promo-admin credential revoke mews --name N
"""

import argparse
import contextlib
import csv
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TextIO

from promo.domain import clock
from promo.domain.errors import DuplicateValues, InvalidRequest, PromoError
from promo.domain.models import Code, NewCode, Pool, Window
from promo.secret_hashing import new_token, token_digest
from promo.services import Services
from tools import config as config_file
from tools.template import ROOT, create_table_request

BATCH = 1000  # codes per atomic add: the most one Mews add takes


# ---------------------------------------------------------------------- table and config


def ensure_table(svc: Services) -> bool:
    """Create the services' table from template.yaml's definition unless it exists; True if
    created."""
    client, table_name = svc.codes.table.client, svc.settings.table_name
    wanted = create_table_request(table_name)
    if table_name in client.list_tables().get("TableNames", []):
        existing = client.describe_table(TableName=table_name)["Table"]
        if _index_layout(existing.get("GlobalSecondaryIndexes", [])) != _index_layout(
            wanted.get("GlobalSecondaryIndexes", [])
        ):
            raise SystemExit(
                f"Table {table_name} has the indexes of an older template.yaml. Start from an"
                " empty database (make run FRESH=1) or migrate the table."
            )
        return False
    # A retried create whose first attempt landed is refused as in use; so is a lost race.
    with contextlib.suppress(client.exceptions.ResourceInUseException):
        client.create_table(**wanted)
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

    return config_file.apply(loaded, svc.catalog, svc.credentials, seed)


# ---------------------------------------------------------------------- pools


def pool_summary(svc: Services, tenant_id: str) -> list[tuple[Pool, Counter[str]]]:
    summary = []
    for pool in svc.catalog.list_pools(tenant_id):
        states: Counter[str] = Counter()
        for _, code in svc.codes.list(tenant_id, [pool.pool_id]):
            states["DELETED" if code.is_deleted else code.state.value] += 1
        summary.append((pool, states))
    return summary


# ---------------------------------------------------------------------- import / export


@dataclass
class ImportReport:
    added: int = 0
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # line, value, reason


def _rows(stream: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(stream)
    if reader.fieldnames is None or "value" not in reader.fieldnames:
        raise InvalidRequest("The CSV needs a header row with a 'value' column.", "header")
    unknown = set(reader.fieldnames) - {"value", "valid_from", "valid_until"}
    if unknown:
        raise InvalidRequest(f"Unknown CSV columns: {', '.join(sorted(unknown))}", "header")
    for row in reader:
        yield reader.line_num, row


def _parse_row(row: dict[str, str]) -> tuple[str, Window]:
    value = (row.get("value") or "").strip()
    if not 1 <= len(value) <= 128:
        raise InvalidRequest("value must be 1 to 128 characters")
    moments = []
    for name in ("valid_from", "valid_until"):
        text = (row.get(name) or "").strip()
        moments.append(clock.parse_iso8601(text, name) if text else None)
    window = Window(moments[0], moments[1])
    if window.start and window.end and window.start > window.end:
        raise InvalidRequest("valid_from is after valid_until")
    return value, window


def import_codes(
    svc: Services, pool: Pool, stream: TextIO, progress: Callable[[int], None] = lambda _: None
) -> ImportReport:
    """Add the file's codes in atomic batches of 1,000; duplicates (in the file or already in
    the tenant) and invalid rows are reported with their line numbers and never written."""
    report = ImportReport()
    seen: dict[str, int] = {}
    batch: list[tuple[int, NewCode]] = []

    def flush() -> None:
        existing = svc.codes.existing_values(pool.tenant_id, [c.value for _, c in batch])
        fresh = [(line, code) for line, code in batch if code.value not in existing]
        for line, code in batch:
            if code.value in existing:
                report.rejected.append((line, code.value, "already exists in the tenant"))
        while fresh:
            try:
                svc.codes.add(
                    pool.tenant_id, {pool.pool_id: pool}, [c for _, c in fresh], "admin:import"
                )
            except DuplicateValues as raced:  # added by someone else since the check
                taken = set(raced.values)
                report.rejected += [
                    (ln, c.value, "already exists in the tenant")
                    for ln, c in fresh
                    if c.value in taken
                ]
                fresh = [(ln, c) for ln, c in fresh if c.value not in taken]
                continue
            report.added += len(fresh)
            break
        progress(report.added)
        batch.clear()

    for line, row in _rows(stream):
        try:
            value, window = _parse_row(row)
            code = NewCode(pool.pool_id, value, window)
        except PromoError as invalid:
            report.rejected.append((line, row.get("value") or "", invalid.message))
            continue
        if value in seen:
            report.rejected.append((line, value, f"repeats line {seen[value]}"))
            continue
        seen[value] = line
        batch.append((line, code))
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    return report


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


def create_mews_token(svc: Services, name: str, tenant_ids: list[str]) -> NewMewsToken:
    from promo.domain.credentials import MewsAccessToken

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
    return created


def rotate_mews_token(svc: Services, name: str) -> NewMewsToken:
    """New tokens for the same enterprises; the old ones stop working within the cache TTL."""
    old = svc.credentials.mews_tokens_named(name)
    if not old:
        raise InvalidRequest(f"No Mews token named {name!r}.")
    created = create_mews_token(svc, name, sorted(set(old[0].enterprises.values())))
    for token in old:
        svc.credentials.revoke_mews_token(token.token_digest)
    return created


def revoke_mews_token(svc: Services, name: str) -> int:
    old = svc.credentials.mews_tokens_named(name)
    for token in old:
        svc.credentials.revoke_mews_token(token.token_digest)
    return len(old)


def set_maestra_key(svc: Services, endpoint_id: str) -> str:
    endpoint = svc.credentials.maestra_endpoint(endpoint_id)
    if endpoint is None:
        raise InvalidRequest(f"No Maestra endpoint {endpoint_id!r}; add it to the configuration.")
    key = new_token()
    svc.credentials.put_maestra_endpoint(endpoint._replace(secret_key_digest=token_digest(key)))
    return key


# ---------------------------------------------------------------------- command line


def _connect(args: argparse.Namespace) -> Services:
    """The services over the chosen table, built from settings of their own."""
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
    install(svc)  # handlers run in-process (import, export) use the same services
    return svc


def _local_endpoint() -> str | None:
    marker = ROOT / ".local" / "dynamodb.endpoint"
    return marker.read_text().strip() if marker.exists() else None


def _progress(total_bytes: int, stream: IO[str]) -> Callable[[int], None]:
    if not sys.stderr.isatty():
        return lambda _: None

    def show(added: int) -> None:
        done = stream.tell() if stream.seekable() else 0
        share = f" {100 * done // total_bytes:3d}%" if total_bytes else ""
        print(f"\r  imported {added} codes{share}", end="", file=sys.stderr, flush=True)

    return show


def main(argv: list[str] | None = None) -> int:
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
    import_cmd = commands.add_parser("import", help="add codes from a CSV file")
    import_cmd.add_argument("pool")
    import_cmd.add_argument("file", type=Path)
    import_cmd.add_argument("--tenant", default="demo")
    export_cmd = commands.add_parser("export", help="write a pool's codes as CSV")
    export_cmd.add_argument("pool")
    export_cmd.add_argument("--tenant", default="demo")
    export_cmd.add_argument("-o", "--output", type=Path)
    credential = commands.add_parser("credential", help="create, rotate or revoke credentials")
    credential.add_argument("action", choices=["create", "rotate", "revoke"])
    credential.add_argument("kind", choices=["mews", "maestra-key"])
    credential.add_argument("--name")
    credential.add_argument("--tenant", action="append", default=[])
    credential.add_argument("--endpoint")
    args = parser.parse_args(argv)

    try:
        if args.command == "apply":
            config_file.load(args.config)  # validated before connecting: a bad file touches nothing
            result = apply_config(args.config, _connect(args))
            print(
                f"applied: {result.tenants} tenant(s), {result.pools} pool(s), "
                f"{result.seeded_codes} seed code(s), {result.credentials} credential(s)"
            )
        elif args.command == "pools":
            return _print_pools(_connect(args), args.tenant)
        elif args.command == "import":
            return _import(_connect(args), args)
        elif args.command == "export":
            return _export(_connect(args), args)
        else:
            return _credential(_connect(args), args)
    except config_file.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except PromoError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


def _print_pools(svc: Services, tenant: str | None) -> int:
    tenants = [tenant] if tenant else sorted(_tenants(svc))
    print(
        f"{'tenant':12} {'pool':16} {'available':>9} {'issued':>7} {'used':>6} "
        f"{'blocked':>7} {'deleted':>7}"
    )
    for tenant_id in tenants:
        for pool, states in pool_summary(svc, tenant_id):
            print(
                f"{tenant_id:12} {pool.pool_id:16} {states['AVAILABLE']:9} "
                f"{states['ISSUED']:7} {states['USED']:6} {states['BLOCKED']:7} "
                f"{states['DELETED']:7}"
            )
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
    with args.file.open(newline="") as stream:
        report = import_codes(svc, pool, stream, _progress(args.file.stat().st_size, stream))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    for line, value, reason in report.rejected:
        print(f"line {line}: {value!r}: {reason}", file=sys.stderr)
    print(f"added {report.added} code(s); rejected {len(report.rejected)} row(s)")
    return 1 if report.rejected else 0


def _export(svc: Services, args: argparse.Namespace) -> int:
    pool = _pool(svc, args.tenant, args.pool)
    target: TextIO = args.output.open("w", newline="") if args.output else sys.stdout
    try:
        writer = csv.writer(target)
        writer.writerow(EXPORT_COLUMNS)
        codes = (code for _, code in svc.codes.list(pool.tenant_id, [pool.pool_id]))
        writer.writerows(export_rows(codes))
    finally:
        if args.output:
            target.close()
    return 0


def _credential(svc: Services, args: argparse.Namespace) -> int:
    if args.kind == "maestra-key":
        if not args.endpoint or args.action == "revoke":
            raise InvalidRequest("maestra-key needs --endpoint (and create or rotate)")
        print(f"secret key for {args.endpoint} (shown once): {set_maestra_key(svc, args.endpoint)}")
        return 0
    if not args.name:
        raise InvalidRequest("mews credentials need --name")
    if args.action == "revoke":
        print(f"revoked {revoke_mews_token(svc, args.name)} token(s) named {args.name}")
        return 0
    if args.action == "create":
        if not args.tenant:
            raise InvalidRequest("mews create needs --tenant (repeat it for a portfolio token)")
        token = create_mews_token(svc, args.name, args.tenant)
    else:
        token = rotate_mews_token(svc, args.name)
    print(
        f"Mews token {token.name} (shown once; only hashes are stored)\n"
        f"  ClientToken: {token.client_token}\n  AccessToken: {token.access_token}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
