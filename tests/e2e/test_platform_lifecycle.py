"""`make dev` across a restart: DynamoDB Local keeps its data, and handed-out cursors stay valid
(the cursor secret persists in .local/); and however the platform ends, its children end too."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from local_platform.process import child_processes, start_platform


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
