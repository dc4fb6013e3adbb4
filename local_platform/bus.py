"""The local event bus: moto's EventBridge, routed with the manifest's own patterns.

Everything that AWS would put on the bus goes to moto's EventBridge here too: the stream
handler's domain events (through the real `EventBridgePublisher`) and the approval state
machine's events (moto's Step Functions executor runs the real definition and its
`events:putEvents` integrations). The events reach this dispatcher two ways: the handlers'
through the platform's EventBridge relay (`local_platform.events_relay`), which hands every
event moto accepted to `inbox`; the state machine's through a rule copying them to an SQS queue
(the tap). The dispatcher delivers each event the way the deployed rules would: to every
manifest function whose `EventRule` pattern matches (retried, then dead-lettered), and to every
workflow whose `started_by` pattern matches (StartExecution).

Pattern matching covers what the manifest uses (exact values, nested keys, prefix and exists,
which the stream's Lambda filters use too: `local_platform.streams`); an unsupported pattern
form raises at start-up rather than silently matching nothing.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from local_platform.sandboxes import SandboxError
from stack.manifest import ASYNC_RETRIES, EventRule, Function, Schedule, Workflow

log = logging.getLogger("local_platform.bus")

Invoke = Callable[[Function, dict[str, Any]], Any]

# EventBridge invokes a Lambda target asynchronously; when the function fails, Lambda retries
# the event up to twice (the manifest's ASYNC_RETRIES), one minute and then two minutes later,
# then sends it to the on-failure destination (our rule's DLQ). The local bus keeps that schedule.
LAMBDA_ASYNC_RETRY_DELAYS_S = (60.0, 120.0)[:ASYNC_RETRIES]


OPERATORS = frozenset({"prefix", "exists"})
"""The content filters `matches` implements besides exact values: `{"prefix": "..."}` (a string
value starting so) and `{"exists": true|false}` (on a leaf: the key present, or absent with any
of its parents), as EventBridge defines them (EventBridge User Guide, "Comparison operators
for use in event patterns": prefix matching, exists matching); Lambda's event filtering uses
the same syntax (the Lambda Developer Guide's "Filter rule syntax")."""


def _operator(value: Any) -> bool:
    if not isinstance(value, Mapping) or len(value) != 1:
        return False
    ((name, argument),) = value.items()
    return (name == "prefix" and isinstance(argument, str)) or (
        name == "exists" and isinstance(argument, bool)
    )


OR = "$or"
"""`{"$or": [pattern, ...]}`: the event matches if it matches any of them (EventBridge User
Guide, "Comparison operators for use in event patterns": "Or" matching, `$or`)."""


def check_pattern(pattern: Mapping[str, Any]) -> None:
    """Refuse pattern forms `matches` does not implement (numeric, anything-but, suffix...)."""
    for key, value in pattern.items():
        if key == OR:
            if not isinstance(value, list) or not value:
                raise ValueError(f"$or takes a list of patterns, not {value!r}")
            for alternative in value:
                if not isinstance(alternative, Mapping):
                    raise ValueError(f"$or takes a list of patterns, not {value!r}")
                check_pattern(alternative)
        elif isinstance(value, Mapping):
            check_pattern(value)
        elif not isinstance(value, list) or not all(
            isinstance(v, str | int | float | bool) or v is None or _operator(v) for v in value
        ):
            raise ValueError(f"unsupported event pattern for {key!r}: {value!r}")


_ABSENT = object()


def _leaf_matches(expected: list[Any], actual: Any) -> bool:
    """Whether a leaf's value (`_ABSENT`: the key is not there) matches any of `expected`."""
    for want in expected:
        if isinstance(want, Mapping):
            ((name, argument),) = want.items()
            if name == "exists":
                present = actual is not _ABSENT and not isinstance(actual, Mapping)
                if present is argument:
                    return True
                continue
            values = actual if isinstance(actual, list) else [actual]
            if any(isinstance(v, str) and v.startswith(argument) for v in values):  # prefix
                return True
        elif actual is not _ABSENT:
            values = actual if isinstance(actual, list) else [actual]
            if want in values:
                return True
    return False


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge matching: every key must match; a nested pattern matches the event's object
    there (an absent one as empty, so only `exists: false` can match in it); a list matches if
    the event's value (or any of its values, for an array) is one of its values or satisfies
    one of its `OPERATORS`; `$or` matches if any of its patterns does."""
    for key, expected in pattern.items():
        if key == OR:
            if not any(matches(alternative, event) for alternative in expected):
                return False
            continue
        actual = event.get(key, _ABSENT)
        if isinstance(expected, Mapping):
            inner = {} if actual is _ABSENT else actual
            if not isinstance(inner, Mapping) or not matches(expected, inner):
                return False
            continue
        if not _leaf_matches(expected, actual):
            return False
    return True


@attrs.define
class LocalBus:
    """Drains the tap queue and delivers events as the deployed rules would."""

    sqs: Any
    stepfunctions: Any
    queue_url: str
    functions: Sequence[Function]
    workflows: Mapping[str, tuple[Workflow, str]]  # name -> (workflow, state machine ARN)
    invoke: Invoke
    inbox: queue.Queue[dict[str, Any]] = attrs.field(factory=queue.Queue)
    """Events handed over directly (by the EventBridge relay), delivered like tapped ones."""
    retry_delays_s: tuple[float, ...] = LAMBDA_ASYNC_RETRY_DELAYS_S
    """Seconds before each retry of a failed delivery; when they are used up, a dead letter."""
    dead_letters: list[tuple[str, dict[str, Any]]] = attrs.field(factory=list)
    """(rule name, event) pairs whose delivery failed every retry, as a rule's DLQ holds them."""
    delivered: int = 0
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _thread: threading.Thread | None = None
    _pool: ThreadPoolExecutor = attrs.field(
        factory=lambda: ThreadPoolExecutor(10, thread_name_prefix="local-bus")
    )
    _count_lock: threading.Lock = attrs.field(factory=threading.Lock)
    _retries: list[tuple[float, int, Function, EventRule | Schedule, dict[str, Any], int]] = (
        attrs.field(factory=list)
    )
    """A heap of scheduled retries: (due, sequence, function, rule, event, attempt)."""
    _sequence: Iterator[int] = attrs.field(factory=itertools.count)

    def __attrs_post_init__(self) -> None:
        for function in self.functions:
            for rule in function.rules:
                check_pattern(rule.pattern)
        for workflow, _ in self.workflows.values():
            check_pattern(workflow.started_by.pattern)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="local-bus", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.drain_once() | bool(self.retry_due())
                # Wait on the inbox only when there was nothing else: that is the idle poll.
                self.drain_inbox(wait_s=0 if busy else 0.1)
            except Exception:  # keep the bus alive through an emulator hiccup
                log.exception("the local bus failed to drain its queue")
                self._stop.wait(1)

    def drain_once(self) -> bool:
        """Deliver what the tap queue holds now; True if there was anything.

        The events of one receive are delivered concurrently, as EventBridge invokes targets
        concurrently: consumers are idempotent and do not depend on order.
        """
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        list(self._pool.map(self._handle, messages))
        return bool(messages)

    def drain_inbox(self, wait_s: float = 0, limit: int = 100) -> int:
        """Deliver up to `limit` events from the inbox, concurrently; wait up to `wait_s` for
        the first. Returns how many were delivered."""
        try:
            events = [self.inbox.get(timeout=wait_s) if wait_s else self.inbox.get_nowait()]
        except queue.Empty:
            return 0
        while len(events) < limit:
            try:
                events.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        list(self._pool.map(self.dispatch, events))
        return len(events)

    def retry_due(self, now: float | None = None) -> int:
        """Make the retries that are due (concurrently); how many there were."""
        now = time.monotonic() if now is None else now
        due = []
        with self._count_lock:
            while self._retries and self._retries[0][0] <= now:
                due.append(heapq.heappop(self._retries))
        list(self._pool.map(lambda r: self._deliver(r[2], r[3], r[4], r[5]), due))
        return len(due)

    @property
    def pending_retries(self) -> int:
        with self._count_lock:
            return len(self._retries)

    @property
    def backlog(self) -> int:
        """Events handed over but not yet delivered (the inbox's; the tap's is moto's)."""
        return self.inbox.qsize()

    def _handle(self, message: Mapping[str, Any]) -> None:
        self.dispatch(json.loads(message["Body"]))
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def dispatch(self, event: dict[str, Any]) -> None:
        for function in self.functions:
            for rule in function.rules:
                if matches(rule.pattern, event):
                    self._deliver(function, rule, event)
        for workflow, machine_arn in self.workflows.values():
            if matches(workflow.started_by.pattern, event):
                self._start(workflow, machine_arn, event)
        with self._count_lock:
            self.delivered += 1

    def _start(self, workflow: Workflow, machine_arn: str, event: dict[str, Any]) -> None:
        """StartExecution, named after the event: a redelivered event finds its execution
        already there (moto, unlike AWS, does not invent a name when none is given)."""
        name = str(event.get("id") or uuid.uuid4())
        try:
            self.stepfunctions.start_execution(
                stateMachineArn=machine_arn, name=name, input=json.dumps(event)
            )
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code")
            if code != "ExecutionAlreadyExists":
                raise
            log.info("workflow %s already started for event %s", workflow.name, name)
            return
        log.info("%s (workflow) ← %s  [%s]", workflow.name, event.get("detail-type"), name)

    def deliver_scheduled(
        self, function: Function, schedule: Schedule, event: dict[str, Any]
    ) -> None:
        """A scheduled rule's event (`local_platform.schedules`), delivered as a rule's are:
        Lambda's retries, then a dead letter under the schedule's name."""
        self._deliver(function, schedule, event)

    def _deliver(
        self,
        function: Function,
        rule: EventRule | Schedule,
        event: dict[str, Any],
        attempt: int = 0,
    ) -> None:
        try:
            self.invoke(function, event)
            return
        except SandboxError as error:  # the function's own log has the traceback
            log.error(
                "%s failed on %s (attempt %d): %s",
                function.name,
                rule.name,
                attempt + 1,
                error.brief,
            )
        except Exception:
            log.exception("%s failed on %s (attempt %d)", function.name, rule.name, attempt + 1)
        if attempt < len(self.retry_delays_s):
            delay = self.retry_delays_s[attempt]
            log.warning(
                "%s will be retried in %g s (attempt %d of %d), as Lambda retries",
                function.name,
                delay,
                attempt + 2,
                len(self.retry_delays_s) + 1,
            )
            retry = (time.monotonic() + delay, next(self._sequence), function, rule, event)
            with self._count_lock:
                heapq.heappush(self._retries, (*retry, attempt + 1))
            return
        with self._count_lock:
            self.dead_letters.append((rule.name, event))
        log.error("dead-lettered %s for %s", event.get("detail-type"), rule.name)
