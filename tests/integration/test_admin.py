"""promo-admin against DynamoDB Local: CSV import/export, pool summaries, credential rotation."""

import csv
import io
import sys
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


def test_import_names_bad_rows_by_line_and_then_writes_nothing(demo: Stores) -> None:
    pool = demo.catalog.get_pool("demo", "welcome")
    assert pool is not None
    rows = [
        "value,valid_from,valid_until",
        "IMPORT-1,2025-01-01T00:00:00Z,2030-01-01T00:00:00Z",  # line 2
        "IMPORT-2,,",  # line 3
        "IMPORT-1,,",  # line 4: repeats line 2
        ",,",  # line 5: empty value
        "SPRING-7KQ3,,",  # line 6: a demo code of another pool of the tenant
        "IMPORT-3,2030-01-01T00:00:00Z,2025-01-01T00:00:00Z",  # line 7: window reversed
        "IMPORT-4,yesterday,",  # line 8: not a time
        "IMPORT-5,,",  # line 9
        "IMPORT-6,,,extra",  # line 10: a fourth column
    ]

    report = admin.import_codes(services(), pool, io.StringIO("\n".join(rows) + "\n"))

    assert report.invalid
    assert report.added == 0
    assert [(line, value) for line, value, _ in report.rejected] == [
        (4, "IMPORT-1"),
        (5, ""),
        (6, "SPRING-7KQ3"),
        (7, "IMPORT-3"),
        (8, "IMPORT-4"),
        (10, "IMPORT-6"),
    ]
    reasons = {line: reason for line, _, reason in report.rejected}
    assert "repeats line 2" in reasons[4]
    assert "in pool spring" in reasons[6]
    assert not demo.codes.existing_values("demo", [f"IMPORT-{i}" for i in range(1, 7)])


def test_import_refuses_padded_and_look_alike_values_instead_of_repairing_them(
    demo: Stores,
) -> None:
    """Issue 15 item 7: import stripped values, so " PAD " became the code PAD; now the one
    value policy refuses it, names the line, and the file writes nothing."""
    pool = demo.catalog.get_pool("demo", "welcome")
    assert pool is not None
    rows = [
        "value",
        " PAD-IMPORT ",  # line 2: space at both ends
        "CAF\u00c9-IMPORT",  # line 3: NFC
        "CAFE\u0301-IMPORT",  # line 4: the same value in NFD, a repeat of line 3
        "\uff33PRING-IMPORT",  # line 5: fullwidth S
        "SPRIN\u0410G-IMPORT",  # line 6: a Cyrillic letter in a Latin value
        "OK-IMPORT",  # line 7
    ]

    report = admin.import_codes(services(), pool, io.StringIO("\n".join(rows) + "\n"))

    assert report.invalid
    assert [(line, value) for line, value, _ in report.rejected] == [
        (2, " PAD-IMPORT "),
        (4, "CAF\u00c9-IMPORT"),
        (5, "\uff33PRING-IMPORT"),
        (6, "SPRIN\u0410G-IMPORT"),
    ]
    reasons = {line: reason for line, _, reason in report.rejected}
    assert "not stripped" in reasons[2]
    assert "repeats line 3" in reasons[4]
    assert "U+FF33" in reasons[5]
    assert "mix Latin and Cyrillic" in reasons[6]
    assert not demo.codes.existing_values(
        "demo", ["PAD-IMPORT", " PAD-IMPORT ", "CAF\u00c9-IMPORT", "OK-IMPORT"]
    )


def test_import_then_export_round_trips_values_and_validity(demo: Stores) -> None:
    pool = demo.catalog.get_pool("demo", "welcome")
    assert pool is not None
    rows = [
        "value,valid_from,valid_until",
        "IMPORT-1,2025-01-01T00:00:00Z,2030-01-01T00:00:00Z",
        "IMPORT-2,,",
        "WELCOME-4F7Q,,",  # a demo code of this pool, as the file has it: present already
    ]

    report = admin.import_codes(services(), pool, io.StringIO("\n".join(rows) + "\n"))

    assert (report.added, report.present, report.rejected) == (2, 1, [])
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
    assert {"IMPORT-1", "IMPORT-2", "WELCOME-4F7Q"} <= set(by_value)
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
    # This table's stream is not consumed here: its counts come from a recount.
    assert admin.main([*connection, "reconcile", "--tenant", "demo"]) == 0
    assert admin.main([*connection, "pools", "--tenant", "demo"]) == 0

    exported = {row["value"] for row in csv.DictReader(target.open())}
    assert {f"BULK-{i:05d}" for i in range(2500)} <= exported
    printed = capsys.readouterr().out.splitlines()
    assert "added 2500 code(s); rejected 0 row(s)" in printed
    assert "demo/spring: repaired available 0 -> 2510" in printed
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


def connection(demo: Stores) -> list[str]:
    return ["--table", demo.table_name, "--endpoint-url", demo.client.meta.endpoint_url]


def test_a_headerless_csv_is_read_as_value_valid_from_valid_until(
    demo: Stores, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "codes.csv"
    # A spreadsheet's byte-order mark, no header, a blank line, one and three columns.
    source.write_bytes(
        "\ufeffPLAIN-1\n\nPLAIN-2,2025-01-01T00:00:00Z,2030-01-01T00:00:00Z\n".encode()
    )

    status = admin.main([*connection(demo), "import", "spring", str(source), "-q"])

    assert status == 0
    assert "added 2 code(s); rejected 0 row(s)" in capsys.readouterr().out
    plain_1, plain_2 = demo.codes.get("demo", "PLAIN-1"), demo.codes.get("demo", "PLAIN-2")
    assert plain_1 is not None
    assert plain_2 is not None
    assert plain_1.pool_id == "spring"
    assert plain_1.validity.start is None
    assert plain_2.validity.start is not None
    assert plain_2.validity.start.year == 2025


class Terminal(io.StringIO):
    """stderr as an interactive terminal shows it."""

    def isatty(self) -> bool:
        return True


def test_a_long_import_on_a_terminal_shows_progress_and_finishes(
    demo: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It used to die after the first 1,000 (tell() on a file being iterated)."""
    source = tmp_path / "codes.csv"
    source.write_text("value\n" + "".join(f"TTY-{i:05d}\n" for i in range(2500)))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    status = admin.main([*connection(demo), "import", "spring", str(source)])

    assert status == 0
    shown = terminal.getvalue()
    assert shown.startswith("\r")
    assert shown.endswith("\r  imported 2,500 of 2,500 codes (100%)\n")
    assert shown.count("\n") == 1  # rewritten in place, one line in the end
    assert len(demo.codes.existing_values("demo", [f"TTY-{i:05d}" for i in range(2500)])) == 2500


def test_progress_off_a_terminal_is_a_line_per_tenth_and_quiet_shows_none(
    demo: Stores, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "codes.csv"
    source.write_text("".join(f"LOG-{i:05d}\n" for i in range(2500)))
    target = tmp_path / "out.csv"

    assert admin.main([*connection(demo), "import", "spring", str(source)]) == 0
    assert admin.main([*connection(demo), "export", "spring", "-o", str(target)]) == 0
    logged = capsys.readouterr().err.splitlines()
    assert admin.main([*connection(demo), "export", "spring", "-o", str(target), "-q"]) == 0

    assert logged == [
        "  imported 0 of 2,500 codes (0%)",
        "  imported 1,000 of 2,500 codes (40%)",
        "  imported 2,000 of 2,500 codes (80%)",
        "  imported 2,500 of 2,500 codes (100%)",
        "  exported 2,510 codes",
    ]
    assert capsys.readouterr().err == ""


def test_an_interrupted_import_run_again_finishes_and_counts_what_was_in(
    demo: Stores, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [f"RESUME-{i:05d},2025-01-01T00:00:00Z,\n" for i in range(2500)]
    first_run = tmp_path / "first.csv"  # what the interrupted run had written: its first batch
    first_run.write_text("".join(lines[:1000]))
    source = tmp_path / "codes.csv"
    source.write_text("".join(lines))
    assert admin.main([*connection(demo), "import", "spring", str(first_run), "-q"]) == 0
    capsys.readouterr()

    status = admin.main([*connection(demo), "import", "spring", str(source), "-q"])

    assert status == 0
    assert capsys.readouterr().out.splitlines() == [
        "added 1500 code(s); rejected 0 row(s); 1000 already present"
    ]
    values = [f"RESUME-{i:05d}" for i in range(2500)]
    assert len(demo.codes.existing_values("demo", values)) == 2500


def test_a_value_in_another_pool_or_with_another_validity_is_not_taken_as_present(
    demo: Stores, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "codes.csv"
    source.write_text("value,valid_from\nNEW-1\nWELCOME-4F7Q,2025-01-01T00:00:00Z\nSPRING-7KQ3\n")

    status = admin.main([*connection(demo), "import", "welcome", str(source), "-q"])

    assert status == 1
    printed = capsys.readouterr()
    assert "line 3: 'WELCOME-4F7Q': already in this pool with another validity" in printed.err
    assert "line 4: 'SPRING-7KQ3': already exists in the tenant, in pool spring" in printed.err
    assert "nothing was written" in printed.out
    assert demo.codes.get("demo", "NEW-1") is None


def test_a_file_failing_validation_late_writes_nothing(
    demo: Stores, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "codes.csv"
    rows = [f"LATE-{i:05d}\n" for i in range(2500)]
    rows[2399] = "LATE-02399,not-a-time\n"  # line 2400, after two full batches
    source.write_text("".join(rows))

    status = admin.main([*connection(demo), "import", "spring", str(source), "-q"])

    assert status == 1
    assert "line 2400: 'LATE-02399'" in capsys.readouterr().err
    assert not demo.codes.existing_values("demo", [f"LATE-{i:05d}" for i in range(2500)])


def test_credential_create_refuses_a_name_in_use_unless_replace(
    demo: Stores, capsys: pytest.CaptureFixture[str]
) -> None:
    create = [*connection(demo), "credential", "create", "mews", "--name", "desk", "--tenant"]
    assert admin.main([*create, "demo"]) == 0
    first = capsys.readouterr().out
    first_pair = [line.split(": ")[1] for line in first.splitlines()[1:]]
    assert mews_get_all(*first_pair) == 200

    refused = admin.main([*create, "demo"])
    assert refused == 2
    assert "exists" in capsys.readouterr().err
    assert mews_get_all(*first_pair) == 200  # untouched

    assert admin.main([*create, "demo", "--replace"]) == 0
    second_pair = [line.split(": ")[1] for line in capsys.readouterr().out.splitlines()[1:]]
    assert mews_get_all(*second_pair) == 200
    assert mews_get_all(*first_pair) == 401
    assert len(services().credentials.mews_tokens_named("desk")) == 1


def test_a_maestra_key_create_refuses_an_endpoint_that_has_one_unless_replace(
    demo: Stores, capsys: pytest.CaptureFixture[str]
) -> None:
    command = [*connection(demo), "credential", "create", "maestra-key"]

    assert admin.main([*command, "--endpoint", "demo-website"]) == 2
    assert "has a key" in capsys.readouterr().err
    assert admin.main([*command, "--endpoint", "demo-website", "--replace"]) == 0
    assert "shown once" in capsys.readouterr().out


def test_in_a_case_insensitive_tenant_import_refuses_case_variants_of_held_values_and_rows(
    demo: Stores, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # config/demo.yaml: tenant demo has case_sensitive: false; WELCOME-4F7Q is a seed code.
    source = tmp_path / "codes.csv"
    source.write_text("value\nCase-New-1\nCASE-NEW-1\nwelcome-4f7q\n")

    status = admin.main([*connection(demo), "import", "welcome", str(source), "-q"])

    assert status == 1
    printed = capsys.readouterr().err
    assert "line 3: 'CASE-NEW-1': repeats line 2" in printed
    assert "line 4: 'welcome-4f7q': matches 'WELCOME-4F7Q'" in printed
    assert demo.codes.get("demo", "case-new-1") is None


def test_apply_refuses_case_sensitive_false_naming_values_that_collide_when_folded(
    demo: Stores, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from promo.domain.models import NewCode
    from tests.support.builders import ACTOR

    config = tmp_path / "other.yaml"
    tenant = "tenants:\n  - id: other\n    name: Other\n{}    pools: [{{id: p, name: P}}]\n"
    config.write_text(tenant.format(""))
    assert admin.main([*connection(demo), "apply", str(config)]) == 0
    other = demo.catalog.get_pool("other", "p")
    assert other is not None
    held = [NewCode("p", value) for value in ("Dup-1", "DUP-1", "Alone-1")]
    demo.codes.add("other", {"p": other}, held, ACTOR)
    config.write_text(tenant.format("    case_sensitive: false\n"))
    capsys.readouterr()

    status = admin.main([*connection(demo), "apply", str(config)])

    assert status == 2
    assert "Values collide when case is ignored: DUP-1, Dup-1" in capsys.readouterr().err
    assert demo.catalog.get_tenant("other").case_sensitive  # type: ignore[union-attr]
    assert demo.codes.get("other", "alone-1") is None
