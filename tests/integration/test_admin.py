"""promo-admin against DynamoDB Local: CSV import/export, pool summaries, credential rotation."""

import csv
import io
from pathlib import Path

import pytest

from functions.mews_get_all.app import handler as get_all_handler
from promo.bootstrap import services
from promo.domain.models import Issuance
from tests.support.deployment import invoke, json_body, post_json
from tests.support.tables import Stores
from tools import admin
from tools.template import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def demo(deployed: Stores) -> Stores:
    admin.apply_config(ROOT / "config" / "demo.yaml", services())
    return deployed


def test_import_names_bad_rows_by_line_writes_the_good_ones_and_export_round_trips(
    demo: Stores,
) -> None:
    pool = demo.catalog.get_pool("demo", "welcome")
    assert pool is not None
    rows = [
        "value,valid_from,valid_until",
        "IMPORT-1,2025-01-01T00:00:00Z,2030-01-01T00:00:00Z",  # line 2
        "IMPORT-2,,",  # line 3
        "IMPORT-1,,",  # line 4: repeats line 2
        ",,",  # line 5: empty value
        "WELCOME-4F7Q,,",  # line 6: a demo code already in the tenant
        "IMPORT-3,2030-01-01T00:00:00Z,2025-01-01T00:00:00Z",  # line 7: window reversed
        "IMPORT-4,yesterday,",  # line 8: not a time
        "IMPORT-5,,",  # line 9
    ]

    report = admin.import_codes(services(), pool, io.StringIO("\n".join(rows) + "\n"))

    assert report.added == 3
    assert [(line, value) for line, value, _ in report.rejected] == [
        (4, "IMPORT-1"),
        (5, ""),
        (7, "IMPORT-3"),
        (8, "IMPORT-4"),
        (6, "WELCOME-4F7Q"),
    ]
    assert "repeats line 2" in report.rejected[0][2]
    exported = list(
        csv.DictReader(
            io.StringIO(
                "\n".join(
                    ",".join(row)
                    for row in [
                        admin.EXPORT_COLUMNS,
                        *admin.export_rows(
                            code for _, code in demo.codes.list("demo", ["welcome"])
                        ),
                    ]
                )
            )
        )
    )
    by_value = {row["value"]: row for row in exported}
    assert {"IMPORT-1", "IMPORT-2", "IMPORT-5", "WELCOME-4F7Q"} <= set(by_value)
    assert not {"IMPORT-3", "IMPORT-4"} & set(by_value)
    assert by_value["IMPORT-1"]["valid_from"] == "2025-01-01T00:00:00Z"
    assert by_value["IMPORT-1"]["valid_until"] == "2030-01-01T00:00:00Z"
    assert by_value["IMPORT-2"]["state"] == "AVAILABLE"


def test_import_of_more_than_one_batch_then_export_through_the_command_line(
    demo: Stores, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "codes.csv"
    source.write_text("value\n" + "".join(f"BULK-{i:05d}\n" for i in range(2500)))
    target = tmp_path / "out.csv"
    connection = ["--table", demo.table_name, "--endpoint-url", demo.client.meta.endpoint_url]

    assert admin.main([*connection, "import", "spring", str(source), "--tenant", "demo"]) == 0
    assert admin.main([*connection, "export", "spring", "--tenant", "demo", "-o", str(target)]) == 0
    assert admin.main([*connection, "pools", "--tenant", "demo"]) == 0

    exported = {row["value"] for row in csv.DictReader(target.open())}
    assert {f"BULK-{i:05d}" for i in range(2500)} <= exported
    printed = capsys.readouterr().out.splitlines()
    assert "added 2500 code(s); rejected 0 row(s)" in printed
    spring = next(
        line.split() for line in printed if line.startswith("demo") and " spring " in line
    )
    assert spring[2] == "2510"  # available: 10 demo codes + 2,500 imported


def test_pool_summary_counts_codes_by_state(demo: Stores) -> None:
    from tests.support.builders import ACTOR, moment

    pool = demo.catalog.get_pool("demo", "welcome")
    assert pool is not None
    demo.codes.claim(pool, Issuance(moment(), ACTOR))

    summary = {pool.pool_id: states for pool, states in admin.pool_summary(services(), "demo")}

    assert summary["welcome"]["AVAILABLE"] == 2
    assert summary["welcome"]["ISSUED"] == 1
    assert summary["spring"]["AVAILABLE"] == 10


def mews_get_all(client_token: str, access_token: str) -> int:
    body = {
        "ClientToken": client_token,
        "AccessToken": access_token,
        "Client": "t",
        "Limitation": {"Count": 1},
    }
    response = invoke(get_all_handler, post_json("/api/connector/v1/voucherCodes/getAll", body))
    json_body(response)
    return int(response["statusCode"])


def test_created_then_rotated_mews_tokens_work_and_the_old_pair_stops(demo: Stores) -> None:
    created = admin.create_mews_token(services(), "front-desk", ["demo"])
    assert mews_get_all(created.client_token, created.access_token) == 200

    rotated = admin.rotate_mews_token(services(), "front-desk")

    assert mews_get_all(rotated.client_token, rotated.access_token) == 200
    assert mews_get_all(created.client_token, created.access_token) == 401
    assert admin.revoke_mews_token(services(), "front-desk") == 1
    assert mews_get_all(rotated.client_token, rotated.access_token) == 401


def test_a_maestra_key_can_be_set_for_a_configured_endpoint_only(demo: Stores) -> None:
    from promo.secret_hashing import matches

    key = admin.set_maestra_key(services(), "demo-website")

    endpoint = services().credentials.maestra_endpoint("demo-website")
    assert endpoint is not None
    assert endpoint.secret_key_digest is not None
    assert matches(key, endpoint.secret_key_digest)
    assert endpoint.operations["IssueSpringPromoCode"].pool_alias == "spring-2025"
    with pytest.raises(Exception, match="No Maestra endpoint"):
        admin.set_maestra_key(services(), "no-such-endpoint")


def test_a_bad_configuration_is_refused_before_anything_is_written(
    demo: Stores, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "tenants:\n  - id: other\n    name: Other\n    pools: [{id: p, name: P, shard_count: -1}]\n"
    )

    status = admin.main(
        [
            "--table",
            demo.table_name,
            "--endpoint-url",
            demo.client.meta.endpoint_url,
            "apply",
            str(bad),
        ]
    )

    assert status == 2
    assert "tenants[0].pools[0].shard_count (line 4)" in capsys.readouterr().err
    assert demo.catalog.get_tenant("other") is None
