"""The local platform under load, against raw calls to the same DynamoDB Local.

32 client threads hammer one operation for a fixed time, after a warm-up that starts every
sandbox the API function will use; each request's latency is recorded.
The reference is the same 32 threads doing the DynamoDB call that operation needs (GetItem for
`GET /tasks/{id}`, a Query of 20 for a list page, a conditional PutItem for a create), straight
to the engine: what the API adds on top is the ratio.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import boto3
import httpx
from botocore.config import Config

from local_platform.dynamodb_local import free_port
from local_platform.platform import TABLE
from local_platform.process import start_platform
from taskcore.adapters.dynamodb import task_sk, user_pk

CLIENTS = 32


@attrs.frozen
class Load:
    name: str
    requests: int
    errors: int
    seconds: float
    p50: float
    p99: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def hammer(name: str, make_call: Callable[[], Callable[[], bool]], seconds: float) -> Load:
    """`CLIENTS` threads call `make_call()()` (one callable per thread) until time is up."""
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors = [0] * CLIENTS
    start = threading.Barrier(CLIENTS + 1)
    stop_at: list[float] = []

    def client(index: int) -> None:
        call = make_call()
        start.wait()
        mine = latencies[index]
        while time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            try:
                ok = call()
            except Exception:  # a timeout or reset is an error to count, not a crash
                ok = False
            mine.append(time.perf_counter() - began)
            errors[index] += not ok

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    stop_at.append(time.perf_counter() + seconds)
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = sorted(x for per_thread in latencies for x in per_thread)
    p99 = every[min(len(every) - 1, int(len(every) * 0.99))]
    return Load(name, len(every), sum(errors), elapsed, statistics.median(every), p99)


def warm_up(call: Callable[[], bool], rounds: int = 5) -> None:
    """`CLIENTS` concurrent callers, a few rounds: the API function then has every sandbox it
    will use (up to the platform's `--concurrency`) past its cold start, so the figures are the
    warm path's. Cold starts are measured on their own (`cold init`)."""
    barrier = threading.Barrier(CLIENTS)

    def caller() -> None:
        for _ in range(rounds):
            barrier.wait()
            call()

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run(seconds: float = 20.0, seed_tasks: int = 200) -> dict[str, Load]:
    dynamodb_port = free_port()
    platform = start_platform("--no-throttle", dynamodb_port=dynamodb_port)
    try:
        token = platform.token("load-user")
        headers = {"Authorization": f"Bearer {token}"}

        def http() -> httpx.Client:
            return httpx.Client(base_url=platform.url, headers=headers, timeout=30, trust_env=False)

        with http() as seeder:
            ids = [
                seeder.post("/tasks", json={"title": f"seed {n}"}).json()["id"]
                for n in range(seed_tasks)
            ]

        def health() -> bool:
            with http() as client:
                return client.get("/health").status_code == 200

        warm_up(health)

        def get_task() -> Callable[[], bool]:
            client = http()
            return lambda: client.get(f"/tasks/{random.choice(ids)}").status_code == 200

        def list_tasks() -> Callable[[], bool]:
            client = http()
            return lambda: client.get("/tasks", params={"limit": "20"}).status_code == 200

        def create_task() -> Callable[[], bool]:
            client = http()
            return lambda: client.post("/tasks", json={"title": "load"}).status_code == 201

        def raw_client() -> Any:
            return boto3.client(
                "dynamodb",
                endpoint_url=f"http://127.0.0.1:{dynamodb_port}",
                region_name="us-east-1",
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=Config(proxies={}, max_pool_connections=CLIENTS),
            )

        def raw_get_item() -> Callable[[], bool]:
            dynamodb = raw_client()

            def call() -> bool:
                key = {"pk": {"S": user_pk("load-user")}, "sk": {"S": task_sk(random.choice(ids))}}
                item = dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True)
                return "Item" in item

            return call

        def raw_query() -> Callable[[], bool]:
            """What a list page needs: one Query of 20 of the user's tasks."""
            dynamodb = raw_client()

            def call() -> bool:
                page = dynamodb.query(
                    TableName=TABLE,
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :task)",
                    ExpressionAttributeValues={
                        ":pk": {"S": user_pk("load-user")},
                        ":task": {"S": "TASK#"},
                    },
                    Limit=20,
                    ConsistentRead=True,
                )
                return len(page["Items"]) == 20

            return call

        def raw_put_item() -> Callable[[], bool]:
            """What a create needs: one conditional PutItem of a new task-sized item."""
            dynamodb = raw_client()

            def call() -> bool:
                key = uuid.uuid4().hex
                item = {
                    "pk": {"S": user_pk("raw-user")},
                    "sk": {"S": task_sk(key)},
                    "lsi1sk": {"S": f"pending#{key}"},
                    "lsi2sk": {"S": f"medium#{key}"},
                    "title": {"S": "load"},
                    "version": {"N": "1"},
                }
                dynamodb.put_item(
                    TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)"
                )
                return True

            return call

        results = {}
        for name, factory in (
            ("raw GetItem", raw_get_item),
            ("GET /tasks/{id}", get_task),
            ("raw Query (20)", raw_query),
            ("GET /tasks?limit=20", list_tasks),
            ("raw PutItem", raw_put_item),
            ("POST /tasks", create_task),
        ):
            results[name] = hammer(name, factory, seconds)
        return results
    finally:
        platform.stop()


def render(results: dict[str, Load]) -> str:
    lines = [
        f"{'operation':<22} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    ]
    for load in results.values():
        lines.append(
            f"{load.name:<22} {load.requests:>8} {load.errors:>6} {load.throughput:>8.0f} "
            f"{load.p50 * 1e3:>8.2f} {load.p99 * 1e3:>8.2f}"
        )
    return "\n".join(lines)
