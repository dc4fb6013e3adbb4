"""Children that end with the platform, however the platform ends.

A clean stop (Ctrl-C, SIGTERM) stops DynamoDB Local and the moto server in order. A `kill -9`,
an OOM kill or a crash runs no Python at all, so each child also asks Linux to kill it when its
parent goes (`prctl(PR_SET_PDEATHSIG, SIGKILL)`, set between fork and exec): nothing is left
holding the ports for the next `make dev`. The sandboxes (`local_platform.sandboxes`) need no
signal: each ends when its pipe to the platform closes.

Linux sends the signal when the *thread* that started the child ends, not only the process:
start children from threads that live as long as the platform (the main thread, or DynamoDB
Local's watcher, which restarts the engine). Elsewhere than Linux this is a no-op, so each
platform also records its children under `.local/platforms/`; the next one to start stops what
a platform that is gone left running (`reclaim`). A port held by anything else is reported
with its holder (`port_holder`), never as a traceback.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import attrs

PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    function: Callable[[int, int], int] = libc.prctl
    return function


_PRCTL = _prctl()  # resolved here: the forked child only makes the call


def die_with_parent(signum: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen`: the child gets `signum` when this thread ends,
    and sends it to itself if the parent is gone already (the signal is armed too late then).
    SIGKILL for children that need no goodbye; SIGTERM for one that stops its own children
    cleanly on it (the platform itself, started by the tests and the bench)."""
    if _PRCTL is None:
        return None
    prctl, parent = _PRCTL, os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signum)
        if os.getppid() != parent:
            os.kill(os.getpid(), signum)

    return arm


# -- what a platform that did not stop left behind ----------------------------------------------


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part for part in raw.decode(errors="replace").split("\0") if part)


@attrs.frozen
class Record:
    """The children one platform process started, kept in `<directory>/<pid>.json` while it
    runs: if it dies without stopping them, the next platform finds them there."""

    directory: Path
    pid: int = attrs.field(factory=os.getpid)

    @property
    def path(self) -> Path:
        return self.directory / f"{self.pid}.json"

    def write(self, children: dict[str, int]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        entries = {
            role: {"pid": pid, "command": command_line(pid)} for role, pid in children.items()
        }
        self.path.write_text(json.dumps(entries))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def reclaim(directory: Path, log: Callable[[str], None]) -> int:
    """Stop what platforms that are gone left running (a child still alive with the command it
    was started with: a pid the system has since reused for something else is left alone);
    forget their records. Returns how many processes were stopped."""
    stopped = 0
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        if path.stem.isdigit() and alive(int(path.stem)):
            continue  # that platform still runs
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError):
            entries = {}
        for role, entry in entries.items():
            pid, command = int(entry["pid"]), str(entry["command"])
            if command and alive(pid) and command_line(pid) == command:
                os.kill(pid, signal.SIGKILL)
                stopped += 1
                log(f"stopped {role} (pid {pid}), left running by a platform that did not stop")
        path.unlink(missing_ok=True)
    return stopped


def port_holder(port: int) -> str | None:
    """Who listens on TCP `port`, as `pid N (command)`, read from /proc; None if nobody does
    or it cannot be read (another user's process, or not Linux)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        if any(link.startswith("socket:[") and link[8:-1] in inodes for link in links):
            return f"pid {entry.name} ({command_line(int(entry.name))[:120]})"
    return "a process this user cannot see"
