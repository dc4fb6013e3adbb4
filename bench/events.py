"""Event delivery on the local platform: how soon a committed write reaches its consumer.

The path measured is the whole asynchronous chain: the API's write, DynamoDB Local's stream,
the stream poller, the stream function, PutEvents (through the relay to moto), the local bus and
the stats consumer's write. `GET /stats` counting the new task is the observable end.

- idle latency: one create at a time, then `/stats` polled every 20 ms until it counts it;
- under load: `CLIENTS` threads create `tasks` as fast as they can; how long after the last
  create's 201 the stats count all of them, and delivery throughput vs the creates' own.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import attrs
import httpx

from local_platform.process import Platform, start_platform

CLIENTS = 16
POLL_S = 0.02


@attrs.frozen
class Delivery:
    latencies: list[float]  # idle: create's 201 -> /stats counts it, seconds
    tasks: int
    create_seconds: float  # first create sent -> last 201
    drain_seconds: float  # last 201 -> /stats counts every task

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    @property
    def create_rate(self) -> float:
        return self.tasks / self.create_seconds

    @property
    def delivery_rate(self) -> float:
        return self.tasks / (self.create_seconds + self.drain_seconds)

    @property
    def ratio(self) -> float:
        """Delivery throughput / create throughput: 1.0 = events keep up with the writes."""
        return self.delivery_rate / self.create_rate


def counted(client: httpx.Client) -> int:
    response = client.get("/stats")
    response.raise_for_status()
    return sum(response.json()["byStatus"].values())


def wait_for(client: httpx.Client, expected: int, timeout_s: float = 300) -> float:
    """Poll /stats until it counts `expected` tasks; the time it happened (perf_counter)."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if counted(client) >= expected:
            return time.perf_counter()
        time.sleep(POLL_S)
    raise TimeoutError(f"/stats did not reach {expected} tasks within {timeout_s:.0f} s")


def idle_latencies(platform: Platform, samples: int) -> list[float]:
    with platform.client(f"idle-{uuid.uuid4().hex[:6]}") as client:
        latencies = []
        for n in range(samples):
            response = client.post("/tasks", json={"title": f"idle {n}"})
            response.raise_for_status()
            acknowledged = time.perf_counter()
            latencies.append(wait_for(client, n + 1, timeout_s=30) - acknowledged)
        return latencies


def under_load(platform: Platform, tasks: int) -> tuple[float, float]:
    owner = f"load-{uuid.uuid4().hex[:6]}"
    local = threading.local()

    def create(n: int) -> None:
        if not hasattr(local, "client"):
            local.client = platform.client(owner)
        local.client.post("/tasks", json={"title": f"load {n}"}).raise_for_status()

    began = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(create, range(tasks)))
    last_ack = time.perf_counter()
    with platform.client(owner) as client:
        caught_up = wait_for(client, tasks)
    return last_ack - began, caught_up - last_ack


def run(samples: int = 50, tasks: int = 3000) -> Delivery:
    platform = start_platform("--no-throttle")
    try:
        latencies = idle_latencies(platform, samples)
        create_s, drain_s = under_load(platform, tasks)
        return Delivery(latencies, tasks, create_s, drain_s)
    finally:
        platform.stop()


def render(result: Delivery) -> str:
    return "\n".join(
        [
            f"idle: create -> /stats counts it, {len(result.latencies)} samples: "
            f"p50 {result.p50 * 1e3:.0f} ms, p99 {result.p99 * 1e3:.0f} ms",
            f"load: {result.tasks:,} creates by {CLIENTS} clients in {result.create_seconds:.1f} s "
            f"({result.create_rate:.0f}/s); /stats counted all {result.drain_seconds:.1f} s "
            f"after the last 201 (delivery {result.delivery_rate:.0f}/s)",
        ]
    )


def data(result: Delivery) -> dict[str, float]:
    return {
        "idle_p50_ms": result.p50 * 1e3,
        "idle_p99_ms": result.p99 * 1e3,
        "tasks": result.tasks,
        "create_per_s": result.create_rate,
        "delivery_per_s": result.delivery_rate,
        "drain_after_last_create_s": result.drain_seconds,
        "delivery_vs_create": result.ratio,
    }
