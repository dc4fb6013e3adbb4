"""The local platform's EventBridge endpoint: a relay in front of moto's EventBridge.

The handlers publish with the real `EventBridgePublisher` (boto3 `PutEvents`) to this endpoint.
Every request goes on to moto unchanged and moto's answer comes back unchanged, so validation,
`FailedEntryCount` and event ids are moto's. Each entry moto accepted for the platform's bus is
also put, as the event EventBridge would deliver, in `inbox`, which the local bus drains.

Why not let the bus's rules copy these events to an SQS queue, as it does for the approval
workflow's events? Measured on a 2-core machine: moto's SQS scans its whole queue on every send
and receive, so with a few thousand events queued (5,000 quick creates) delivery fell to 10-20
events/s and moto's process spent 70% of its time in those scans. The workflow's events are
few and come from moto's own Step Functions executor, which this relay cannot see; they still
go through the SQS tap.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import httpx

log = logging.getLogger("local_platform.events")

PUT_EVENTS = "AWSEvents.PutEvents"
ACCOUNT = "123456789012"
# Hop-by-hop or recomputed headers: not forwarded either way.
# (The body is relayed as httpx decoded it, hence no Content-Encoding either.)
SKIPPED = {
    "host",
    "content-length",
    "content-encoding",
    "connection",
    "transfer-encoding",
    "keep-alive",
}


def bus_name_of(entry: dict[str, Any]) -> str:
    """An entry's bus by name (`EventBusName` may be a name or an ARN; absent: `default`)."""
    name = str(entry.get("EventBusName") or "default")
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name


def delivered_events(
    request: dict[str, Any], response: dict[str, Any], bus_name: str, region: str
) -> list[dict[str, Any]]:
    """The events EventBridge delivers to rules for one PutEvents: the accepted entries on
    `bus_name`, in the shape rules hand to targets. Entries answer in request order."""
    entries = request.get("Entries") or []
    answers = response.get("Entries") or []
    events = []
    for entry, answer in zip(entries, answers, strict=False):
        if "EventId" not in answer or bus_name_of(entry) != bus_name:
            continue
        events.append(
            {
                "version": "0",
                "id": answer["EventId"],
                "detail-type": entry.get("DetailType"),
                "source": entry.get("Source"),
                "account": ACCOUNT,
                "time": _time(entry.get("Time")),
                "region": region,
                "resources": list(entry.get("Resources") or []),
                "detail": json.loads(entry.get("Detail") or "{}"),
            }
        )
    return events


def _time(value: Any) -> str:
    if isinstance(value, int | float):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))
    return str(value) if value else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@attrs.define
class EventsRelay:
    """An HTTP endpoint on 127.0.0.1 relaying EventBridge's API to `upstream` (moto)."""

    upstream: str
    bus_name: str
    region: str
    inbox: queue.Queue[dict[str, Any]] = attrs.field(factory=queue.Queue)
    relayed: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _http: httpx.Client = attrs.field(
        factory=lambda: httpx.Client(timeout=30, trust_env=False), repr=False
    )
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the relay first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> EventsRelay:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as botocore expects

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in SKIPPED}
                status, reply_headers, reply = relay.forward(self.path, headers, body)
                self.send_response(status)
                for name, value in reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # botocore's every call would be a line; errors are logged in forward()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="events-relay", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._http.close()

    def forward(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request on to moto; hand the events it accepted to the inbox."""
        try:
            answer = self._http.post(self.upstream + path, headers=headers, content=body)
        except httpx.TransportError as error:
            log.error("moto's EventBridge did not answer: %s", error)
            problem = {"__type": "InternalException", "message": f"relay: {error}"}
            return 500, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(problem).encode()
        target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), None)
        if answer.status_code == 200 and target == PUT_EVENTS:
            events = delivered_events(json.loads(body), answer.json(), self.bus_name, self.region)
            for event in events:
                self.inbox.put(event)
            with self._lock:
                self.relayed += len(events)
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in SKIPPED}
        return answer.status_code, kept, answer.content
