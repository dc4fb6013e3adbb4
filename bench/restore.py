"""Restore against fresh start of the HTTP API function: the best local stand-in for SnapStart.

Both answer the same first request, `GET /health` through the real handler (payload 2.0,
logging and metrics on), in the environment the cold-init figure uses (`COLD_ENV`: AWS itself
as the backend, never contacted: the route needs no storage, and neither start sends a request).

- **Restore**: a snapshot process (a fresh interpreter) imports the handler module and runs the
  runtime's before-snapshot hooks (`handlers.snapstart`: the composition root and its botocore
  clients), then, per sample, forks (`local_platform.snapstart.fork_restore`); the child runs
  the after-restore hooks and answers. Measured from just before the fork to the answer.
- **Fresh**: a new interpreter imports the handler module, does the same init (the same
  function the hook runs) and answers. Measured from just before the process is spawned to the
  answer, so the interpreter's own start counts, as a runtime's start counts in a cold start.

Times are CLOCK_MONOTONIC, read in the child at the answer and in this process (or the snapshot
process) at the start: one clock for every process on Linux. Samples are interleaved.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from bench.handler_timing import COLD_ENV, HTTP_MODULE
from stack.manifest import API

ROOT = Path(__file__).resolve().parent.parent
"""The children's working directory: they import this checkout's handlers."""
HANDLER = f"{API.module}.{API.attribute}"  # Lambda's `_HANDLER`

# The snapshot: init once, then one restore per line read, reporting each as a JSON line.
SNAPSHOT = """
import json, os, sys, time
event = json.loads(sys.argv[1])
from local_platform.lambda_runtime import handler_context
from local_platform.snapstart import fork_restore, run_before_snapshot
from stack.manifest import API
import {module} as module
run_before_snapshot()
print("ready", flush=True)

def answer(connection):
    hooked = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    sys.stdout = open(os.devnull, "w")  # the handler's EMF lines
    response = module.handler(event, handler_context(API))
    done = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    connection.send((response["statusCode"], hooked, done))

for line in sys.stdin:
    started = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    restore = fork_restore(answer)
    status, hooked, done = restore.receive()
    restore.wait()
    print(json.dumps({{"status": status, "started": started, "hooked": hooked, "done": done}}),
          flush=True)
"""

# A fresh start: what the snapshot holds, then the same answer, with its phases' ends.
FRESH = """
import time
began = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
import json, os, sys
event = json.loads(sys.argv[1])
from local_platform.lambda_runtime import handler_context
from stack.manifest import API
import {module} as module
from handlers import snapstart
imported = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
snapstart.before_snapshot()
initialised = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
out, sys.stdout = sys.stdout, open(os.devnull, "w")  # the handler's EMF lines
response = module.handler(event, handler_context(API))
done = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
sys.stdout = out
print(json.dumps({{"status": response["statusCode"], "began": began, "imported": imported,
                  "initialised": initialised, "done": done}}))
"""


@attrs.frozen
class Restore:
    samples: int
    restore: float
    """Median seconds from the fork to the answer."""
    hooks: float
    """...of which from the fork to the end of the after-restore hooks (median)."""
    fresh: float
    """Median seconds from spawning a fresh interpreter to its answer."""
    phases: dict[str, float]
    """The fresh start's medians: interpreter start, import, init (composition root and
    clients), first request."""

    @property
    def ratio(self) -> float:
        return self.restore / self.fresh


def _event() -> dict[str, Any]:
    from local_platform.gateway.payload import http_event

    return http_event("GET", "/health", user=None, route_key="GET /health")


def _environment() -> dict[str, str]:
    return {**os.environ, **COLD_ENV, "_HANDLER": HANDLER, "PYTHONDONTWRITEBYTECODE": "0"}


def _now() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def _fresh(event: str) -> dict[str, int]:
    started = _now()
    done = subprocess.run(
        [sys.executable, "-c", FRESH.format(module=HTTP_MODULE), event],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_environment(),
        check=True,
    )
    sample: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    if sample["status"] != 200:
        raise RuntimeError(f"a fresh start answered {sample['status']}")
    return sample | {"started": started}


def measure(samples: int = 11) -> Restore:
    """Median of `samples` restores and `samples` fresh starts, interleaved, after one of each
    to warm the file system cache."""
    event = json.dumps(_event())
    snapshot = subprocess.Popen(
        [sys.executable, "-c", SNAPSHOT.format(module=HTTP_MODULE), event],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**_environment(), "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"},
    )
    assert snapshot.stdin is not None
    assert snapshot.stdout is not None
    commands, answers = snapshot.stdin, snapshot.stdout
    try:
        if answers.readline().strip() != "ready":
            raise RuntimeError("the snapshot process did not initialise")

        def restore() -> dict[str, int]:
            commands.write("restore\n")
            commands.flush()
            sample: dict[str, int] = json.loads(answers.readline())
            if sample["status"] != 200:
                raise RuntimeError(f"a restore answered {sample['status']}")
            return sample

        restore(), _fresh(event)
        restores: list[dict[str, int]] = []
        fresh: list[dict[str, int]] = []
        for _ in range(samples):
            restores.append(restore())
            fresh.append(_fresh(event))
    finally:
        commands.close()
        snapshot.wait(timeout=30)

    def median(values: list[int]) -> float:
        return statistics.median(values) / 1e9

    return Restore(
        samples=samples,
        restore=median([s["done"] - s["started"] for s in restores]),
        hooks=median([s["hooked"] - s["started"] for s in restores]),
        fresh=median([s["done"] - s["started"] for s in fresh]),
        phases={
            "interpreter start": median([s["began"] - s["started"] for s in fresh]),
            "import": median([s["imported"] - s["began"] for s in fresh]),
            "init (composition root, clients)": median(
                [s["initialised"] - s["imported"] for s in fresh]
            ),
            "first request": median([s["done"] - s["initialised"] for s in fresh]),
        },
    )


def render(result: Restore) -> str:
    lines = [
        f"restore (fork -> answer):  {result.restore * 1e3:7.1f} ms, of which fork and "
        f"after-restore hooks {result.hooks * 1e3:.1f} ms",
        f"fresh (spawn -> answer):   {result.fresh * 1e3:7.1f} ms, of which:",
    ]
    lines += [f"  {phase:<34} {seconds * 1e3:7.1f} ms" for phase, seconds in result.phases.items()]
    lines.append(f"medians of {result.samples} each, interleaved")
    return "\n".join(lines)


def data(result: Restore) -> dict[str, Any]:
    return {
        "samples": result.samples,
        "restore_ms": result.restore * 1e3,
        "restore_hooks_ms": result.hooks * 1e3,
        "fresh_ms": result.fresh * 1e3,
        "fresh_phases_ms": {phase: s * 1e3 for phase, s in result.phases.items()},
        "ratio": result.ratio,
    }
