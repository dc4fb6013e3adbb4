"""SnapStart: the hooks every function registers (handlers/snapstart.py), tried as this machine
can: one snapshot and two restores of the HTTP API function (tests/handlers/
snapstart_restores.py, one process and two forks of it), and every manifest function's
before-snapshot work, each in a fresh interpreter with sockets refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from handlers import snapstart
from stack.manifest import FUNCTIONS, Function
from taskcore.cursors import CursorCodec
from taskcore.services import is_ulid

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s" * 48  # snapstart_restores.CURSOR_KEY
ENVIRONMENT = {
    "TABLE_NAME": "tasks",
    "BUCKET_NAME": "attachments",
    "BUS_NAME": "tasks-bus",
    "TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:tasks-notifications",
    "CURSOR_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cursor-AbCdEf",
    "AWS_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "snapstart-test",
    "AWS_SECRET_ACCESS_KEY": "snapstart-test",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
    "POWERTOOLS_METRICS_NAMESPACE": "tasks",
}


def lambda_handler(function: Function) -> str:
    """The handler as Lambda names it in `_HANDLER` (infra.functions.lambda_handler)."""
    return f"{function.module}.{function.attribute}"


def environment(**extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "_HANDLER"))}
    return {**inherited, **ENVIRONMENT, **extra}


@cache
def restores(*, hooks: bool) -> dict[str, Any]:
    """Run the snapshot-and-two-restores script once per variant; its JSON report."""
    api = next(f for f in FUNCTIONS if f.handler == "handlers.http_api:handler")
    command = [sys.executable, "-m", "tests.handlers.snapstart_restores"]
    done = subprocess.run(
        command if hooks else [*command, "--no-hooks"],
        cwd=ROOT,
        env=environment(_HANDLER=lambda_handler(api)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["exits"] == [0, 0]
    return report


class TestTheSnapshot:
    def test_builds_the_clients_and_connects_to_nothing(self) -> None:
        report = restores(hooks=True)
        assert report["prepared"] == {
            "dynamodb": True,
            "s3": True,
            "secretsmanager": True,
            "parameters": True,  # the cursor secret's first read, imported; not read
        }
        assert report["refused"] == []

    def test_its_warm_up_request_spends_the_cold_start(self) -> None:
        warm_up = restores(hooks=True)["warm_up"]
        assert warm_up["status"] == 201
        assert warm_up["cold_start"] is True
        assert "ColdStart" in warm_up["metrics"]


class TestTwoRestoresWithTheHooks:
    @pytest.fixture
    def report(self) -> dict[str, Any]:
        return restores(hooks=True)

    def test_ids_are_unique_across_restores_in_the_snapshots_millisecond(
        self, report: dict[str, Any]
    ) -> None:
        created = [r[n]["body"]["id"] for r in report["restores"] for n in ("first", "second")]
        minted = [i for r in report["restores"] for i in r["ids"]]
        everything = [report["warm_up"]["body"]["id"], *created, *minted]
        assert all(is_ulid(i) for i in everything)
        assert len(set(everything)) == len(everything) == 205
        # python-ulid's clock and the service's were frozen: every id is from the snapshot's
        # millisecond.
        assert len({i[:10] for i in everything}) == 1

    def test_the_first_invocation_of_each_restore_is_a_cold_start(
        self, report: dict[str, Any]
    ) -> None:
        for restore in report["restores"]:
            assert restore["first"]["cold_start"] is True
            assert "ColdStart" in restore["first"]["metrics"]
            assert restore["replay"]["cold_start"] is False
            assert "ColdStart" not in restore["replay"]["metrics"]

    def test_random_differs_per_restore(self, report: dict[str, Any]) -> None:
        first, second = (r["random"] for r in report["restores"])
        assert first != second

    def test_an_idempotency_key_replays_within_a_restore(self, report: dict[str, Any]) -> None:
        for restore in report["restores"]:
            assert (restore["first"]["status"], restore["replay"]["status"]) == (201, 200)
            assert restore["replay"]["body"]["id"] == restore["first"]["body"]["id"]
            assert restore["first"]["metrics"].count("TasksCreated") == 1

    def test_cursors_differ_and_each_verifies_in_the_other_restore(
        self, report: dict[str, Any]
    ) -> None:
        cursors = [r["cursor"] for r in report["restores"]]
        assert cursors[0] != cursors[1]
        for restore in report["restores"]:
            assert restore["cursor_checks"] == {"other": 200, "tampered": 400}
        # And in a codec built here from the function's secret, as any container builds it.
        codec = CursorCodec(SECRET.encode())
        for restore in report["restores"]:
            assert codec.decode("tasks|alice||low", restore["cursor"], now=datetime.now(UTC))


class TestTwoRestoresWithoutTheHooks:
    """What the after-restore hook prevents: each of these fails once the hook is removed."""

    @pytest.fixture
    def report(self) -> dict[str, Any]:
        return restores(hooks=False)

    def test_both_restores_mint_the_same_ids(self, report: dict[str, Any]) -> None:
        first, second = (r["ids"] for r in report["restores"])
        assert first == second
        created = {r["first"]["body"]["id"] for r in report["restores"]}
        assert len(created) == 1

    def test_both_restores_draw_the_same_random_numbers(self, report: dict[str, Any]) -> None:
        first, second = (r["random"] for r in report["restores"])
        assert first == second

    def test_no_restore_reports_its_cold_start(self, report: dict[str, Any]) -> None:
        for restore in report["restores"]:
            assert restore["first"]["cold_start"] is False
            assert "ColdStart" not in restore["first"]["metrics"]

    def test_cursors_need_no_hook(self, report: dict[str, Any]) -> None:
        for restore in report["restores"]:
            assert restore["cursor_checks"] == {"other": 200, "tampered": 400}


# -- every function's before-snapshot work ---------------------------------------------------

PREPARE = """
import socket, sys

def refuse(self, address):
    raise ConnectionRefusedError(f"before the snapshot, a connection to {address!r}")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
import importlib
importlib.import_module(sys.argv[1])
from local_platform.snapstart import run_before_snapshot
from taskcore.adapters import clients
run_before_snapshot()
pending = [lazy for lazy in clients._lazy_clients.values() if lazy._client is None]
assert pending == [], pending
print("prepared", len(clients._builders), len(clients._lazy_clients))
"""


def manifest_environment(function: Function) -> dict[str, str]:
    """Only the variables the manifest gives the function (plus the runtime's own)."""
    given = {name: ENVIRONMENT[name] for name in function.environment if name in ENVIRONMENT}
    if "MAX_BODY_BYTES" in function.environment:
        given["MAX_BODY_BYTES"] = "65536"
    runtime = {k: v for k, v in ENVIRONMENT.items() if k.startswith(("AWS_", "POWERTOOLS_"))}
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    inherited = {k: v for k, v in inherited.items() if k not in ENVIRONMENT}
    return {**inherited, **runtime, **given, "_HANDLER": lambda_handler(function)}


# The functions the Lambda runtime runs: a web function (the download) is a server its startup
# script starts behind the Lambda Web Adapter, which SnapStart does not apply to.
RUNTIME_FUNCTIONS = [f for f in FUNCTIONS if f.web is None]


@pytest.mark.parametrize("function", RUNTIME_FUNCTIONS, ids=lambda f: f.name)
def test_every_function_builds_what_it_uses_before_the_snapshot_without_network(
    function: Function,
) -> None:
    """With only the environment the manifest gives it: a missing variable would fail the init
    that makes the snapshot, not a first invocation."""
    done = subprocess.run(
        [sys.executable, "-c", PREPARE, function.module],
        cwd=ROOT,
        env=manifest_environment(function),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("prepared")


def test_every_manifest_function_declares_what_it_uses() -> None:
    import importlib

    for function in RUNTIME_FUNCTIONS:
        importlib.import_module(function.module)
    assert {lambda_handler(f) for f in RUNTIME_FUNCTIONS} <= set(snapstart.PREPARATIONS)


def test_an_undeclared_handler_fails_the_snapshot() -> None:
    with pytest.raises(RuntimeError, match="declares nothing"):
        snapstart.before_snapshot("handlers.nowhere.handler")
