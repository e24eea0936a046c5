"""`make run` end to end: the local stack started as a process, called over HTTP."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.dynamodb_local import free_port
from tools.template import ROOT

pytestmark = pytest.mark.integration

DEMO_MEWS = {
    "ClientToken": "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D",
    "AccessToken": "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D",
    "Client": "end-to-end test",
}


def start(port: int, data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PORT": str(port)}
    env.pop("TABLE_NAME", None)
    env.pop("DYNAMODB_ENDPOINT_URL", None)
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "tools.local_stack", "--data-dir", str(data_dir), *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_answering(port: int, process: subprocess.Popen[str], timeout: float = 90) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise AssertionError(
                f"local stack exited: {process.stdout.read() if process.stdout else ''}"
            )
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
        except urllib.error.HTTPError:
            return time.monotonic() - started  # 404 for / means it answers
        except OSError:
            time.sleep(0.2)
    raise AssertionError("local stack did not answer in time")


def post(port: int, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[int, subprocess.Popen[str], Path]]:
    port, data_dir = free_port(), tmp_path_factory.mktemp("local")
    process = start(port, data_dir, "--fresh")
    try:
        wait_until_answering(port, process)
        yield port, process, data_dir
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def test_the_demo_codes_answer_over_http_through_mews(
    stack: tuple[int, subprocess.Popen[str], Path],
) -> None:
    port, _, _ = stack

    status, body = post(
        port, "/api/connector/v1/voucherCodes/getAll", {**DEMO_MEWS, "Limitation": {"Count": 100}}
    )

    assert status == 200
    assert {"SPRING-7KQ3", "WELCOME-4F7Q"} <= {code["Value"] for code in body["VoucherCodes"]}


def test_a_code_added_over_http_is_listed_and_deleted_over_http(
    stack: tuple[int, subprocess.Popen[str], Path],
) -> None:
    port, _, _ = stack
    add = {
        **DEMO_MEWS,
        "VoucherCodeParameters": [
            {"VoucherId": "fe568bbd-1ecb-4bb2-bf77-96c3698de20d", "Value": "E2E-1"}
        ],
    }

    status, added = post(port, "/api/connector/v1/voucherCodes/add", add)
    code_id = added["VoucherCodes"][0]["Id"]
    _, listed = post(
        port,
        "/api/connector/v1/voucherCodes/getAll",
        {**DEMO_MEWS, "VoucherCodeIds": [code_id], "Limitation": {"Count": 1}},
    )
    deleted = post(
        port, "/api/connector/v1/voucherCodes/delete", {**DEMO_MEWS, "VoucherCodeIds": [code_id]}
    )

    assert status == 200
    assert listed["VoucherCodes"][0]["Value"] == "E2E-1"
    assert deleted == (200, {})


def test_unknown_routes_answer_404_as_api_gateway_does(
    stack: tuple[int, subprocess.Popen[str], Path],
) -> None:
    port, _, _ = stack

    assert post(port, "/api/connector/v1/voucherCodes/unknown", {}) == (
        404,
        {"message": "Not Found"},
    )
    assert post(port, "/api/connector/v1/vouchercodes/getall", {}) == (
        404,
        {"message": "Not Found"},
    )


def test_a_second_run_says_one_is_running_and_exits(
    stack: tuple[int, subprocess.Popen[str], Path],
) -> None:
    _, _, data_dir = stack

    second = start(free_port(), data_dir)
    output, _ = second.communicate(timeout=30)

    assert second.returncode == 1
    assert "already running" in output


def test_it_logs_one_line_per_request_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    process = start(port, tmp_path)
    try:
        wait_until_answering(port, process)
        post(
            port, "/api/connector/v1/voucherCodes/getAll", {**DEMO_MEWS, "Limitation": {"Count": 1}}
        )
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)

    assert process.returncode == 0
    assert any(
        line.startswith("POST /api/connector/v1/voucherCodes/getAll 200 ") and line.endswith("ms")
        for line in output.splitlines()
    )
    assert not (tmp_path / "dynamodb.endpoint").exists()
    restarted = start(port, tmp_path)  # data survives a restart; the lock was released
    try:
        wait_until_answering(port, restarted)
        status, body = post(
            port,
            "/api/connector/v1/voucherCodes/getAll",
            {**DEMO_MEWS, "Limitation": {"Count": 100}},
        )
        assert status == 200
        assert len(body["VoucherCodes"]) == 13  # the demo codes, not seeded twice
    finally:
        restarted.send_signal(signal.SIGINT)
        restarted.communicate(timeout=30)


def maestra(port: int, path: str, operation: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v3/operations/{path}?endpointId=demo-website&operation={operation}",
        data=json.dumps(body).encode(),
        headers={
            "content-type": "application/json",
            "authorization": "SecretKey demo-maestra-secret-key",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status, json.loads(response.read())


def issued_in_welcome(data_dir: Path) -> int:
    endpoint = (data_dir / "dynamodb.endpoint").read_text()
    printed = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "tools.admin",
            "--table",
            "promo-codes-local",
            "--endpoint-url",
            endpoint,
            "pools",
            "--tenant",
            "demo",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    row = next(line.split() for line in printed.splitlines() if " welcome " in line)
    return int(row[3])  # tenant, pool, available, issued, ...


def test_maestra_async_is_performed_by_the_local_queue_worker(
    stack: tuple[int, subprocess.Popen[str], Path],
) -> None:
    port, _, data_dir = stack
    welcome = {
        "customer": {"ids": {"webSiteUserId": "9"}},
        "promoCode": {"pool": {"ids": {"externalId": "welcome"}}},
    }
    before = issued_in_welcome(data_dir)

    accepted = maestra(port, "async", "IssuePromoCodeFromPool", welcome)
    deadline = time.monotonic() + 20
    while issued_in_welcome(data_dir) == before and time.monotonic() < deadline:
        time.sleep(0.3)

    assert accepted == (200, {"status": "Success"})
    assert issued_in_welcome(data_dir) == before + 1
