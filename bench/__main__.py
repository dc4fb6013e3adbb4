"""`make bench`: the figures we publish, each a ratio measured side by side in one run.

    python -m bench [--quick] [--only SECTION,...]

Sections: requests, cold, first, restore, warm, load, events, export, download, sizes, cost.

Prints one table (absolute numbers beside the ratios) and writes `bench-results.json`, so
runs can be compared. Exits 1 if a target is missed. Not part of `make test`: timings on a
shared 2-core machine belong here, not in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench import (
    cost,
    download,
    dynamodb_requests,
    events,
    exports,
    first_request,
    handler_timing,
    load,
    restore,
    sizes,
)
from local_platform.dynamodb_local import DynamoDBLocal
from stack.manifest import FUNCTIONS

RESULTS = Path(__file__).resolve().parent.parent / "bench-results.json"
SECTIONS = (
    "requests",
    "cold",
    "first",
    "restore",
    "warm",
    "load",
    "events",
    "export",
    "download",
    "sizes",
    "cost",
)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self.missed: list[str] = []
        self.data: dict[str, Any] = {"machine": machine(), "started": time.strftime("%F %T")}

    def row(self, figure: str, value: str, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("ok" if ok else "MISSED")
        if ok is False:
            self.missed.append(figure)
        self.rows.append((figure, value, target, verdict))

    def render(self) -> str:
        width = max(len(r[0]) for r in self.rows)
        lines = [f"{'figure':<{width}}  {'measured':<44} {'target':<10} verdict"]
        lines += [f"{f:<{width}}  {v:<44} {t:<10} {o}" for f, v, t, o in self.rows]
        return "\n".join(lines)


def section(title: str) -> None:
    print(f"\n==> {title}", flush=True)


def package_sizes(report: Report) -> None:
    section("sizes: code archive and layer (infra.packaging, as make layer) vs Lambda's limits")
    code, layer = sizes.build(log=lambda line: print(line, flush=True))
    print(sizes.render(code, layer))
    report.data["sizes"] = sizes.data(code, layer)
    for figure, value, target, ok in sizes.rows(code, layer):
        report.row(figure, value, target, ok)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples, 5 s load phases")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    report = Report()
    print(f"make bench — {report.data['started']} — {report.data['machine']}", flush=True)

    if "requests" in only:
        section("DynamoDB requests per repository call (DynamoDB Local, botocore hook)")
        with DynamoDBLocal() as engine:
            counts = dynamodb_requests.count_requests(engine.endpoint_url, engine.client())
        print(dynamodb_requests.render(counts))
        report.data["dynamodb_requests"] = {name: n for name, (n, _) in counts.items()}
        for name, expected in dynamodb_requests.EXPECTED.items():
            report.row(
                f"requests: {name}",
                str(counts[name][0]),
                f"= {expected}",
                counts[name][0] == expected,
            )

    if "cold" in only:
        cold_section(report, quick=args.quick)

    if "first" in only:
        first_request_section(report, quick=args.quick)

    if "restore" in only:
        restore_section(report, quick=args.quick)

    if "warm" in only:
        section("warm GET /tasks/{id}: in-memory adapters, logging and metrics on")
        warm = handler_timing.warm_request(rounds=3 if args.quick else 7)
        ours = warm["handler"]
        report.data["warm_us"] = {name: seconds * 1e6 for name, seconds in warm.items()}
        report.row(
            "warm request vs FastAPI + Mangum",
            f"{ours / warm['fastapi+mangum']:.3f}x ({ours * 1e6:.0f} us vs "
            f"{warm['fastapi+mangum'] * 1e6:.0f} us)",
            "<= 0.1x",
            ours / warm["fastapi+mangum"] <= 0.1,
        )
        report.row(
            "warm request vs bare Powertools",
            f"{ours / warm['powertools (bare)']:.2f}x ({warm['powertools (bare)'] * 1e6:.0f} us)",
        )

    if "load" in only:
        load_section(report, quick=args.quick)

    if "events" in only:
        event_delivery(report, quick=args.quick)

    if "export" in only:
        task_counts = " vs ".join(f"{n:,}" for n in exports.SIZES)
        section(f"export: fresh worker process per run, {task_counts} tasks, S3 in another process")
        bench = exports.run(repeats=1 if args.quick else 3)
        report.data["export"] = exports.data(bench)
        small, large = (bench.peak_mb(n) for n in exports.SIZES)
        report.row(
            "export: peak RSS, 20k vs 2k tasks",
            f"{bench.memory_ratio:.2f}x ({large:.0f} MB vs {small:.0f} MB)",
            "<= 1.2x",
            bench.memory_ratio <= 1.2,
        )
        report.row(
            "export: throughput vs raw Query loop",
            f"{bench.throughput_ratio:.2f}x ({bench.best_rate('export'):.0f} vs "
            f"{bench.best_rate('query'):.0f} tasks/s)",
            ">= 0.5x",
            bench.throughput_ratio >= 0.5,
        )

    if "download" in only:
        download_section(report, quick=args.quick)

    if "sizes" in only:
        package_sizes(report)

    if "cost" in only:
        cost_section(report, quick=args.quick)

    return finish(report, only)


def _figure_in(figure: str, sections: set[str]) -> bool:
    """Whether a missed figure of an earlier run belongs to one of `sections` (re-measured)."""
    return any(figure.startswith(f"{section}:") for section in sections)


def cost_section(report: Report, *, quick: bool) -> None:
    section(
        f"cost: each operation and everything it triggers, metered on the local platform "
        f"({cost.STACK} stack), priced at list prices (bench/prices.py)"
    )
    bench = cost.run(repeats=2 if quick else 5, log=lambda line: print(line, flush=True))
    print(cost.render(bench))
    report.data["cost"] = cost.data(bench)
    for figure, value, target, ok in cost.rows(bench):
        report.row(figure, value, target, ok)


def cold_section(report: Report, *, quick: bool) -> None:
    section("cold init: fresh process per sample, import (+ composition root for HTTP)")
    samples = 5 if quick else 15
    modules = sorted({f.handler.split(":")[0] for f in FUNCTIONS})
    results = {c.name: c for c in handler_timing.cold_init(modules, samples=samples)}
    floor = next(iter(results.values())).floor
    print(f"floor (botocore session + DynamoDB client): {floor * 1e3:.0f} ms, median of {samples}")
    for name, cold in results.items():
        print(f"  {name:<22} {cold.seconds * 1e3:6.0f} ms  {cold.ratio:.2f}x the floor")
    report.data["cold_init"] = {
        "floor_ms": floor * 1e3,
        "samples": samples,
        "modules": {n: {"ms": c.seconds * 1e3, "ratio": c.ratio} for n, c in results.items()},
    }
    for name, cold in results.items():
        http = name == handler_timing.HTTP_MODULE
        report.row(
            f"cold init, {name} vs floor",
            f"{cold.ratio:.2f}x ({cold.seconds * 1e3:.0f} ms vs {floor * 1e3:.0f} ms)",
            "<= 1.2x" if http else "",
            cold.ratio <= 1.2 if http else None,
        )


def first_request_section(report: Report, *, quick: bool) -> None:
    section("first page: a cold start to its first GET /tasks (clients, cursor secret, Query)")
    result = first_request.measure(samples=5 if quick else 15)
    print(first_request.render(result))
    report.data["first_request"] = first_request.data(result)
    ours, floor = result.handler, result.floor
    report.row(
        "first page: cold start vs floor",
        f"{result.ratio:.2f}x ({ours.first * 1e3:.0f} ms vs {floor.first * 1e3:.0f} ms)",
    )
    if ours.secret is not None:
        report.row("first page: cursor secret's first read", f"{ours.secret * 1e3:.0f} ms")


def download_section(report: Report, *, quick: bool) -> None:
    small, large = exports.SIZES
    section(
        f"download: GET /tasks.ndjson from the function's own server, {small:,} vs {large:,} tasks"
    )
    bench = download.run(repeats=1 if quick else 3)
    report.data["download"] = download.data(bench)
    report.row(
        "download: peak RSS, 20k vs 2k tasks",
        f"{bench.memory_ratio:.2f}x "
        f"({bench.peak_mb(large):.0f} MB vs {bench.peak_mb(small):.0f} MB)",
        "<= 1.2x",
        bench.memory_ratio <= 1.2,
    )
    report.row(
        "download: throughput vs raw Query loop",
        f"{bench.throughput_ratio:.2f}x ({bench.best_rate('download'):.0f} vs "
        f"{bench.best_rate('query'):.0f} tasks/s)",
        ">= 0.5x",
        bench.throughput_ratio >= 0.5,
    )
    for size in (small, large):
        report.row(
            f"download: first byte / total, {size:,} tasks",
            f"{bench.first_byte_ms(size):.0f} ms / {bench.total_ms(size):.0f} ms",
        )


def restore_section(report: Report, *, quick: bool) -> None:
    section("restore: first answer of a forked, initialised process vs a fresh one (SnapStart)")
    result = restore.measure(samples=5 if quick else 15)
    print(restore.render(result))
    report.data["restore"] = restore.data(result)
    report.row(
        "restore: first answer, fork vs fresh process",
        f"{result.ratio:.3f}x ({result.restore * 1e3:.1f} ms vs {result.fresh * 1e3:.0f} ms)",
    )


def load_section(report: Report, *, quick: bool) -> None:
    seconds = 5.0 if quick else 20.0
    section(f"local platform under load: {load.CLIENTS} clients, {seconds:.0f} s per operation")
    results = load.run(seconds=seconds)
    print(load.render(results))
    report.data["load"] = {
        name: {
            "requests": r.requests,
            "errors": r.errors,
            "rps": r.throughput,
            "p50_ms": r.p50 * 1e3,
            "p99_ms": r.p99 * 1e3,
        }
        for name, r in results.items()
    }
    get, raw = results["GET /tasks/{id}"], results["raw GetItem"]
    ratio = get.p50 / raw.p50
    report.row(
        "load: p50 GET /tasks/{id} vs raw GetItem",
        f"{ratio:.2f}x ({get.p50 * 1e3:.1f} ms vs {raw.p50 * 1e3:.1f} ms)",
        "<= 3x",
        ratio <= 3,
    )
    for operation, reference in (
        ("GET /tasks?limit=20", "raw Query (20)"),
        ("POST /tasks", "raw PutItem"),
    ):
        ours, raw = results[operation], results[reference]
        report.row(
            f"load: p50 {operation} vs {reference}",
            f"{ours.p50 / raw.p50:.2f}x ({ours.p50 * 1e3:.1f} ms vs {raw.p50 * 1e3:.1f} ms)",
        )
        report.row(
            f"load: throughput {operation} vs {reference}",
            f"{ours.throughput / raw.throughput:.2f}x ({ours.throughput:.0f} vs "
            f"{raw.throughput:.0f} req/s)",
        )
    errors = sum(r.errors for r in results.values())
    report.row("load: errors", str(errors), "= 0", errors == 0)


def event_delivery(report: Report, *, quick: bool) -> None:
    tasks = 1000 if quick else 3000
    section(f"event delivery: create -> stream -> bus -> stats consumer, then {tasks:,} at load")
    result = events.run(samples=20 if quick else 50, tasks=tasks)
    print(events.render(result))
    report.data["events"] = events.data(result)
    report.row(
        "events: idle create -> /stats, p99",
        f"{result.p99 * 1e3:.0f} ms (p50 {result.p50 * 1e3:.0f} ms)",
        "<= 5 s",
        result.p99 <= 5,
    )
    report.row(
        "events: delivery vs create throughput",
        f"{result.ratio:.2f}x ({result.delivery_rate:.0f} vs {result.create_rate:.0f}/s; "
        f"+{result.drain_seconds:.1f} s)",
    )


def finish(report: Report, only: set[str] | None = None) -> int:
    """Print the table, write the JSON; 1 if a target was missed. A run of some sections
    (`--only`) replaces theirs in the last run's file and keeps the others', saying so."""
    print("\n" + report.render())
    report.data["targets_missed"] = report.missed
    data = report.data
    if only is not None and set(SECTIONS) - only and RESULTS.exists():
        previous = json.loads(RESULTS.read_text())
        updated = {
            **previous.get("updated_by_section", {}),
            **dict.fromkeys(sorted(only), data["started"]),
        }
        missed = [m for m in previous.get("targets_missed", []) if not _figure_in(m, only)]
        data = {
            **previous,
            **data,
            "updated_by_section": updated,
            "targets_missed": missed + report.missed,
        }
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.name}; targets missed: {', '.join(report.missed) or 'none'}")
    return 1 if report.missed else 0


if __name__ == "__main__":
    sys.exit(main())
