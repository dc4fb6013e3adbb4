"""`make dev`: run the local platform in the foreground until Ctrl-C.

python -m local_platform [--stack dev] [--port 8000] [--in-memory] [--no-throttle] [--verbose]
                         [--clock-offset 36h] [--manual-schedules] [--ttl-interval 10]

`kill -USR1 <pid>` runs the emulated background processes at once, in the platform's clock:
every schedule fires once, and the emulated TTL (local_platform/ttl.py) makes a pass.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn

from local_platform.auth import DevIssuer
from local_platform.children import port_holder, reclaim
from local_platform.console import Console, configure_logging, describe_event
from local_platform.dynamodb_local import free_port
from local_platform.function_urls import AdapterUrl, BufferedUrl, WebFunction, url_functions
from local_platform.gateway import build_app
from local_platform.gateway.docs import ApiDocs
from local_platform.gateway.stage import Cors
from local_platform.lambda_runtime import lambda_context
from local_platform.meter import Meter
from local_platform.platform import (
    REGION,
    ROOT,
    STATE,
    Services,
    event_plumbing,
    running,
    shown,
)
from local_platform.sandboxes import Sandboxes
from local_platform.schedules import parse_offset
from stack.config import StackConfig
from stack.manifest import FUNCTIONS, Function


def event_invoker(sandboxes: Sandboxes) -> Callable[[Function, dict[str, Any]], Any]:
    """How the event-source mapping and EventBridge call a function: in one of its sandboxes.
    Each delivery is one console line (a failure is the bus's or the poller's to report)."""
    events = logging.getLogger("local_platform.events")

    def invoke(function: Function, event: dict[str, Any]) -> Any:
        context = lambda_context(function, REGION, int(time.time() * 1000))
        started = time.perf_counter()
        result = sandboxes(function, event, context)
        what, event_id = describe_event(event)
        failed = len((result or {}).get("batchItemFailures", [])) if isinstance(result, dict) else 0
        events.info(
            "%s ← %s  %.0f ms  [%s]%s",
            function.name,
            what,
            (time.perf_counter() - started) * 1000,
            event_id or context.aws_request_id,
            f"  ({failed} reported failed)" if failed else "",
        )
        return result

    return invoke


class _Companion(uvicorn.Server):
    """A server that stops when the platform's main one does (which alone handles Ctrl-C)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve(main: uvicorn.Server, companions: list[uvicorn.Server]) -> None:
    """Run the gateway and the Function URLs in one event loop until Ctrl-C."""

    async def run() -> None:
        tasks = [asyncio.create_task(companion.serve()) for companion in companions]
        try:
            await main.serve()
        finally:
            for companion in companions:
                companion.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)

    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: Ctrl-C is the way out
        asyncio.run(run())


def url_ports(base: int, functions: list[Function]) -> dict[str, int]:
    """Each Function URL's port: `base`, `base + 1`... in manifest order; 0: free ports."""
    return {f.name: (base + i if base else free_port()) for i, f in enumerate(functions)}


def function_urls(
    services: Services,
    sandboxes: Sandboxes,
    console: Console,
    *,
    host: str,
    base: int,
    concurrency: int,
    docs_origin: str,
) -> tuple[list[WebFunction], list[uvicorn.Server], dict[str, str]]:
    """The Function URLs' servers (one port each), and the web functions behind them, started.
    Their CORS origins are the stack's and, here only, the platform's own `/docs` page, whose
    Try it out calls them from the gateway's origin."""
    cors = Cors((*services.config.cors_allow_origins, docs_origin))
    functions = url_functions(FUNCTIONS, services.config)
    ports = url_ports(base, functions)
    web_functions: list[WebFunction] = []
    companions: list[uvicorn.Server] = []
    urls: dict[str, str] = {}
    for function in functions:
        front: Any
        if function.web is not None:
            web = WebFunction(
                function, services.environment(function), free_port(), log=console.lambda_line
            )
            web_functions.append(web.start())
            front = AdapterUrl(function, web.url, cors, region=REGION)
        else:
            front = BufferedUrl(function, sandboxes, cors, region=REGION, concurrency=concurrency)
        config = uvicorn.Config(
            front, host=host, port=ports[function.name], log_level="warning", access_log=False
        )
        companions.append(_Companion(config))
        urls[function.name] = f"http://{host}:{ports[function.name]}"
    return web_functions, companions, urls


URL_NOTES = {
    "BUFFERED": "the same routes as the API, the function verifies the token",
    "RESPONSE_STREAM": "streamed, the function verifies the token",
}


def banner(
    services: Services,
    host: str,
    port: int,
    issuer: DevIssuer,
    *,
    throttling: str,
    logs: str,
    urls: dict[str, str] | None = None,
) -> str:
    url = f"http://{host}:{port}"
    workflows = ", ".join(services.workflows) or "none"
    functions = {f.name: f for f in FUNCTIONS}
    url_lines = "".join(
        f"\n  {name + ' URL':<12} {address}   ({URL_NOTES[functions[name].url.invoke_mode]})"  # type: ignore[union-attr]
        for name, address in (urls or {}).items()
    )
    relay = services.relay.url if services.relay else "none"
    download = (urls or {}).get("download")
    try_download = (
        f'\n  Download all:  curl -sN -H "Authorization: Bearer $TOKEN" {download}/tasks.ndjson'
        if download
        else ""
    )
    return f"""
  tasks local platform — stack '{services.config.stack}'
  API          {url}   (health: {url}/health)
  API docs     {url}/docs   (Swagger UI: Authorize with a token from make token){url_lines}
  DynamoDB     {services.dynamodb_endpoint}   (DynamoDB Local, {services.storage})
  S3, bus, SFN {services.s3_endpoint}   (moto: S3, EventBridge, SQS, SFN, Secrets Manager, SNS)
  topic        {services.topic_arn}   (notifications; moto sends no email)
  workflows    {workflows}   (the real ASL, on moto's executor)
  approvals    expire after {services.resolve("approval.timeout")} s without a decision
  auto-approve {"; ".join(services.config.auto_approve) or "no rule"}   (tasks:autoApprove)
  schedules    {schedule_line(services)}
  TTL          {ttl_line(services)}
  EventBridge  {relay}   (PutEvents here reach the rules, as on the bus)
  JWT issuer   {issuer.issuer}   audience {issuer.audience}
  throttling   {throttling}
  CORS         {", ".join(services.config.cors_allow_origins)}
  Lambda logs  {logs}

  Get a token:   TOKEN=$(make token USER=alice)
  An approver:   make token USER=bob GROUPS=approvers
  Try it:        curl -s -H "Authorization: Bearer $TOKEN" {url}/tasks{try_download}
  Stop:          Ctrl-C
"""


def schedule_line(services: Services) -> str:
    """The scheduled rules, and the clock they fire in."""
    rules = ", ".join(
        f"{schedule.name} {schedule.expression}" for f in FUNCTIONS for schedule in f.schedules
    )
    offset = services.clock_offset
    clock = f"the machine's {'+' if offset >= timedelta(0) else '-'} {abs(offset)}"
    when = "only" if services.manual_schedules else "on their own, and"
    asked = f"on kill -USR1 {os.getpid()}"
    return f"{rules or 'none'}   (fire {when} {asked}; clock: {clock}, UTC)"


def shown_offset(offset: timedelta) -> str:
    """A clock offset as `--clock-offset` takes it: `8d`, `1d12h`, `-90m`, `0`."""
    sign = "-" if offset < timedelta(0) else ""
    seconds, parts = int(abs(offset).total_seconds()), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts) if parts else "0"


def run_background_now(services: Services) -> None:
    """SIGUSR1: every schedule fires once and the emulated TTL makes a pass, now."""
    if services.scheduler is not None:
        services.scheduler.fire_all()
    if services.ttl is not None:
        services.ttl.run_now()


def ttl_line(services: Services) -> str:
    every = f"every {services.ttl_interval_s:g} s" if services.ttl_interval_s > 0 else "on demand"
    offset = shown_offset(services.clock_offset)
    later = f", as if {offset} later (--clock-offset)" if offset != "0" else ""
    return f"expired items deleted {every}{later}; kill -USR1 {os.getpid()} for a pass now"


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local_platform", description=__doc__)
    parser.add_argument("--stack", default="dev", help="read Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dynamodb-port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--s3-port", type=int, default=8002, help="0 picks a free port")
    parser.add_argument(
        "--url-port-base",
        type=int,
        default=8003,
        help="the Function URLs' ports, one each from here in manifest order; 0 picks free ports",
    )
    parser.add_argument("--in-memory", action="store_true", help="keep no data across runs")
    parser.add_argument(
        "--db-path", type=Path, default=ROOT / ".dynamodb", help="where DynamoDB Local keeps data"
    )
    parser.add_argument("--throttle-rate", type=float, help="override the stack's req/s")
    parser.add_argument("--throttle-burst", type=int, help="override the stack's burst")
    parser.add_argument(
        "--no-throttle", action="store_true", help="no stage throttling (for load tests)"
    )
    parser.add_argument(
        "--no-events",
        action="store_true",
        help="do not follow the table's stream nor deliver events (bulk seeding, read tests)",
    )
    parser.add_argument(
        "--approval-timeout", type=int, help="seconds an approval waits (default: the stack's)"
    )
    parser.add_argument(
        "--clock-offset",
        type=parse_offset,
        default="0",
        help="shift the platform's clock, what its emulated background processes see as now: "
        "its scheduled rules fire by it, and its emulated DynamoDB TTL expires items (archives "
        "completed tasks) by it: 36h, 2d, 1d12h, -90m (default 0)",
    )
    parser.add_argument(
        "--manual-schedules",
        action="store_true",
        help="scheduled rules fire only on SIGUSR1 (every one, once, now), never on their own",
    )
    parser.add_argument(
        "--ttl-interval",
        type=float,
        default=10.0,
        help="seconds between the emulated TTL's passes (default 10; 0: only on SIGUSR1)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="sandboxes (worker processes) per function at most (Lambda runs one per request)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print the functions' raw log lines (EMF metrics, START/END/REPORT) and their "
        "INFO records, not one line per request and event",
    )
    parser.add_argument(
        "--meter",
        type=Path,
        metavar="FILE",
        help="append one JSON line per billable request and invocation to FILE, with the AWS "
        "requests and DynamoDB capacity each function used, the handlers at the deployed log "
        "level INFO (what make bench's cost section reads; local_platform/meter.py)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=STATE / "logs",
        help="where each function's raw log lines are kept (<function>.log)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    # A SIGTERM (from a supervisor, `timeout`, CI) stops the platform like Ctrl-C does, so
    # DynamoDB Local and the moto server are stopped too instead of being orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    configure_logging(sys.stdout)
    if args.verbose:  # the handlers' INFO records too, unless LOG_LEVEL says otherwise
        os.environ.setdefault("LOG_LEVEL", "INFO")
    meter = Meter(args.meter.resolve()) if args.meter else None
    if meter is not None:  # what the functions log on AWS is billed: the deployed level
        os.environ["LOG_LEVEL"] = "INFO"
    started = time.monotonic()
    reclaim(STATE / "platforms", lambda line: print(f"==> {line}", flush=True))
    config = StackConfig.from_stack_file(args.stack)
    url_ports_ = [args.url_port_base + i for i in range(len(url_functions(FUNCTIONS, config)))]
    for option, port in (
        ("--port", args.port),
        ("--dynamodb-port", args.dynamodb_port),
        ("--s3-port", args.s3_port),
        *(("--url-port-base", p) for p in url_ports_ if args.url_port_base),
    ):
        holder = port_holder(port) if port else None
        if holder is not None:
            print(
                f"the local platform: port {port} is in use by {holder}; stop it, or choose "
                f"another port ({option} N, or 0 for any free one)",
                file=sys.stderr,
                flush=True,
            )
            return 2
    print("==> starting DynamoDB Local and the S3 stand-in ...", flush=True)
    db_path = None if args.in_memory else args.db_path.resolve()
    with running(
        stack=args.stack,
        db_path=db_path,
        dynamodb_port=args.dynamodb_port or None,
        s3_port=args.s3_port or None,
        approval_timeout_s=args.approval_timeout,
        clock_offset=args.clock_offset,
        manual_schedules=args.manual_schedules,
        ttl_interval_s=args.ttl_interval,
    ) as services:
        # The background processes now (every schedule, a TTL pass): what `make dev` users and
        # the e2e tests ask for with a signal. Set in the main thread; their threads do the work.
        signal.signal(signal.SIGUSR1, lambda *_: run_background_now(services))
        console = Console(verbose=args.verbose, log_dir=args.log_dir.resolve()).start()
        sandboxes = Sandboxes(
            services.environment,
            concurrency=args.concurrency,
            log=console.lambda_line,
            meter=meter,
        )
        issuer = DevIssuer()
        services.jwks_uri = f"http://{args.host}:{args.port}{issuer.jwks_path}"
        config = services.config
        rate = args.throttle_rate or float(config.throttle_rate_limit)
        burst = args.throttle_burst or config.throttle_burst_limit
        if args.no_throttle:
            rate, burst = 1e9, 10**9
        app = build_app(
            FUNCTIONS,
            config,
            issuer,
            invoke=sandboxes,
            rate=rate,
            burst=burst,
            concurrency=args.concurrency,
            docs=ApiDocs(),
            meter=meter,
        )
        web_functions, companions, urls = function_urls(
            services,
            sandboxes,
            console,
            host=args.host,
            base=args.url_port_base,
            concurrency=args.concurrency,
            docs_origin=f"http://{args.host}:{args.port}",
        )
        throttling = "off" if args.no_throttle else f"{rate:g} req/s, burst {burst}"
        logs = f"{shown(args.log_dir.resolve())}/<function>.log" + (
            "" if args.verbose else "   (raw; --verbose prints them here)"
        )
        print(
            banner(
                services,
                args.host,
                args.port,
                issuer,
                throttling=throttling,
                logs=logs,
                urls=urls,
            ),
            flush=True,
        )
        print(f"==> ready in {time.monotonic() - started:.1f}s", flush=True)
        try:
            plumbing = (
                contextlib.nullcontext()
                if args.no_events
                else event_plumbing(services, event_invoker(sandboxes))
            )
            with plumbing:
                main_server = uvicorn.Server(
                    uvicorn.Config(
                        app, host=args.host, port=args.port, log_level="warning", access_log=False
                    )
                )
                serve(main_server, companions)
        finally:
            for web in web_functions:
                web.stop()
            sandboxes.stop()
            console.stop()
            if meter is not None:
                meter.close()
    print("==> stopped: DynamoDB Local and the S3 stand-in are down", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
