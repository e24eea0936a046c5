"""``make run``: every route of template.yaml on 127.0.0.1, each request turned into the event the
deployed HTTP API would send and handed to that route's handler in-process, over DynamoDB Local.

Environment (each also a command-line option):
  PORT              port to answer on (3000)
  PROMO_DYNAMODB    unset: DynamoDB Local, data kept in .local/dynamodb;
                    an http(s) URL: that DynamoDB endpoint; "aws": real AWS (default credentials,
                    TABLE_NAME names the table)
  PROMO_CONFIG      configuration applied at start (config/demo.yaml)
  FRESH=1           start from an empty local database

The table's change stream is read in-process too (tools/local_stream.py) and delivered to the
function template.yaml subscribes to it; its events go to .local/events.jsonl
(`promo-admin events`).
"""

import argparse
import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from tools.dynamodb_local import DynamoDBLocal, free_port, stop_leftover
from tools.lambda_runtime import LambdaContext, http_api_event
from tools.local_stream import EVENTS_FILE, POSITIONS_FILE, EventFile, LocalStream
from tools.router import Router
from tools.template import ROOT, deployed, load_template

LOCAL = ROOT / ".local"
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit


def _parameter_default(name: str) -> str:
    parameter = load_template().get("Parameters", {}).get(name, {})
    return str(parameter.get("Default", ""))


def function_environment(table_name: str) -> dict[str, str]:
    """The Globals environment of template.yaml as deployed with its default parameters (the
    stack's own table), with references resolved for a local run."""
    variables = deployed()["Globals"]["Function"]["Environment"]["Variables"]
    resolved = {}
    for name, value in variables.items():
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            value = table_name if ref == "PromoTable" else _parameter_default(ref)
        resolved[name] = str(value)
    return resolved


class LocalQueue:
    """Stands in for SQS: what handlers send is delivered to the function template.yaml
    subscribes to the queue, with SQS's retry (failed items come back, five receives at most,
    then the dead-letter queue, here a log line)."""

    MAX_RECEIVES = 5

    def __init__(self, router: Router) -> None:
        self._router = router
        self._pending: queue.Queue[tuple[str, str, int] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._deliver, name="local-sqs", daemon=True)

    def start(self) -> None:
        from promo import bootstrap

        if self._router.consumers:
            # The async function's sender feeds this queue instead of SQS.
            bootstrap.install(bootstrap.services()._replace(send=self.send))
            self._thread.start()

    def send(self, message: dict[str, Any]) -> None:
        self._pending.put((str(uuid.uuid4()), json.dumps(message), 1))

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued message was delivered (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._pending.put(None)
            self._thread.join(timeout=10)

    def _deliver(self) -> None:
        consumer = self._router.consumers[0]
        handler = self._router.handler(consumer)
        while (entry := self._pending.get()) is not None:
            message_id, body, receives = entry
            event = {
                "Records": [
                    {
                        "messageId": message_id,
                        "body": body,
                        "attributes": {"ApproximateReceiveCount": str(receives)},
                        "eventSource": "aws:sqs",
                    }
                ]
            }
            try:
                failed = handler(event, LambdaContext(consumer.function))["batchItemFailures"]
            except Exception as exc:
                print(f"  {consumer.function} failed: {type(exc).__name__}", file=sys.stderr)
                failed = [{"itemIdentifier": message_id}]
            if failed and receives < self.MAX_RECEIVES:
                time.sleep(min(2**receives * 0.1, 2))
                self._pending.put((message_id, body, receives + 1))
            elif failed:
                print(f"  message {message_id} moved to the dead-letter queue", file=sys.stderr)
            self._pending.task_done()
        self._pending.task_done()


class Server(ThreadingHTTPServer):
    """The HTTP server of ``make run``: a listen queue deep enough for load tests (the
    standard library's is 5, so 64 clients connecting at once got resets), and clients that
    hang up before their answer are not worth a traceback."""

    request_queue_size = 1024  # the kernel caps it at net.core.somaxconn
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # BrokenPipe, ConnectionReset, ConnectionAborted: the client went away
        super().handle_error(request, client_address)


class PortInUse(Exception):
    """The port ``make run`` should answer on is taken."""


class Stack:
    def __init__(
        self,
        port: int,
        dynamodb: str | None,
        config: Path,
        fresh: bool,
        table_name: str,
        data_dir: Path,
    ) -> None:
        self.port = port
        self.dynamodb = dynamodb
        self.config = config
        self.fresh = fresh
        self.table_name = table_name
        self.data_dir = data_dir
        self.database: DynamoDBLocal | None = None
        self.router = Router()
        self.queue = LocalQueue(self.router)
        self.stream = LocalStream(self.router, data_dir / POSITIONS_FILE)
        self.events = EventFile(data_dir / EVENTS_FILE)
        self.server: Server | None = None

    def bind(self) -> None:
        """Take the port first, so a port in use is reported before anything starts."""
        server = Server(
            ("127.0.0.1", self.port), _handler_for(self.router), bind_and_activate=False
        )
        try:
            server.server_bind()
        except OSError as exc:
            server.server_close()
            raise PortInUse(f"port {self.port} on 127.0.0.1: {exc.strerror}") from None
        self.server = server

    def start(self) -> None:
        if self.server is None:
            self.bind()
        endpoint = self._start_database()
        os.environ.update(function_environment(self.table_name))
        # Quiet handler logs by default: one line per request is printed here instead.
        os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get("LOG_LEVEL", "WARNING")
        # CloudWatch metric documents (EMF) mean nothing locally and would bury the request log.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        if endpoint is not None:
            os.environ["DYNAMODB_ENDPOINT_URL"] = endpoint
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                os.environ.setdefault(name, "local")
            os.environ.setdefault("AWS_REGION", "us-east-1")
        self._compose()
        self._prepare_table()
        self.queue.start()
        self._start_stream()
        assert self.server is not None
        self.server.server_activate()  # listen: requests wait in the queue from here on

    def _start_database(self) -> str | None:
        if self.dynamodb == "aws":
            return None
        if self.dynamodb:
            return self.dynamodb
        storage = self.data_dir / "dynamodb"
        stop_leftover(storage)  # one a killed run left behind must not hold the files
        if self.fresh and storage.exists():
            shutil.rmtree(storage)
        if self.fresh:  # a new database's stream starts anew, and so does its event history
            for name in (EVENTS_FILE, POSITIONS_FILE):
                (self.data_dir / name).unlink(missing_ok=True)
        port = int(os.environ.get("DYNAMODB_LOCAL_PORT", "0")) or free_port()
        # Known before it starts, so a stop that interrupts the start still stops it.
        self.database = DynamoDBLocal(port=port, data_dir=storage)
        self.database.start()
        # promo-admin finds the running local database through this file.
        (self.data_dir / "dynamodb.endpoint").write_text(self.database.endpoint)
        return self.database.endpoint

    def _compose(self) -> None:
        """The functions' services, as on AWS but for the event bus: events go to a file."""
        from promo import bootstrap
        from promo.settings import Settings

        bootstrap.install(bootstrap.bootstrap(Settings.from_environment(), publish=self.events))

    def _prepare_table(self) -> None:
        from promo.bootstrap import services
        from tools.admin import apply_config, ensure_stream, ensure_table, reconcile_pools

        ensure_table(services())
        if ensure_stream(services()):
            # A table from before the stream: its codes are counted once, from the table.
            repaired = reconcile_pools(services())
            print(f"Change stream turned on; {len(repaired)} pool(s) counted from the table")
        report = apply_config(self.config, services())
        shown = self.config.relative_to(ROOT) if self.config.is_relative_to(ROOT) else self.config
        print(
            f"Applied {shown}: {report.tenants} tenant(s), {report.pools} pool(s), "
            f"{report.seeded_codes} demo code(s) added, {report.credentials} credential(s)"
        )

    def _start_stream(self) -> None:
        from promo import aws
        from promo.bootstrap import services

        svc = services()
        streams = aws.client(
            aws.get_session(),
            "dynamodbstreams",
            svc.settings.aws_region,
            endpoint_url=svc.settings.dynamodb_endpoint_url,
        )
        self.stream.start(svc.codes.table.client, streams, svc.settings.table_name)

    def serve(self) -> None:
        assert self.server is not None
        print(
            f"promo-codes answers on http://127.0.0.1:{self.port}"
            f" ({len(self.router.routes)} routes; Ctrl-C stops)",
            flush=True,
        )
        for route in self.router.routes:
            print(f"  {route.method:6} {route.path}  -> {route.function}")
        self.server.serve_forever()

    def stop(self) -> None:
        if self.server is not None:
            self.server.server_close()
        self.queue.drain()
        self.queue.stop()
        self.stream.stop()
        if self.database is not None:
            self.database.stop()
            (self.data_dir / "dynamodb.endpoint").unlink(missing_ok=True)


# ---------------------------------------------------------------------- the API description
# docs/openapi.yaml (every route, docs/openapi.md) is served before routing, as YAML or JSON.
# These paths are not routes of template.yaml; the deployed API does not serve them.
OPENAPI = ROOT / "docs" / "openapi.yaml"


def _openapi_document(method: str, path: str) -> tuple[str, bytes] | None:
    """(content type, body) for GET/HEAD of /openapi.yaml or /openapi.json; None otherwise."""
    if method not in ("GET", "HEAD") or path not in ("/openapi.yaml", "/openapi.json"):
        return None
    text = OPENAPI.read_bytes()
    if path.endswith(".yaml"):
        return "application/yaml; charset=utf-8", text
    return "application/json", json.dumps(yaml.safe_load(text)).encode()


def _content_length(values: list[str]) -> int | None:
    """The body's length from the Content-Length header(s); None if malformed or conflicting."""
    lengths = {value.strip() for value in values}
    if not lengths:
        return 0
    if len(lengths) != 1:
        return None
    text = lengths.pop()
    return int(text) if text.isascii() and text.isdigit() else None


class _RouteHandler(BaseHTTPRequestHandler):
    """Answers HTTP requests by invoking the handler of the route they match."""

    router: Router
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, the body waits for the
    # client's delayed ACK of the headers (about 40 ms a response).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET  # noqa: N815

    def _dispatch(self) -> None:
        started = time.perf_counter()
        url = urlsplit(self.path)
        length = _content_length(self.headers.get_all("content-length") or [])
        if length is None:
            # Where the body ends is unknown, so the connection cannot be reused either.
            self.close_connection = True
            status = self._reply(
                400, {"content-type": "application/json"}, [], b'{"message":"Bad Request"}'
            )
            self._log(url.path, status, started)
            return
        if length > MAX_BODY:
            status = self._reply(
                413,
                {"content-type": "application/json"},
                [],
                b'{"message":"Request Entity Too Large"}',
            )
            self._log(url.path, status, started)
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client hung up before its body was complete
            self.close_connection = True
            return
        document = _openapi_document(self.command, url.path)
        found = None if document is not None else self.router.find(self.command, url.path)
        if document is not None:
            status = self._reply(200, {"content-type": document[0]}, [], document[1])
        elif found is None:
            status = self._reply(
                404, {"content-type": "application/json"}, [], b'{"message":"Not Found"}'
            )
        else:
            route, parameters = found
            status = self._invoke(route, parameters, url.path, url.query, body)
        self._log(url.path, status, started)

    def _invoke(
        self,
        route: Any,
        parameters: dict[str, str],
        path: str,
        raw_query: str,
        body: bytes,
    ) -> int:
        query: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            # API Gateway joins repeated query parameters with commas.
            query[name] = f"{query[name]},{value}" if name in query else value
        headers = {name.lower(): value for name, value in self.headers.items()}
        event = http_api_event(
            self.command, path, route.route_key, body, headers, query, parameters, raw_query
        )
        try:
            result = self.router.handler(route)(event, LambdaContext(route.function))
        except Exception as exc:
            print(f"  {route.function} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return self._reply(
                500,
                {"content-type": "application/json"},
                [],
                b'{"message":"Internal Server Error"}',
            )
        payload = result.get("body") or ""
        encoded = result.get("isBase64Encoded")
        data = base64.b64decode(payload) if encoded else payload.encode()
        return self._reply(
            int(result.get("statusCode", 200)),
            result.get("headers") or {},
            result.get("cookies") or [],
            data,
        )

    def _reply(self, status: int, headers: dict[str, str], cookies: list[str], body: bytes) -> int:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        for cookie in cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(body)))
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def _log(self, path: str, status: int, started: float) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        print(f"{self.command} {path} {status} {elapsed:.1f}ms", flush=True)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the standard per-request log; ``_log`` prints one line instead."""


def _handler_for(router: Router) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_RouteHandler,), {"router": router})


def _lock(data_dir: Path) -> IO[str]:
    """Hold ``.local/run.lock`` for the life of the process; a second run finds it taken."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "run.lock"
    while True:
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            print(
                f"promo-codes is already running ({owner}); stop it first (Ctrl-C there).",
                file=sys.stderr,
            )
            raise SystemExit(1) from None
        # A stopping run removes the file while it holds the lock: a lock taken on the file it
        # removed is worth nothing, so take the one now at that path.
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, port {os.environ.get('PORT', '')}".strip(", "))
    handle.flush()
    return handle


def _unlock(handle: IO[str]) -> None:
    """Remove the lock file, then let go of the lock (clean stops leave no run.lock)."""
    Path(handle.name).unlink(missing_ok=True)
    handle.close()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--dynamodb", default=os.environ.get("PROMO_DYNAMODB") or None)
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("PROMO_CONFIG", ROOT / "config" / "demo.yaml")),
    )
    parser.add_argument("--fresh", action="store_true", default=os.environ.get("FRESH") == "1")
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME", "promo-codes-local"))
    parser.add_argument("--data-dir", type=Path, default=LOCAL)
    args = parser.parse_args(argv)

    lock = _lock(args.data_dir)
    stack = Stack(
        args.port, args.dynamodb, args.config.resolve(), args.fresh, args.table, args.data_dir
    )
    try:
        stack.bind()
    except PortInUse as taken:
        _unlock(lock)
        print(f"promo-codes cannot start: {taken} (choose another: PORT=…)", file=sys.stderr)
        return 1

    def stop(signum: int, frame: Any) -> None:
        # Once: a second signal must not interrupt the stop that stops DynamoDB Local.
        for name in STOP_SIGNALS:
            signal.signal(name, signal.SIG_IGN)
        raise KeyboardInterrupt

    # Explicitly, for SIGINT too: a process started in the background by a script inherits
    # "ignore SIGINT", and Ctrl-C must stop the stack whatever started it. SIGHUP: the
    # terminal was closed.
    for name in STOP_SIGNALS:
        signal.signal(name, stop)
    try:
        stack.start()
        stack.serve()
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
            print("\nStopping.", flush=True)
    finally:
        for name in STOP_SIGNALS:
            signal.signal(name, signal.SIG_IGN)
        stack.stop()
        _unlock(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
