"""Run the local platform as a user does, in a subprocess, and drive it over HTTP.

Shared by the e2e tests and `make bench`.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import boto3
import httpx
from botocore.config import Config

from local_platform.auth import DevIssuer
from local_platform.children import die_with_parent
from local_platform.dynamodb_local import free_port
from stack.manifest import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
URL_LINE = re.compile(r"^  (\S+) URL\s+(http://\S+)")


@attrs.define
class Platform:
    url: str
    process: subprocess.Popen[str]
    issuer: DevIssuer
    log_dir: Path
    """Where the platform keeps the functions' raw log lines (`<function>.log`); removed at
    `stop` when `start_platform` made it."""
    output: collections.deque[str] = attrs.field(factory=lambda: collections.deque(maxlen=2000))
    """The platform's last lines of output, drained continuously: an unread pipe fills up
    (64 KiB) and would block the platform's logging, and with it every request."""
    _reader: threading.Thread | None = attrs.field(default=None, repr=False)
    _own_log_dir: bool = False
    clock_offset: timedelta = timedelta(0)
    """How far the platform's clock is from the machine's (its `--clock-offset`)."""
    lines_read: int = 0
    """Lines of output read so far (`output` keeps only the last ones)."""
    banner: list[str] = attrs.field(factory=list)
    """Every line up to `==> ready`, kept for the platform's life (a long run pushes them out of
    `output`): where the tests read the platform's endpoints."""

    def drain(self) -> None:
        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                text = line.rstrip("\n")
                if not any(seen.startswith("==> ready") for seen in self.banner[-1:]):
                    self.banner.append(text)
                self.output.append(text)
                self.lines_read += 1

        self._reader = threading.Thread(target=read, name="platform-output", daemon=True)
        self._reader.start()

    urls: dict[str, str] = attrs.field(factory=dict)
    """Each Function URL the platform serves, by function name, read from its banner
    (`  download URL http://127.0.0.1:N   (...)`) once it answers."""

    def banner_line(self, label: str) -> str:
        """The banner's line for `label` (`  EventBridge  http://...`); KeyError if none."""
        for line in self.banner:
            if line.startswith(f"  {label}"):
                return line
        raise KeyError(f"the platform's banner has no {label!r} line")

    def endpoint(self, label: str) -> str:
        """The first URL on the banner's line for `label` (`S3, bus, SFN`: the moto server)."""
        found = re.search(r"http://127\.0\.0\.1:\d+", self.banner_line(label))
        if found is None:
            raise KeyError(f"the banner's {label!r} line names no URL")
        return found.group(0)

    def moto_client(self, service: str) -> Any:
        """A boto3 client of the platform's moto server (S3, the bus, Step Functions, SNS, ...:
        the banner's `S3, bus, SFN` line), with the local credentials."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint("S3, bus, SFN"),
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(proxies={}),
        )

    def read_urls(self) -> None:
        for line in list(self.banner):
            match = URL_LINE.match(line)
            if match:
                self.urls[match.group(1)] = match.group(2)

    def token(self, user: str, *groups: str) -> str:
        return self.issuer.mint(user, groups)

    def client(self, user: str | None = None, *groups: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user, *groups)}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)

    def dynamodb_local_pid(self) -> int | None:
        """The pid of the DynamoDB Local JVM the platform runs now (None while it has none)."""
        for pid, argv in child_processes(self.process.pid).items():
            if any(arg.endswith("DynamoDBLocal.jar") for arg in argv):
                return pid
        return None

    def lines_since(self, mark: int) -> list[str]:
        """The lines of output read after `mark` (a `lines_read`), as far as `output` keeps."""
        lines = list(self.output)
        return lines[len(lines) - min(self.lines_read - mark, len(lines)) :]

    def fire_schedules(self, timeout: float = 60) -> list[str]:
        """Fire every scheduled rule once, now in the platform's clock (SIGUSR1), and wait
        until each has been delivered (its function's console line) or has failed; return
        those lines. With `--manual-schedules`, the only runs are the ones asked for."""
        scheduled = [(f.name, s.name) for f in FUNCTIONS for s in f.schedules]
        mark = self.lines_read
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines_since(mark)
            done = [
                line
                for function, schedule in scheduled
                for line in lines
                if f"{function} ← Scheduled Event" in line or f"failed on {schedule}" in line
            ]
            if len(done) >= len(scheduled):
                return done
            time.sleep(0.05)
        raise TimeoutError(f"the schedules did not run within {timeout} s:\n" + "\n".join(lines))

    def stop(self) -> int:
        """Ctrl-C, as a developer would; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self._own_log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        return self.process.returncode


def child_processes(parent: int) -> dict[int, list[str]]:
    """The live children of process `parent` and their argv, read from Linux's /proc."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # exited while we looked
            continue
        # Fields after the parenthesised command name: state, ppid, ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            children[int(entry.name)] = [arg for arg in argv if arg]
    return children


def start_platform(
    *extra: str,
    dynamodb_port: int = 0,
    db_path: Path | None = None,
    log_dir: Path | None = None,
    clock_offset: timedelta = timedelta(0),
) -> Platform:
    """Start `python -m local_platform` on free ports (in memory unless `db_path`; the
    functions' log files in `log_dir`, else in a temporary directory; its clock
    `clock_offset` from the machine's); wait for /health."""
    port = free_port()
    own_log_dir = log_dir is None
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="tasks-platform-logs-"))
    storage = ["--db-path", str(db_path)] if db_path is not None else ["--in-memory"]
    command = [
        sys.executable,
        "-m",
        "local_platform",
        *storage,
        "--port",
        str(port),
        "--dynamodb-port",
        str(dynamodb_port),
        "--s3-port",
        "0",
        "--url-port-base",
        "0",
        "--log-dir",
        str(log_dir),
        # One argument with `=`: argparse would take a separate `-90s` for an option.
        f"--clock-offset={'-' if clock_offset < timedelta(0) else ''}"
        f"{int(abs(clock_offset).total_seconds())}s",
        *extra,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603 - this interpreter, our module, fixed args
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # If the test run or the bench dies (a timeout, Ctrl-C twice, a crash), the platform
        # gets SIGTERM and stops its own children, as `make dev` does on Ctrl-C.
        preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509 - one prctl call
    )
    platform = Platform(
        url=f"http://127.0.0.1:{port}",
        process=process,
        issuer=DevIssuer(),
        log_dir=log_dir,
        own_log_dir=own_log_dir,
        clock_offset=clock_offset,
    )
    platform.drain()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            platform.stop()
            raise RuntimeError("the local platform exited:\n" + "\n".join(platform.output))
        try:
            if httpx.get(f"{platform.url}/health", timeout=1, trust_env=False).status_code == 200:
                while not any(line.startswith("==> ready") for line in list(platform.output)):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)  # the banner was printed; the reader may lag behind
                platform.read_urls()
                return platform
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    platform.stop()
    raise RuntimeError("the local platform did not answer /health within 60 s")
