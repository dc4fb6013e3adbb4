"""The reliability suite's summary: requests sent, faults injected, 5xx seen, lost writes."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import pytest

from tests.reliability.ledger import LEDGER, SOAK

RESULTS = Path(__file__).resolve().parents[2] / "soak-results.json"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not LEDGER.parts:
        return
    title = "reliability summary (make soak: full scale)" if SOAK else "reliability summary"
    terminalreporter.section(title)
    terminalreporter.write_line(LEDGER.render())
    if SOAK:
        totals = LEDGER.totals()
        RESULTS.write_text(
            json.dumps(
                {
                    "finished": time.strftime("%F %T"),
                    "python": platform.python_version(),
                    "parts": LEDGER.as_json(),
                    "totals": {
                        "requests": totals.requests,
                        "faults": totals.faults,
                        "server_errors": totals.server_errors,
                        "lost_writes": totals.lost_writes,
                    },
                },
                indent=2,
            )
            + "\n"
        )
        terminalreporter.write_line(f"written to {RESULTS.name}")
