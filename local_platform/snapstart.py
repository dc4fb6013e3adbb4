"""SnapStart as this machine can play it: the runtime's hook runner, and a restore simulated by
forking an initialised process. For the tests (tests/handlers/test_snapstart.py) and the bench
(bench/restore.py); the platform's sandboxes do not use SnapStart.

Lambda's Python runtime (awslambdaric), when AWS_LAMBDA_INITIALIZATION_TYPE is `snap-start`,
imports the handler module, runs the before-snapshot hooks (last registered first, emptying the
registry), snapshots the microVM and, in each environment restored from it, runs the
after-restore hooks (in registration order) before waiting for the first invocation.
`run_before_snapshot` and `run_after_restore` do what its `lambda_runtime_hooks_runner` does.

`fork_restore` stands in for one restore: `os.fork()` copies the initialised process, as a
restore copies the snapshot's memory. What a fork does that a restore does not is undone where it
matters here: CPython reseeds `random` in a forked child (an at-fork handler), which would hide
exactly the shared state the after-restore hook must fix, so the child gets the parent's state
back first. What a fork cannot show: a restore also resumes the kernel (its RNG state, its
clock) and pages the snapshot's memory in from Lambda's cache; a fork shares the running kernel
and copies pages locally.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import traceback
from collections.abc import Callable
from multiprocessing import Pipe
from multiprocessing.connection import Connection

import attrs
from snapshot_restore_py import get_after_restore, get_before_snapshot


def run_before_snapshot() -> None:
    """The registered before-snapshot hooks, last registered first; the registry is emptied."""
    hooks = get_before_snapshot()
    while hooks:
        function, args, kwargs = hooks.pop()
        function(*args, **kwargs)


def run_after_restore() -> None:
    """The registered after-restore hooks, in registration order."""
    for function, args, kwargs in get_after_restore():
        function(*args, **kwargs)


@attrs.define
class Restore:
    """A restore running in a forked child: talk to it over `connection` (pickled objects)."""

    pid: int
    connection: Connection

    def receive(self) -> object:
        """The child's next message; a child that failed raises its traceback here."""
        message = self.connection.recv()
        if isinstance(message, RestoreFailed):
            raise message
        return message

    def send(self, message: object) -> None:
        self.connection.send(message)

    def wait(self) -> int:
        """Wait for the child to end; its exit status."""
        _, status = os.waitpid(self.pid, 0)
        self.connection.close()
        return os.waitstatus_to_exitcode(status)


class RestoreFailed(RuntimeError):
    """What a restored child raised, with its traceback as text."""


def fork_restore(work: Callable[[Connection], None], *, hooks: bool = True) -> Restore:
    """Fork this (initialised) process as one restore of its snapshot: the child puts back the
    parent's `random` state, runs the after-restore hooks (unless `hooks` is False: what a
    restore would be without them), then `work(connection)`, and exits.

    The parent must not have other threads running (they do not survive a fork).
    """
    state = random.getstate()
    parent_end, child_end = Pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the restored container
        code = 0
        try:
            parent_end.close()
            random.setstate(state)  # undo CPython's at-fork reseed: a restore runs none
            if hooks:
                run_after_restore()
            work(child_end)
        except BaseException:
            code = 1
            with contextlib.suppress(OSError):  # the parent is gone: nothing to tell
                child_end.send(RestoreFailed(traceback.format_exc()))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    child_end.close()
    return Restore(pid=pid, connection=parent_end)
