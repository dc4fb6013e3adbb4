"""Exports: peak memory at 2,000 vs 20,000 tasks, and throughput against a raw Query loop.

Each run is a fresh interpreter (`python -m bench.exports child ...`), so `ru_maxrss` is that
run's own peak: the export worker (`handlers.exports:worker`, through the real composition root)
or the reference, a bare paginated Query loop (botocore, 100 items a page, strongly consistent,
the same key condition) over the same DynamoDB Local table. S3 is moto's server in yet another
process: in the measured process it would hold every uploaded byte and grow with the export.

Constant memory shows as a flat peak: 10x the tasks may cost at most 1.2x the memory (the
worker holds at most one 8 MiB part). Throughput is tasks per second of the worker against the
Query loop, the floor any export must pay to read the tasks; both timed in the child, from the
first request to the last, interleaved in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import httpx

from local_platform.dynamodb_local import DynamoDBLocal, free_port

ROOT = Path(__file__).resolve().parent.parent
SIZES = (2_000, 20_000)
REGION = "us-east-1"


@attrs.frozen
class Run:
    kind: str  # "export" or "query"
    tasks: int
    seconds: float
    peak_rss_kb: int
    ready_rss_kb: int  # after imports and the composition root, before the first request
    hwm_kb: int  # /proc/self/status VmHWM at the end: must agree with peak_rss_kb
    size_bytes: int = 0

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


@attrs.frozen
class ExportBench:
    runs: list[Run]

    def of(self, kind: str, tasks: int) -> list[Run]:
        return [r for r in self.runs if r.kind == kind and r.tasks == tasks]

    def peak_mb(self, tasks: int) -> float:
        return statistics.median(r.peak_rss_kb for r in self.of("export", tasks)) / 1024

    @property
    def memory_ratio(self) -> float:
        return self.peak_mb(SIZES[1]) / self.peak_mb(SIZES[0])

    def best_rate(self, kind: str) -> float:
        return max(r.rate for r in self.of(kind, SIZES[1]))

    @property
    def throughput_ratio(self) -> float:
        return self.best_rate("export") / self.best_rate("query")


# -- the measured side: one run per fresh interpreter --------------------------------------------


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _hwm_kb() -> int:
    """The kernel's own high-water mark of this process's RSS (a cross-check)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0  # pragma: no cover - not Linux


# Linux carries ru_maxrss across execve: a child forked from this (large) process and exec'd
# would report this process's peak as its own. A shell that forks the measured interpreter
# (it is not the last command, so it is not exec'd in place) gives it a fresh account.
LAUNCH = ["/bin/sh", "-c", '"$@"; exit $?', "sh"]


def child_export(owner: str, export_id: str) -> dict[str, Any]:
    from handlers import bootstrap, exports
    from local_platform.lambda_runtime import handler_context
    from stack.manifest import EXPORTS
    from taskcore.events import EVENT_SOURCE, EXPORT_REQUESTED

    bootstrap.export_service()  # the composition root, as a cold start builds it
    ready = _peak_kb()
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "source": EVENT_SOURCE,
        "detail-type": EXPORT_REQUESTED,
        "detail": {"exportId": export_id, "ownerId": owner},
    }
    started = time.perf_counter()
    result = exports.handle(event, handler_context(EXPORTS), bootstrap.export_service())
    seconds = time.perf_counter() - started
    assert result["status"] == "completed", result
    return {
        "tasks": result["itemsWritten"],
        "seconds": seconds,
        "size_bytes": result["bytesWritten"],
        "ready_rss_kb": ready,
        "peak_rss_kb": _peak_kb(),
        "hwm_kb": _hwm_kb(),
    }


def child_query(owner: str) -> dict[str, Any]:
    import botocore.session
    from botocore.config import Config

    client: Any = botocore.session.get_session().create_client(
        "dynamodb",
        endpoint_url=os.environ["DYNAMODB_ENDPOINT"],
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"mode": "standard"}),
    )
    ready = _peak_kb()
    arguments: dict[str, Any] = {
        "TableName": os.environ["TABLE_NAME"],
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :task)",
        "ExpressionAttributeValues": {":pk": {"S": f"USER#{owner}"}, ":task": {"S": "TASK#"}},
        "Limit": 100,
        "ScanIndexForward": False,
        "ConsistentRead": True,
    }
    items = 0
    started = time.perf_counter()
    while True:
        page = client.query(**arguments)
        items += len(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    seconds = time.perf_counter() - started
    return {
        "tasks": items,
        "seconds": seconds,
        "ready_rss_kb": ready,
        "peak_rss_kb": _peak_kb(),
        "hwm_kb": _hwm_kb(),
    }


def child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.exports child")
    parser.add_argument("kind", choices=["export", "query"])
    parser.add_argument("--owner", required=True)
    parser.add_argument("--export-id")
    args = parser.parse_args(argv)
    if args.kind == "export":
        out = child_export(args.owner, args.export_id)
    else:
        out = child_query(args.owner)
    print(json.dumps(out))
    return 0


# -- the measuring side ---------------------------------------------------------------------------


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server in its own process (see the module docstring)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(endpoint, timeout=1, trust_env=False)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def seed(table: str, endpoint: str, owner: str, count: int) -> None:
    """`count` tasks of `owner` with BatchWriteItem (25 a request), from 8 threads."""
    from taskcore.adapters.dynamodb import bind_models, to_item
    from taskcore.model import Priority, Task, TaskId, UserId
    from taskcore.testing import SequentialIds

    model = bind_models(table, endpoint, REGION).task
    ids = SequentialIds(counter=hash(owner) % 10**6 * 10**5)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    tasks = [
        Task.new(
            id=TaskId(ids.new_id()),
            owner_id=UserId(owner),
            title=f"Task {n}: write the quarterly report",
            description="Collect the figures, check them with finance, write it up. " * 3,
            priority=(Priority.LOW, Priority.MEDIUM)[n % 2],
            tags=("reports", f"q{n % 4 + 1}"),
            now=start + timedelta(seconds=n),
        )
        for n in range(count)
    ]

    def write(chunk: list[Task]) -> None:
        with model.batch_write() as batch:
            for task in chunk:
                batch.save(to_item(task, model))

    chunks = [tasks[i : i + 500] for i in range(0, len(tasks), 500)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, chunks))


def run(repeats: int = 3) -> ExportBench:
    from taskcore.adapters.dynamodb import DynamoExportRepository, create_table
    from taskcore.adapters.s3 import build_client
    from taskcore.services import ExportService
    from taskcore.system import SystemClock, UlidGenerator
    from taskcore.testing import InMemoryObjectSink, InMemoryTaskRepository, principal

    table, bucket = f"bench-exports-{uuid.uuid4().hex[:8]}", "bench-exports"
    with DynamoDBLocal() as engine, s3_server() as s3:
        create_table(engine.client(), table)
        build_client(s3, REGION).create_bucket(Bucket=bucket)
        owners = {size: f"user-{size}" for size in SIZES}
        for size, owner in owners.items():
            started = time.perf_counter()
            seed(table, engine.endpoint_url, owner, size)
            print(f"  seeded {size} tasks in {time.perf_counter() - started:.1f} s", flush=True)
        env = {
            **os.environ,
            "TABLE_NAME": table,
            "BUCKET_NAME": bucket,
            "DYNAMODB_ENDPOINT": engine.endpoint_url,
            "S3_ENDPOINT": s3,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines on stdout are not the result
            "NO_PROXY": "127.0.0.1,localhost",
        }
        # Requests are recorded as POST /exports does; only the repository is needed for it.
        requests = ExportService(
            exports=DynamoExportRepository(table, endpoint_url=engine.endpoint_url, region=REGION),
            tasks=InMemoryTaskRepository(),
            objects=InMemoryObjectSink(),
            clock=SystemClock(),
            ids=UlidGenerator(),
        )

        def measure(kind: str, size: int) -> Run:
            owner = owners[size]
            argv = ["child", kind, "--owner", owner]
            if kind == "export":
                argv += ["--export-id", requests.request_export(principal(owner)).id]
            out = subprocess.run(
                [*LAUNCH, sys.executable, "-m", "bench.exports", *argv],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            assert result["tasks"] == size, (kind, size, result)
            measured = Run(kind=kind, **result)
            print(
                f"  {kind:<6} {size:>6} tasks  {measured.seconds:6.2f} s  "
                f"{measured.rate:7.0f} tasks/s  peak RSS {measured.peak_rss_kb / 1024:6.1f} MB "
                f"(ready {measured.ready_rss_kb / 1024:.1f} MB)",
                flush=True,
            )
            return measured

        runs: list[Run] = []
        for _ in range(repeats):  # interleaved, so drift hits every figure alike
            runs.append(measure("query", SIZES[1]))
            runs.append(measure("export", SIZES[1]))
            runs.append(measure("export", SIZES[0]))
        exported = build_client(s3, REGION).list_objects_v2(Bucket=bucket, Prefix="exports/")
        assert exported["KeyCount"] == 2 * repeats, exported
        return ExportBench(runs=runs)


def data(bench: ExportBench) -> dict[str, Any]:
    return {
        "sizes": list(SIZES),
        "peak_rss_mb": {str(size): bench.peak_mb(size) for size in SIZES},
        "memory_ratio": bench.memory_ratio,
        "export_tasks_per_s": bench.best_rate("export"),
        "query_tasks_per_s": bench.best_rate("query"),
        "throughput_ratio": bench.throughput_ratio,
        "runs": [attrs.asdict(r) for r in bench.runs],
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        sys.exit(child(sys.argv[2:]))
    result = run(repeats=1)
    print(json.dumps(data(result), indent=2))
