"""`make dev` across a restart: DynamoDB Local keeps its data, and handed-out cursors stay valid
(the cursor secret persists in .local/); and however the platform ends, its children end too."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from local_platform.children import Record, command_line, reclaim
from local_platform.process import ROOT, child_processes, start_platform


def test_data_and_cursors_survive_a_restart(tmp_path: Path) -> None:
    first = start_platform("--no-throttle", db_path=tmp_path / "dynamodb")
    try:
        with first.client("restart-user") as client:
            created = [client.post("/tasks", json={"title": f"kept {n}"}).json() for n in range(3)]
            page = client.get("/tasks", params={"limit": "1"}).json()
    finally:
        assert first.stop() == 0
    assert any("stopped" in line for line in first.output)

    second = start_platform("--no-throttle", db_path=tmp_path / "dynamodb")
    try:
        with second.client("restart-user") as client:
            for task in created:
                response = client.get(f"/tasks/{task['id']}")
                assert response.status_code == 200
                assert response.json() == task
            rest = client.get("/tasks", params={"limit": "5", "cursor": page["nextCursor"]})
            assert rest.status_code == 200
            ids = [t["id"] for t in page["items"] + rest.json()["items"]]
            assert ids == [t["id"] for t in reversed(created)]
        assert any("kept from the last run" in line for line in second.output)
    finally:
        assert second.stop() == 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_platform_leaves_no_child_behind() -> None:
    """`kill -9` runs no cleanup: DynamoDB Local and moto die by the parent-death signal, the
    sandboxes when their pipe closes. Nothing is left holding a port."""
    platform = start_platform("--no-throttle")
    try:
        with platform.client("killed-user") as client:
            assert client.post("/tasks", json={"title": "before the kill"}).status_code == 201
            deadline = time.monotonic() + 20
            while client.get("/stats").json().get("byStatus", {}).get("pending") != 1:
                assert time.monotonic() < deadline, "the event path never delivered"
                time.sleep(0.1)
        children = child_processes(platform.process.pid)
        kinds = [" ".join(argv) for argv in children.values()]
        assert any("DynamoDBLocal.jar" in kind for kind in kinds)
        assert any("moto.server" in kind for kind in kinds)
        assert sum("multiprocessing.spawn" in kind for kind in kinds) >= 3  # api, stream, stats
        platform.process.send_signal(signal.SIGKILL)
        platform.process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {pid: argv[:3] for pid, argv in children.items() if _alive(pid)}
        assert left == {}
    finally:
        platform.stop()


def test_a_platform_killed_mid_load_comes_back_with_every_acknowledged_task(
    tmp_path: Path,
) -> None:
    """SIGKILL while eight clients create; a new platform on the same data answers every task
    that was acknowledged (201) with what it was created with. (Creates carry no
    Idempotency-Key: DynamoDB Local acknowledges a transaction before its SQLite commit, see
    docs/reliability.md, and loses it on SIGKILL; a PutItem waits for the commit.)"""
    db_path = tmp_path / "dynamodb"
    first = start_platform("--no-throttle", db_path=db_path)
    acknowledged: list[dict[str, Any]] = []
    stop = threading.Event()

    def create(n: int) -> None:
        with first.client("durable-user") as client:
            while not stop.is_set():
                try:
                    response = client.post("/tasks", json={"title": f"client {n}"})
                except httpx.TransportError:
                    return  # the platform is gone: no answer, no promise
                if response.status_code == 201:
                    acknowledged.append(response.json())

    creators = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for creator in creators:
        creator.start()
    try:
        deadline = time.monotonic() + 30
        while len(acknowledged) < 40:
            assert time.monotonic() < deadline, "the platform did not take creates"
            time.sleep(0.05)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    finally:
        stop.set()
        for creator in creators:
            creator.join(timeout=30)
        first.stop()

    second = start_platform("--no-throttle", db_path=db_path)
    try:
        with second.client("durable-user") as client:
            for task in acknowledged:
                response = client.get(f"/tasks/{task['id']}")
                assert response.status_code == 200, task["id"]
                assert response.json()["title"] == task["title"]
    finally:
        assert second.stop() == 0


def test_a_port_in_use_is_one_line_naming_its_holder() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "local_platform", "--in-memory", "--port", str(port)],
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"the local platform: port {port} is in use by pid {os.getpid()} "
        f"({command_line(os.getpid())[:120]}); stop it, or choose another port "
        "(--port N, or 0 for any free one)"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_what_a_platform_that_is_gone_left_running_is_stopped(tmp_path: Path) -> None:
    gone, also_gone = subprocess.Popen(["true"]), subprocess.Popen(["true"])
    gone.wait()  # the pids of two platforms that have ended
    also_gone.wait()
    leftover = subprocess.Popen(["sleep", "60"])
    reused = subprocess.Popen(["sleep", "61"])
    try:
        Record(tmp_path, pid=gone.pid).write({"DynamoDB Local": leftover.pid})
        (tmp_path / f"{also_gone.pid}.json").write_text(  # a pid reused since: not its command
            json.dumps({"the moto server": {"pid": reused.pid, "command": "python -m moto"}})
        )
        Record(tmp_path).write({"mine": reused.pid})  # a platform that still runs: this one
        said: list[str] = []
        assert reclaim(tmp_path, said.append) == 1
        assert leftover.wait(timeout=10) == -signal.SIGKILL
        assert said == [
            f"stopped DynamoDB Local (pid {leftover.pid}), left running by a platform that "
            "did not stop"
        ]
        assert reused.poll() is None
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"{os.getpid()}.json"]
    finally:
        for process in (leftover, reused):
            process.kill()
            process.wait()


DRIVER = """
import sys
from local_platform.process import start_platform
platform = start_platform("--no-throttle")
print(platform.process.pid, flush=True)
sys.stdin.read()  # until killed
"""


def test_a_platform_started_for_tests_stops_when_its_starter_dies() -> None:
    """A test run or bench killed mid-way (a CI timeout) leaves no platform behind: the
    platform gets SIGTERM when its starter dies, and stops its own children cleanly."""
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert driver.stdout is not None
        platform_pid = int(driver.stdout.readline())
        children = child_processes(platform_pid)
        assert any("DynamoDBLocal.jar" in " ".join(argv) for argv in children.values())
        driver.kill()
        driver.wait(timeout=10)
        deadline = time.monotonic() + 30
        gone = [platform_pid, *children]
        while any(_alive(pid) for pid in gone) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in gone if _alive(pid)] == []
    finally:
        driver.kill()
        driver.wait()
