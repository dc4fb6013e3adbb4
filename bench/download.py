"""The streaming download: peak memory at 2,000 vs 20,000 tasks, throughput against a raw
paginated Query loop, and the time to the first byte beside the total.

Each run starts the download function as the Lambda Web Adapter does on AWS: its startup
script (`handlers/download.sh`) in a fresh process, serving the app with uvicorn over DynamoDB
Local. The bench waits for its readiness path, reads the server's RSS (`/proc/<pid>/status`
VmRSS: "ready"), sends one `GET /tasks.ndjson` with a token from a development issuer (whose
JWKS this process serves over loopback HTTP, fetched once by the function), reads the stream
to its end, and reads the server's high-water mark (VmHWM) before stopping it: the peak is the
server's own, whatever the client buffers.

Throughput is tasks per second from sending the request to the last byte (the client's
clock), against `bench.exports`' Query-loop child over the same table (pages of 100, strongly
consistent, newest first): the floor any download must pay to read the tasks. The time to the
first byte is from sending the request to the first line. Interleaved; best throughput and
median memory of `repeats` runs.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx

from bench.exports import LAUNCH, REGION, ROOT, SIZES, seed
from local_platform.auth import DevIssuer
from local_platform.dynamodb_local import DynamoDBLocal, free_port
from stack.manifest import DOWNLOAD, DOWNLOAD_PATH


@attrs.frozen
class Stream:
    kind: str  # "download" or "query"
    tasks: int
    seconds: float
    first_byte_s: float | None = None
    peak_rss_kb: int = 0
    ready_rss_kb: int = 0

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


@attrs.frozen
class DownloadBench:
    runs: list[Stream]
    sizes: tuple[int, int] = SIZES

    def of(self, kind: str, tasks: int) -> list[Stream]:
        return [r for r in self.runs if r.kind == kind and r.tasks == tasks]

    def peak_mb(self, tasks: int) -> float:
        return statistics.median(r.peak_rss_kb for r in self.of("download", tasks)) / 1024

    @property
    def memory_ratio(self) -> float:
        return self.peak_mb(self.sizes[1]) / self.peak_mb(self.sizes[0])

    def best_rate(self, kind: str) -> float:
        return max(r.rate for r in self.of(kind, self.sizes[1]))

    @property
    def throughput_ratio(self) -> float:
        return self.best_rate("download") / self.best_rate("query")

    def first_byte_ms(self, tasks: int) -> float:
        values = [r.first_byte_s for r in self.of("download", tasks) if r.first_byte_s]
        return statistics.median(values) * 1000

    def total_ms(self, tasks: int) -> float:
        return statistics.median(r.seconds for r in self.of("download", tasks)) * 1000


@contextlib.contextmanager
def _jwks_server(issuer: DevIssuer) -> Iterator[tuple[DevIssuer, str]]:
    """The issuer's JWKS on a loopback port, as its `jwks_uri` would serve it."""
    body = json.dumps(issuer.jwks).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer, f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def _serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """The download function's server, from its startup script; ready to answer."""
    assert DOWNLOAD.web is not None
    port = free_port()
    process = subprocess.Popen(
        [str(ROOT / DOWNLOAD.web.script)],
        cwd=ROOT,
        env={**env, "AWS_LWA_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + DOWNLOAD.web.readiness_path, timeout=1, trust_env=False).is_success:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the download function did not start")
        time.sleep(0.05)


def _download(env: dict[str, str], token: str, expected: int) -> Stream:
    process, url = _serve(env)
    try:
        ready = _status_kb(process.pid, "VmRSS")
        tasks, first = 0, None
        started = time.perf_counter()
        with httpx.stream(
            "GET",
            url + DOWNLOAD_PATH,
            headers={"authorization": f"Bearer {token}"},
            timeout=300,
            trust_env=False,
        ) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if first is None:
                    first = time.perf_counter() - started
                tasks += bool(line)
        seconds = time.perf_counter() - started
        peak = _status_kb(process.pid, "VmHWM")
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert tasks == expected, (tasks, expected)
    return Stream("download", tasks, seconds, first, peak, ready)


def _query(env: dict[str, str], owner: str) -> Stream:
    out = subprocess.run(
        [*LAUNCH, sys.executable, "-m", "bench.exports", "child", "query", "--owner", owner],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return Stream("query", result["tasks"], result["seconds"], None, result["peak_rss_kb"])


def run(repeats: int = 3, sizes: tuple[int, int] = SIZES) -> DownloadBench:
    table = f"bench-download-{uuid.uuid4().hex[:8]}"
    with (
        DynamoDBLocal() as engine,
        tempfile.TemporaryDirectory() as keys,
        _jwks_server(DevIssuer(key_dir=Path(keys))) as (issuer, jwks_uri),
    ):
        from taskcore.adapters.dynamodb import create_table

        create_table(engine.client(), table)
        owners = {size: f"downloader-{size}" for size in sizes}
        for size, owner in owners.items():
            started = time.perf_counter()
            seed(table, engine.endpoint_url, owner, size)
            print(f"  seeded {size} tasks in {time.perf_counter() - started:.1f} s", flush=True)
        env = {
            **os.environ,
            "TABLE_NAME": table,
            "DYNAMODB_ENDPOINT": engine.endpoint_url,
            "JWT_ISSUER": issuer.issuer,
            "JWT_AUDIENCE": issuer.audience,
            "JWKS_URI": jwks_uri,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_PROXY": "127.0.0.1,localhost",
        }

        def measure(kind: str, size: int) -> Stream:
            owner = owners[size]
            if kind == "query":
                stream = _query(env, owner)
            else:
                stream = _download(env, issuer.mint(owner), size)
            first = (
                f"  first byte {stream.first_byte_s * 1000:5.0f} ms" if stream.first_byte_s else ""
            )
            print(
                f"  {kind:<8} {size:>6} tasks  {stream.seconds:6.2f} s  {stream.rate:7.0f} tasks/s"
                f"  peak RSS {stream.peak_rss_kb / 1024:6.1f} MB{first}",
                flush=True,
            )
            return stream

        runs: list[Stream] = []
        for _ in range(repeats):  # interleaved, so drift hits every figure alike
            runs.append(measure("query", sizes[1]))
            runs.append(measure("download", sizes[1]))
            runs.append(measure("download", sizes[0]))
        return DownloadBench(runs=runs, sizes=sizes)


def data(bench: DownloadBench) -> dict[str, Any]:
    return {
        "sizes": list(bench.sizes),
        "peak_rss_mb": {str(size): bench.peak_mb(size) for size in bench.sizes},
        "memory_ratio": bench.memory_ratio,
        "download_tasks_per_s": bench.best_rate("download"),
        "query_tasks_per_s": bench.best_rate("query"),
        "throughput_ratio": bench.throughput_ratio,
        "first_byte_ms": {str(size): bench.first_byte_ms(size) for size in bench.sizes},
        "total_ms": {str(size): bench.total_ms(size) for size in bench.sizes},
        "runs": [attrs.asdict(r) for r in bench.runs],
    }


if __name__ == "__main__":
    print(json.dumps(data(run(repeats=1)), indent=2))
