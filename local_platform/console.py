"""What `make dev` prints: a console for people, with the raw Lambda log lines kept aside.

By default the console shows
- one line per HTTP request (the gateway's: method, path, status, milliseconds, and the API
  Gateway request id, which the API handler logs as its correlation id);
- one line per delivered event: the function, what it got (an EventBridge detail type and
  the event's id, which the consumers log as their correlation id; or a batch of stream
  records and the invocation's request id), how long it took;
- the functions' log records (Powertools' JSON lines), one condensed line each, with their
  correlation id and any traceback;
- anything else a function writes (a `print`, the runtime's `[ERROR]` lines), as it is;
- the metrics the functions emit (EMF) and their invocations, summed per function once a
  minute when there were any, and since the start when the platform stops.

The raw lines (EMF JSON, JSON log records, the runtime's START/END/REPORT lines) always go to
`<log dir>/<function>.log`, as CloudWatch would keep them; `--verbose` prints them here too,
instead of their condensed forms.
"""

from __future__ import annotations

import collections
import json
import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import attrs

TAG_WIDTH = 9
TAGS = {
    "local_platform.gateway": "http",
    "local_platform.events": "events",
    "local_platform.bus": "events",
    "local_platform.streams": "stream",
    "local_platform.sandboxes": "lambda",
    "local_platform.urls": "url",
    "local_platform.ttl": "ttl",
}
"""Loggers and the short tag their lines get; any other logger's lines are the platform's."""

MAX_LOG_BYTES = 10 * 1024 * 1024
"""A function's log file is moved to `<function>.log.1` when it is over this at start."""

RUNTIME_LINES = ("START RequestId: ", "END RequestId: ", "REPORT RequestId: ")
STANDARD_KEYS = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "sampling_rate",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "correlation_id",
        "xray_trace_id",
        "exception",
        "exception_name",
        "stack_trace",
    }
)
"""Powertools' own keys in a log record; the others are the handler's `extra` fields."""


def _clock() -> str:
    return time.strftime("%H:%M:%S")


class LineFormatter(logging.Formatter):
    """The platform's own log records as console lines: `12:00:01 http      GET /tasks 200`."""

    def format(self, record: logging.LogRecord) -> str:
        tag = TAGS.get(record.name, "platform")
        when = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno <= logging.INFO else f"{record.levelname}: "
        text = f"{when} {tag:<{TAG_WIDTH}} {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(stream: TextIO) -> None:
    """The platform's loggers write console lines to `stream`; chatty libraries are quieted."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LineFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for chatty in ("werkzeug", "httpx", "botocore", "urllib3"):  # a line per request otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)


def describe_event(event: Mapping[str, Any]) -> tuple[str, str]:
    """What an invocation's event is, in a few words, and the id that follows it into the
    function's log (an EventBridge event's id; '' for a stream batch)."""
    records = event.get("Records")
    if isinstance(records, list):
        kinds = collections.Counter(str(r.get("eventName", "?")) for r in records)
        return "table stream: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items()), ""
    return str(event.get("detail-type", "an event")), str(event.get("id", ""))


@attrs.define
class _Window:
    """What the functions did since the last summary: invocations and summed metrics."""

    durations: dict[str, list[float]] = attrs.field(factory=lambda: collections.defaultdict(list))
    cold: collections.Counter[str] = attrs.field(factory=collections.Counter)
    metrics: dict[str, dict[tuple[str, str], list[float]]] = attrs.field(
        factory=lambda: collections.defaultdict(dict)
    )

    def lines(self) -> list[str]:
        out = []
        functions = sorted(set(self.durations) | set(self.metrics))
        width = max((len(function) for function in functions), default=0)
        for function in functions:
            parts = []
            durations = self.durations.get(function, [])
            if durations:
                plural = "s" if len(durations) != 1 else ""
                parts.append(
                    f"{len(durations)} invocation{plural}, "
                    f"median {statistics.median(durations):.0f} ms, max {max(durations):.0f} ms"
                    + (f", {self.cold[function]} cold" if self.cold[function] else "")
                )
            for (name, unit), values in sorted(self.metrics.get(function, {}).items()):
                if unit == "Count":
                    parts.append(f"{name} {sum(values):g}")
                else:
                    parts.append(f"{name} avg {statistics.fmean(values):.3g} {unit.lower()}")
            out.append(f"{function:<{width}}  " + " · ".join(parts))
        return out


@attrs.define
class Console:
    """Receives every line the functions write (`lambda_line`, the sandboxes' `log`)."""

    stream: TextIO = attrs.field(factory=lambda: sys.stdout)
    verbose: bool = False
    log_dir: Path | None = None
    interval_s: float = 60.0
    """How often the metrics summary is printed (when there was anything to sum)."""
    clock: Callable[[], str] = _clock
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    _files: dict[str, TextIO] = attrs.field(factory=dict)
    _window: _Window = attrs.field(factory=_Window)
    _total: _Window = attrs.field(factory=_Window)
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _thread: threading.Thread | None = None

    def lambda_line(self, function: str, request_id: str, line: str) -> None:
        """One raw line from `function`'s invocation `request_id`."""
        with self._lock:
            self._keep(function, line)
            shown = line if self.verbose else self._condense(function, line)
            if shown is not None:
                self._write(function, shown)

    def _condense(self, function: str, line: str) -> str | None:
        if line.startswith(RUNTIME_LINES):
            if line.startswith("REPORT"):
                self._count_report(function, line)
            return None
        if line.startswith("{"):
            try:
                document = json.loads(line)
            except ValueError:
                return line
            if isinstance(document, dict) and "_aws" in document:
                self._count_metrics(function, document)
                return None
            if isinstance(document, dict) and "level" in document and "message" in document:
                return _log_record(document)
        return line

    def _count_report(self, function: str, line: str) -> None:
        fields = dict(
            field.split(": ", 1) for field in line.split("\t") if ": " in field
        )  # "Duration: 12.30 ms" -> {"Duration": "12.30 ms"}
        if "Duration" not in fields:
            return  # a timed-out invocation: the sandbox's error line said so
        duration = float(fields["Duration"].split()[0])
        for window in (self._window, self._total):
            window.durations[function].append(duration)
            if "Init Duration" in fields:
                window.cold[function] += 1

    def _count_metrics(self, function: str, document: Mapping[str, Any]) -> None:
        for directive in document["_aws"].get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                name, unit = metric["Name"], metric.get("Unit", "None")
                value = document.get(name, [])
                values = [float(v) for v in (value if isinstance(value, list) else [value])]
                for window in (self._window, self._total):
                    window.metrics[function].setdefault((name, unit), []).extend(values)

    def _write(self, tag: str, text: str) -> None:
        self.stream.write(f"{self.clock()} {tag:<{TAG_WIDTH}} {text}\n")
        self.stream.flush()

    def _keep(self, function: str, line: str) -> None:
        if self.log_dir is None:
            return
        file = self._files.get(function)
        if file is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            path = self.log_dir / f"{function}.log"
            if path.exists() and path.stat().st_size > MAX_LOG_BYTES:
                path.replace(path.with_suffix(".log.1"))
            file = self._files[function] = path.open("a", encoding="utf-8")
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        file.write(f"{stamp}\t{line}\n")
        file.flush()

    def summary(self, *, total: bool = False) -> list[str]:
        """The summary lines of the last window (which starts again), or since the start."""
        with self._lock:
            window = self._total if total else self._window
            if not total:
                self._window = _Window()
            return window.lines()

    def _print_summary(self, heading: str, lines: list[str]) -> None:
        if lines:
            with self._lock:
                self._write("metrics", heading)
                for line in lines:
                    self._write("metrics", "  " + line)

    def start(self) -> Console:
        def run() -> None:
            while not self._stop.wait(self.interval_s):
                self._print_summary(f"in the last {self.interval_s:g} s:", self.summary())

        self._thread = threading.Thread(target=run, name="console-summary", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Print the totals since the start; close the log files."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._print_summary("since the start:", self.summary(total=True))
        with self._lock:
            for file in self._files.values():
                file.close()
            self._files.clear()


def _log_record(document: Mapping[str, Any]) -> str:
    """A Powertools log record as one line (and its traceback, if any, below it)."""
    level = str(document.get("level", "INFO"))
    extras = " ".join(
        f"{key}={json.dumps(value, default=str)}"
        for key, value in document.items()
        if key not in STANDARD_KEYS
    )
    correlation = document.get("correlation_id") or document.get("function_request_id")
    text = f"{level} {document['message']}"
    if extras:
        text += f"  {extras}"
    if correlation:
        text += f"  [{correlation}]"
    if document.get("exception"):
        text += "\n" + "\n".join("    " + line for line in str(document["exception"]).splitlines())
    return text
