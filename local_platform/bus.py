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

Pattern matching covers what the manifest uses (exact values, nested keys); an unsupported
pattern form raises at start-up rather than silently matching nothing.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from handlers.manifest import EventRule, Function, Workflow

log = logging.getLogger("local_platform.bus")

Invoke = Callable[[Function, dict[str, Any]], Any]


def check_pattern(pattern: Mapping[str, Any]) -> None:
    """Refuse pattern forms `matches` does not implement (prefix, numeric, anything-but...)."""
    for key, value in pattern.items():
        if isinstance(value, Mapping):
            check_pattern(value)
        elif not isinstance(value, list) or not all(
            isinstance(v, str | int | float | bool) or v is None for v in value
        ):
            raise ValueError(f"unsupported event pattern for {key!r}: {value!r}")


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge matching for exact-value patterns: every key must match; a list of values
    matches if the event's value (or any of its values, for an array) is in it."""
    for key, expected in pattern.items():
        if key not in event:
            return False
        actual = event[key]
        if isinstance(expected, Mapping):
            if not isinstance(actual, Mapping) or not matches(expected, actual):
                return False
            continue
        values = actual if isinstance(actual, list) else [actual]
        if not any(value in expected for value in values):
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
    retry_base_s: float = 0.2
    dead_letters: list[tuple[str, dict[str, Any]]] = attrs.field(factory=list)
    """(rule name, event) pairs whose delivery failed every retry, as a rule's DLQ holds them."""
    delivered: int = 0
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _thread: threading.Thread | None = None
    _pool: ThreadPoolExecutor = attrs.field(
        factory=lambda: ThreadPoolExecutor(10, thread_name_prefix="local-bus")
    )
    _count_lock: threading.Lock = attrs.field(factory=threading.Lock)

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
                tapped = self.drain_once()
                # Wait on the inbox only when the tap was empty: that wait is the idle poll.
                self.drain_inbox(wait_s=0 if tapped else 0.1)
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
                self.stepfunctions.start_execution(
                    stateMachineArn=machine_arn, input=json.dumps(event)
                )
                log.info("started workflow %s for %s", workflow.name, event.get("detail-type"))
        with self._count_lock:
            self.delivered += 1

    def _deliver(self, function: Function, rule: EventRule, event: dict[str, Any]) -> None:
        # EventBridge retries a failed delivery (up to the rule's max_retries) with backoff,
        # then sends the event to the rule's DLQ. Locally: a few quick retries, then the list.
        attempts = min(rule.max_retries, 3) + 1
        for attempt in range(attempts):
            try:
                self.invoke(function, event)
                return
            except Exception:
                log.exception("%s failed on %s (attempt %d)", function.name, rule.name, attempt + 1)
                time.sleep(self.retry_base_s * 2**attempt)
        self.dead_letters.append((rule.name, event))
        log.error("dead-lettered %s for %s", event.get("detail-type"), rule.name)
