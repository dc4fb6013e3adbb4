"""Children that end with the platform, however the platform ends.

A clean stop (Ctrl-C, SIGTERM) stops DynamoDB Local and the moto server in order. A `kill -9`,
an OOM kill or a crash runs no Python at all, so each child also asks Linux to kill it when its
parent goes (`prctl(PR_SET_PDEATHSIG, SIGKILL)`, set between fork and exec): nothing is left
holding the ports for the next `make dev`. The sandboxes (`local_platform.sandboxes`) need no
signal: each ends when its pipe to the platform closes.

Linux sends the signal when the *thread* that started the child ends, not only the process:
start children from threads that live as long as the platform (the main thread, or DynamoDB
Local's watcher, which restarts the engine). Elsewhere than Linux this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

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


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen`: the child gets SIGKILL when this thread ends,
    and kills itself if the parent is gone already (the signal is armed too late then)."""
    if _PRCTL is None:
        return None
    prctl, parent = _PRCTL, os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return arm
