"""Each function's sandboxes, as worker processes: what Lambda's execution environments are.

A sandbox is a process of its own (started with `spawn`: a fresh interpreter, nothing inherited
from the platform's modules). It gets the function's environment, imports the handler's module
(its cold start, timed and logged), and then runs one invocation at a time, keeping its
module state (clients, caches, Powertools' pending metrics) between them, as a warm Lambda
sandbox does. Sandboxes are started on demand, up to `concurrency` per function; an invocation
that finds none idle and the limit reached waits for one.

An invocation that outlives the function's timeout gets its sandbox killed ("Task timed
out"), and a sandbox that dies (a crash, `os._exit`, the OOM killer) is replaced by a new
one at the next invocation: both as on Lambda. A sandbox ignores Ctrl-C (the platform stops
it), and ends by itself when the platform is gone (its pipe closes).

What a handler writes (print, Powertools' JSON log lines and EMF metrics, tracebacks) goes, a
line at a time as it is written, to the platform's `log` callback with the function and the
request id, framed by the `START`/`END`/`REPORT` lines the Lambda runtime writes to
CloudWatch (duration, memory, init duration): the platform's console decides what to show.
"""

from __future__ import annotations

import importlib
import io
import logging
import math
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar

import attrs

from local_platform.lambda_runtime import LambdaContext
from local_platform.meter import Meter, WireMeter
from stack.manifest import Function

log = logging.getLogger("local_platform.sandboxes")

GRACE_S = 0.5
"""How long past the function's deadline the platform waits before it kills the sandbox (the
runtime's own timer is not exact either)."""


INIT_TIMEOUT_S = 60.0
"""How long a new sandbox may take to import its handler. Lambda allows 10 s of init; a laptop
or CI runner starting several interpreters at once on two cores can need more, and a slow
init here is not the handler's fault."""


class SandboxError(Exception):
    """The handler raised: its exception's type, message and traceback, from the sandbox."""

    @property
    def brief(self) -> str:
        """The first line: `function: Type: message`, without the sandbox's traceback."""
        return str(self).split("\n", 1)[0]


class SandboxTimeout(SandboxError):
    """The invocation ran past the function's timeout; its sandbox was killed."""


class SandboxDied(SandboxError):
    """The sandbox exited during the invocation (a crash); the next one gets a new sandbox."""


LogLine = Callable[[str, str, str], None]
"""`log(function name, request id, line)`: one line the function wrote (no newline)."""


def print_log_line(function: str, request_id: str, line: str) -> None:
    """The default `log`: the raw line on the platform's stdout, as the runtime writes it."""
    print(line, flush=True)


class _LineWriter(io.TextIOBase):
    """The sandbox's stdout and stderr: each complete line is sent to the platform at once (a
    handler that then hangs or crashes has still been heard)."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None]) -> None:
        self._send = send
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._send(("log", line))
        return len(text)

    def flush(self) -> None:
        if self._partial:
            line, self._partial = self._partial, ""
            self._send(("log", line))


def _serve(
    connection: Connection,
    module: str,
    attribute: str,
    environ: dict[str, str],
    metered: bool = False,
) -> None:
    """The sandbox's process: serve until the platform is gone (its end of the pipe closes,
    whether it stopped or was killed), then end quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _serve_events(connection, module, attribute, environ, metered)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return


def _serve_events(
    connection: Connection, module: str, attribute: str, environ: dict[str, str], metered: bool
) -> None:
    """Import the handler, then run each event the platform sends. `metered`: count what it
    asks of AWS (`local_platform.meter`), installed before the handler makes a client."""
    os.environ.clear()
    os.environ.update(environ)
    wire = WireMeter.install() if metered else None
    lock = threading.Lock()  # a handler's own threads may write too

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            connection.send(message)

    sys.stdout = sys.stderr = _LineWriter(send)  # before the import: loggers keep the stream
    started = time.perf_counter()
    try:
        handler: Callable[[dict[str, Any], Any], Any] = getattr(
            importlib.import_module(module), attribute
        )
    except BaseException as error:  # an init error fails every invocation, as on Lambda
        failure: tuple[Any, ...] = (
            "error",
            type(error).__name__,
            str(error),
            traceback.format_exc(),
            {},
        )
        _report_error(error)
        send(("init-failed",))
        while True:
            connection.recv()
            send(failure)
    init_ms = (time.perf_counter() - started) * 1000
    send(("ready", init_ms))
    while True:
        event, context = connection.recv()
        started = time.perf_counter()
        try:
            reply: tuple[Any, ...] = ("ok", handler(event, context))
        except Exception as error:
            reply = ("error", type(error).__name__, str(error), traceback.format_exc())
            _report_error(error)
        sys.stdout.flush()
        report: dict[str, Any] = {
            "duration_ms": (time.perf_counter() - started) * 1000,
            # Linux reports kilobytes.
            "max_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        }
        if wire is not None:  # the first invocation's include what the init asked
            report["aws"] = wire.take()
        send((*reply, report))


def _report_error(error: BaseException) -> None:
    """What the Python runtime logs for an error the handler (or its init) raised."""
    sys.stderr.write(f"[ERROR] {type(error).__name__}: {error}\n{traceback.format_exc()}")
    sys.stderr.flush()


@attrs.define
class Sandbox:
    process: BaseProcess
    connection: Connection
    init_ms: float | None = None

    def stop(self) -> None:
        self.connection.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


@attrs.define
class FunctionSandboxes:
    """One function's sandboxes: the idle ones, and how many exist."""

    function: Function
    environ: dict[str, str]
    concurrency: int
    log: LogLine = print_log_line
    meter: Meter | None = None
    """Where each invocation's record goes (`local_platform.meter`), when metering."""
    _idle: list[Sandbox] = attrs.field(factory=list)
    _log_bytes: dict[str, int] = attrs.field(factory=dict)
    _count: int = 0
    _available: threading.Condition = attrs.field(factory=threading.Condition)
    _context: Any = attrs.field(factory=lambda: multiprocessing.get_context("spawn"))

    def invoke(self, event: dict[str, Any], context: LambdaContext) -> Any:
        if self.meter is not None:  # in flight from here (a cold start writes nothing for a while)
            self.meter.record(
                "begin", function=self.function.name, request_id=context.aws_request_id
            )
        try:
            sandbox = self._acquire()
            kept: Sandbox | None = sandbox
            try:
                return self._run(sandbox, event, context)
            except (SandboxTimeout, SandboxDied):
                sandbox.stop()
                kept = None  # the next invocation gets a new sandbox
                raise
            finally:
                self._release(kept)
        finally:
            if self.meter is not None:
                # A timed-out or crashed invocation has no report to take its log bytes.
                self._log_bytes.pop(context.aws_request_id, None)
                self.meter.record(
                    "end", function=self.function.name, request_id=context.aws_request_id
                )

    def _run(self, sandbox: Sandbox, event: dict[str, Any], context: LambdaContext) -> Any:
        name, request_id = self.function.name, context.aws_request_id
        init_ms: float | None = None
        try:
            if sandbox.init_ms is None:  # a new sandbox: wait for its cold start
                reply = self._receive(sandbox, request_id, INIT_TIMEOUT_S)
                if reply is None:
                    raise SandboxTimeout(f"{name}: init did not end within {INIT_TIMEOUT_S:g} s")
                if reply[0] == "ready":
                    sandbox.init_ms = init_ms = float(reply[1])
                    log.info("%s: new sandbox, init %.0f ms", name, sandbox.init_ms)
                else:
                    sandbox.init_ms = 0.0  # its init failed: it answers every event with that
            # The function's timeout runs from here, as Lambda's does: init is not part of it.
            timeout_ms = self.function.timeout_s * 1000
            context = attrs.evolve(context, deadline_ms=int(time.time() * 1000) + timeout_ms)
            self.log(name, request_id, f"START RequestId: {request_id} Version: $LATEST")
            sandbox.connection.send((event, context))
            reply = self._receive(sandbox, request_id, self.function.timeout_s + GRACE_S)
            if reply is None:
                log.error("%s: Task timed out after %d seconds", name, self.function.timeout_s)
                self._end(request_id, timeout_ms, None, init_ms)
                raise SandboxTimeout(f"{name}: Task timed out after {self.function.timeout_s} s")
        except (EOFError, OSError) as error:
            sandbox.process.join(timeout=1)
            code = sandbox.process.exitcode
            raise SandboxDied(f"{name}: the sandbox exited (code {code}): {error!r}") from None
        *outcome, report = reply
        self._end(request_id, report.get("duration_ms"), report.get("max_memory_mb"), init_ms)
        if self.meter is not None:
            self._record(request_id, report, init_ms, failed=outcome[0] != "ok")
        if outcome[0] == "ok":
            return outcome[1]
        _, kind, message, trace = outcome
        raise SandboxError(f"{name}: {kind}: {message}\n{trace}")

    def _receive(
        self, sandbox: Sandbox, request_id: str, timeout_s: float
    ) -> tuple[Any, ...] | None:
        """The sandbox's next reply, passing on the lines it writes meanwhile; None if none
        came within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while sandbox.connection.poll(max(0.0, deadline - time.monotonic())):
            message: tuple[Any, ...] = sandbox.connection.recv()
            if message[0] != "log":
                return message
            if self.meter is not None:  # CloudWatch Logs bills each event's bytes
                self._log_bytes[request_id] = self._log_bytes.get(request_id, 0) + len(
                    message[1].encode()
                )
            self.log(self.function.name, request_id, message[1])
        return None

    def _end(
        self,
        request_id: str,
        duration_ms: float | None,
        max_memory_mb: int | None,
        init_ms: float | None,
    ) -> None:
        """The runtime's END and REPORT lines, in CloudWatch's format."""
        name = self.function.name
        self.log(name, request_id, f"END RequestId: {request_id}")
        fields = [f"REPORT RequestId: {request_id}"]
        if duration_ms is not None:
            fields += [
                f"Duration: {duration_ms:.2f} ms",
                f"Billed Duration: {math.ceil(duration_ms + (init_ms or 0))} ms",
            ]
        fields.append(f"Memory Size: {self.function.memory_mb} MB")
        if max_memory_mb is not None:
            fields.append(f"Max Memory Used: {max_memory_mb} MB")
        if init_ms is not None:
            fields.append(f"Init Duration: {init_ms:.2f} ms")
        if max_memory_mb is None:
            fields.append("Status: timeout")
        self.log(name, request_id, "\t".join(fields))

    def _record(
        self, request_id: str, report: dict[str, Any], init_ms: float | None, *, failed: bool
    ) -> None:
        assert self.meter is not None
        duration_ms = float(report["duration_ms"])
        self.meter.record(
            "invocation",
            function=self.function.name,
            request_id=request_id,
            memory_mb=self.function.memory_mb,
            duration_ms=round(duration_ms, 3),
            # Lambda bills each invocation's duration rounded up to the millisecond.
            billed_ms=math.ceil(duration_ms),
            init_ms=None if init_ms is None else round(init_ms, 3),
            log_bytes=self._log_bytes.pop(request_id, 0),
            failed=failed,
            aws=report.get("aws", {}),
        )

    def _acquire(self) -> Sandbox:
        with self._available:
            while not self._idle and self._count >= self.concurrency:
                self._available.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return self._start()
        except BaseException:
            self._release(None)
            raise

    def _release(self, sandbox: Sandbox | None) -> None:
        with self._available:
            if sandbox is None:
                self._count -= 1
            else:
                self._idle.append(sandbox)
            self._available.notify()

    def _start(self) -> Sandbox:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(
                theirs,
                self.function.module,
                self.function.attribute,
                self.environ,
                self.meter is not None,
            ),
            name=f"sandbox-{self.function.name}",
            daemon=True,
        )
        process.start()
        theirs.close()
        return Sandbox(process=process, connection=ours)

    def stop(self) -> None:
        with self._available:
            idle, self._idle = self._idle, []
        for sandbox in idle:
            sandbox.stop()

    @property
    def sandboxes(self) -> int:
        with self._available:
            return self._count


@attrs.define
class Sandboxes:
    """Every function's sandboxes; called as the gateway's, the bus's and the stream poller's
    `invoke(function, event, context)`."""

    environment: Callable[[Function], Mapping[str, str]]
    """The function's own environment (the manifest's variables, resolved)."""
    enforces_timeout: ClassVar[bool] = True
    """The function's timeout is this runtime's to enforce (from the end of init), not the
    caller's: the gateway then only applies API Gateway's integration timeout."""
    concurrency: int = 8
    log: LogLine = print_log_line
    """Where the lines the functions write go (the platform's console)."""
    meter: Meter | None = None
    """Where each invocation's record goes, when the platform meters (`--meter`)."""
    _functions: dict[str, FunctionSandboxes] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def __call__(self, function: Function, event: dict[str, Any], context: LambdaContext) -> Any:
        return self.of(function).invoke(event, context)

    def of(self, function: Function) -> FunctionSandboxes:
        with self._lock:
            if function.name not in self._functions:
                environ = {**os.environ, **self.environment(function)}
                self._functions[function.name] = FunctionSandboxes(
                    function, environ, self.concurrency, self.log, self.meter
                )
            return self._functions[function.name]

    def stop(self) -> None:
        with self._lock:
            functions = list(self._functions.values())
        for sandboxes in functions:
            sandboxes.stop()
