"""The reliability suite's ledger: what each part sent, injected and saw, for the summary.

`make test` runs every part at a small scale; `make soak` (TASKS_SOAK=1) runs the same tests at
full scale. Each part records into the ledger through `counting()` (an httpx event hook) or
directly; the suite's conftest prints the summary and `make soak` writes `soak-results.json`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import httpx

SOAK = os.environ.get("TASKS_SOAK") == "1"


def scale(fast: int, soak: int) -> int:
    """A volume for this run: `fast` inside `make test`, `soak` under `make soak`."""
    return soak if SOAK else fast


@attrs.define
class Part:
    name: str
    requests: int = 0
    faults: int = 0
    server_errors: int = 0
    lost_writes: int = 0
    notes: list[str] = attrs.field(factory=list)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def sent(self, response: httpx.Response | None = None, *, count: int = 1) -> None:
        """Count requests (and a 5xx, if `response` is one)."""
        with self._lock:
            self.requests += count
            if response is not None and response.status_code >= 500:
                self.server_errors += 1

    def fault(self, count: int = 1) -> None:
        with self._lock:
            self.faults += count

    def lost(self, count: int) -> None:
        with self._lock:
            self.lost_writes += count

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    def hooks(self) -> dict[str, list[object]]:
        """httpx `event_hooks` counting every response of a client into this part."""

        def on_response(response: httpx.Response) -> None:
            self.sent(response)

        return {"response": [on_response]}


class Ledger:
    def __init__(self) -> None:
        self.parts: dict[str, Part] = {}
        self._lock = threading.Lock()

    def part(self, name: str) -> Part:
        with self._lock:
            return self.parts.setdefault(name, Part(name))

    def totals(self) -> Part:
        total = Part("total")
        for part in self.parts.values():
            total.requests += part.requests
            total.faults += part.faults
            total.server_errors += part.server_errors
            total.lost_writes += part.lost_writes
        return total

    def render(self) -> str:
        rows = [*sorted(self.parts.values(), key=lambda p: p.name), self.totals()]
        width = max(len(p.name) for p in rows)
        lines = [f"{'part':<{width}}  {'requests':>9} {'faults':>7} {'5xx':>5} {'lost writes':>12}"]
        for p in rows:
            line = f"{p.name:<{width}}  {p.requests:>9} {p.faults:>7}"
            lines.append(f"{line} {p.server_errors:>5} {p.lost_writes:>12}")
            lines += [f"{'':<{width}}    {note}" for note in p.notes]
        return "\n".join(lines)

    def as_json(self) -> dict[str, object]:
        return {
            name: {
                "requests": p.requests,
                "faults": p.faults,
                "server_errors": p.server_errors,
                "lost_writes": p.lost_writes,
                "notes": p.notes,
            }
            for name, p in sorted(self.parts.items())
        }


LEDGER = Ledger()


@contextmanager
def counting(part: str, client: httpx.Client) -> Iterator[httpx.Client]:
    """Count every response `client` gets into `part` for the duration of the block."""
    hook = LEDGER.part(part).hooks()["response"][0]
    client.event_hooks["response"].append(hook)  # type: ignore[arg-type]
    try:
        yield client
    finally:
        client.event_hooks["response"].remove(hook)  # type: ignore[arg-type]
