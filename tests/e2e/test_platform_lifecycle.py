"""`make dev` across a restart: DynamoDB Local keeps its data, and handed-out cursors stay valid
(the cursor secret persists in .local/)."""

from __future__ import annotations

from pathlib import Path

from local_platform.process import start_platform


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
