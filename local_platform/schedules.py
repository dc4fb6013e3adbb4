"""The local platform's scheduled rules: each manifest `Schedule` fires at the times its
expression names, in the platform's clock, and its function receives the scheduled event
EventBridge sends, delivered as the local bus delivers (Lambda's retries, then a dead letter).

Why the platform fires them itself: moto keeps scheduled rules and never fires them, and
neither does its EventBridge Scheduler fire a schedule (tried with moto 5.2.5: a one-time
`at(...)` schedule two seconds ahead, targeting an SQS queue, had sent nothing five seconds
later and was still listed, though created with `ActionAfterCompletion=DELETE`).

The platform's clock is the machine's, shifted by `--clock-offset` (`36h`, `2d`, `-90m`): a
schedule fires at the times it names in that clock, and the event's `time` says when, so the
reminder sweep runs as it would at that moment. With `--manual-schedules` nothing fires on its
own; every schedule fires once, at the clock's current second, when asked (`fire_all`: the
platform does it on SIGUSR1, which `Platform.fire_schedules` sends): tests run a sweep exactly
when their setup is done, with no run racing it.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from stack import schedules
from stack.manifest import Function, Schedule

log = logging.getLogger("local_platform.events")

ACCOUNT = "123456789012"
OFFSET = re.compile(r"(-)?((?:\d+[dhms])+)")
UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}

Deliver = Callable[[Function, Schedule, dict[str, Any]], None]


def parse_offset(text: str) -> timedelta:
    """`36h`, `2d`, `1d12h`, `-90m`, `0`: a shift of the platform's clock."""
    if text == "0":
        return timedelta(0)
    found = OFFSET.fullmatch(text)
    if found is None:
        raise ValueError(f"{text!r} is not an offset like 36h, 2d, 1d12h, 90m, -45s or 0")
    seconds = sum(
        int(number) * UNITS[unit] for number, unit in re.findall(r"(\d+)([dhms])", found[2])
    )
    return timedelta(seconds=-seconds if found[1] else seconds)


def rule_arn(schedule: Schedule, region: str) -> str:
    """The rule's ARN as infra names it (`tasks-<stack>-<name>`, on the default bus)."""
    return f"arn:aws:events:{region}:{ACCOUNT}:rule/tasks-local-{schedule.name}"


def scheduled_event(schedule: Schedule, at: datetime, *, region: str) -> dict[str, Any]:
    """The event EventBridge hands a scheduled rule's target (its "Scheduled Event")."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn(schedule, region)],
        "detail": {},
    }


def _machine_now() -> datetime:
    return datetime.now(UTC)


@attrs.define
class LocalScheduler:
    """Fires the schedules of `functions` on a thread of its own."""

    functions: Sequence[Function]
    deliver: Deliver
    region: str
    clock_offset: timedelta = timedelta(0)
    manual: bool = False
    machine_now: Callable[[], datetime] = _machine_now
    fired: list[tuple[str, str]] = attrs.field(factory=list)
    """(schedule name, event time) of every firing, in order."""
    _origin: datetime | None = None
    _requested: threading.Event = attrs.field(factory=threading.Event)
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        origin = self.now()
        for _, schedule in self.schedules:
            schedules.next_fire(schedule.expression, origin, origin=origin)  # Unsupported?

    @property
    def schedules(self) -> list[tuple[Function, Schedule]]:
        return [(f, schedule) for f in self.functions for schedule in f.schedules]

    def now(self) -> datetime:
        """The platform's clock: the machine's, shifted by the offset."""
        return self.machine_now() + self.clock_offset

    def start(self) -> LocalScheduler:
        self._origin = self.now()
        self._thread = threading.Thread(target=self._run, name="local-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._requested.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def fire_all(self) -> None:
        """Ask for every schedule to fire now (safe from a signal handler: sets a flag)."""
        self._requested.set()

    def fire(self, function: Function, schedule: Schedule, at: datetime) -> None:
        """One firing: the scheduled event, as of `at`, delivered to the function."""
        event = scheduled_event(schedule, at, region=self.region)
        with self._lock:
            self.fired.append((schedule.name, event["time"]))
        log.info("%s fired for %s (the platform's clock: %s)", schedule.name, function.name, at)
        self.deliver(function, schedule, event)

    def _run(self) -> None:
        origin = self._origin or self.now()
        due = {
            schedule.name: schedules.next_fire(schedule.expression, origin, origin=origin)
            for _, schedule in self.schedules
        }
        while not self._stop.is_set():
            pending = [at for at in due.values() if at is not None]
            wait = None
            if not self.manual and pending:
                wait = max((min(pending) - self.now()).total_seconds(), 0)
            requested = self._requested.wait(timeout=wait)
            if self._stop.is_set():
                return
            if requested:
                self._requested.clear()
                asked = self.now().replace(microsecond=0)
                for function, schedule in self.schedules:
                    self._safely(function, schedule, asked)
                continue
            now = self.now()
            for function, schedule in self.schedules:
                scheduled = due[schedule.name]
                if scheduled is not None and scheduled <= now:
                    self._safely(function, schedule, scheduled)
                    due[schedule.name] = schedules.next_fire(
                        schedule.expression, now, origin=origin
                    )

    def _safely(self, function: Function, schedule: Schedule, at: datetime) -> None:
        """Fire, keeping the scheduler alive whatever happens (the delivery logs and retries
        a failing function itself)."""
        try:
            self.fire(function, schedule, at)
        except Exception:
            log.exception("%s could not be fired", schedule.name)
