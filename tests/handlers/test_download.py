"""The streaming download (`handlers.download`), served by a real uvicorn on a loopback port (as
the Lambda Web Adapter reaches it on AWS), over in-memory tasks whose page reads a test can
hold back: streaming is shown by order of events, never by timing."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from handlers.auth import StaticKeys, Verifier
from handlers.download import Download, Outcome
from local_platform.auth import DevIssuer
from local_platform.dynamodb_local import free_port
from taskcore.errors import Unavailable
from taskcore.model import Status, Task, UserId
from taskcore.ports import StoredPage
from taskcore.serialization import task_to_json
from taskcore.testing import InMemoryTaskRepository, build_task
from tests.e2e.tokens import unauthorized_headers_for

PAGE = 100


class GatedRepository(InMemoryTaskRepository):
    """Counts page reads; a read past `open_reads` waits until `release()` (or 10 s)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.open_reads = 10**9
        self.gate = threading.Event()
        self.fail_at: int | None = None

    def list_owned(self, owner_id: UserId, **kwargs: Any) -> StoredPage:
        self.reads += 1
        if self.fail_at is not None and self.reads >= self.fail_at:
            raise Unavailable("the table is throttled")
        if self.reads > self.open_reads:
            self.gate.wait(10)
        return super().list_owned(owner_id, **kwargs)

    def release(self) -> None:
        self.gate.set()


class Recorded(Download):
    """The app, keeping each request's outcome instead of only logging it."""

    outcomes: list[Outcome]

    def _log(self, scope: Any, started: float, outcome: Outcome) -> None:
        super()._log(scope, started, outcome)
        self.outcomes.append(outcome)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(key_dir=tmp_path_factory.mktemp("issuer"))


@pytest.fixture
def repository() -> GatedRepository:
    repo = GatedRepository()
    for n in range(1, 251):  # 3 pages of alice's: 100, 100, 50
        repo.add(build_task(n=n))
    for n in range(251, 261):
        repo.add(build_task(n=n, owner="bob", title="Bob's secret"))
    return repo


@pytest.fixture
def app(repository: GatedRepository, issuer: DevIssuer) -> Iterator[tuple[str, Recorded]]:
    verifier = Verifier(
        issuer=issuer.issuer, audience=issuer.audience, keys=StaticKeys(issuer.jwks)
    )
    recorded = Recorded(repository=lambda: repository, verifier=lambda: verifier)
    recorded.outcomes = []
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(recorded, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", recorded
    finally:
        repository.release()
        server.should_exit = True
        thread.join(10)


def outcome(recorded: Recorded) -> Outcome:
    """The last request's outcome: logged just after its last byte, so wait for it."""
    deadline = time.monotonic() + 10
    while not recorded.outcomes:
        assert time.monotonic() < deadline, "the request never finished"
        time.sleep(0.01)
    return recorded.outcomes[-1]


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def lines(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


def test_every_task_of_the_caller_newest_first_in_the_apis_shape(
    app: tuple[str, Recorded], repository: GatedRepository, issuer: DevIssuer
) -> None:
    url, recorded = app
    response = httpx.get(f"{url}/tasks.ndjson", headers=auth(issuer.mint("alice")), timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson; charset=utf-8"
    assert response.headers["transfer-encoding"] == "chunked"
    expected = sorted(
        (t for (owner, _), t in repository.tasks.items() if owner == "alice"),
        key=lambda t: t.id,
        reverse=True,
    )
    assert lines(response) == [task_to_json(t) for t in expected]
    assert "Bob" not in response.text
    assert outcome(recorded).tasks == 250
    assert outcome(recorded).pages == 3


def test_a_user_with_no_tasks_gets_an_empty_stream(
    app: tuple[str, Recorded], issuer: DevIssuer
) -> None:
    url, _ = app
    response = httpx.get(f"{url}/tasks.ndjson", headers=auth(issuer.mint("carol")), timeout=10)
    assert response.status_code == 200
    assert response.content == b""


def test_the_status_filter(
    app: tuple[str, Recorded], repository: GatedRepository, issuer: DevIssuer
) -> None:
    url, _ = app
    task: Task = repository.tasks[("alice", build_task(n=7).id)]
    started = task.transition_to(Status.IN_PROGRESS, task.updated_at + timedelta(seconds=1))
    repository.save(started, expected_version=task.version)
    response = httpx.get(
        f"{url}/tasks.ndjson", params={"status": "in_progress"}, headers=auth(issuer.mint("alice"))
    )
    assert response.status_code == 200
    assert [line["id"] for line in lines(response)] == [task.id]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=finished", "status"),
        ("limit=5", "limit"),
        ("status=todo&status=done", "status"),
    ],
)
def test_bad_parameters_are_a_400_problem_before_any_task(
    app: tuple[str, Recorded],
    repository: GatedRepository,
    issuer: DevIssuer,
    query: str,
    field: str,
) -> None:
    url, _ = app
    response = httpx.get(f"{url}/tasks.ndjson?{query}", headers=auth(issuer.mint("alice")))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:tasks:problem:invalid-query"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert repository.reads == 0


@pytest.fixture(scope="module")
def other_issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(key_dir=tmp_path_factory.mktemp("other-issuer"))


def test_every_refusable_token_is_a_401_problem(
    app: tuple[str, Recorded],
    repository: GatedRepository,
    issuer: DevIssuer,
    other_issuer: DevIssuer,
) -> None:
    """The gateway's matrix of forged, expired, `alg: none`, wrong-audience... tokens."""
    url, _ = app
    for kind, headers in unauthorized_headers_for(issuer, other_issuer).items():
        if kind == "bearer-without-token":
            continue  # h11 will not send a header value ending in a space
        response = httpx.get(f"{url}/tasks.ndjson", headers=headers)
        assert response.status_code == 401, kind
        assert response.headers["content-type"] == "application/problem+json", kind
        assert response.json()["type"] == "urn:tasks:problem:unauthenticated", kind
        assert response.headers["www-authenticate"].startswith("Bearer"), kind
    assert repository.reads == 0


def test_the_first_lines_leave_before_the_second_page_is_read(
    app: tuple[str, Recorded], repository: GatedRepository, issuer: DevIssuer
) -> None:
    """The second read waits until the client holds a first line: were the first page held
    back until the second was read, this would time out."""
    url, recorded = app
    repository.open_reads = 1
    with httpx.stream(
        "GET", f"{url}/tasks.ndjson", headers=auth(issuer.mint("alice")), timeout=10
    ) as r:
        received = r.iter_lines()
        first = next(received)
        assert repository.reads <= 2  # the second read, if started, waits at the gate
        repository.release()
        rest = list(received)
    assert json.loads(first)["id"] == build_task(n=250).id
    assert len(rest) == 249
    done = outcome(recorded)
    assert done.first_byte_ms is not None
    assert done.last_page_ms is not None
    assert done.first_byte_ms < done.last_page_ms


def test_a_client_that_leaves_stops_the_reading(
    app: tuple[str, Recorded], repository: GatedRepository, issuer: DevIssuer
) -> None:
    url, recorded = app
    for n in range(261, 5261):  # 50 more pages of alice's
        repository.add(build_task(n=n))
    repository.open_reads = 1
    with httpx.stream(
        "GET", f"{url}/tasks.ndjson", headers=auth(issuer.mint("alice")), timeout=10
    ) as r:
        next(r.iter_lines())
    repository.release()  # the second read goes on; the client has gone
    done = outcome(recorded)
    reads = repository.reads
    time.sleep(0.2)
    assert done.client_left
    assert repository.reads == reads <= 3  # of 53 pages: nothing reads on for nobody
    assert done.tasks < 5250


def test_storage_unavailable_before_the_first_byte_is_a_503_problem(
    app: tuple[str, Recorded], repository: GatedRepository, issuer: DevIssuer
) -> None:
    url, _ = app
    repository.fail_at = 1
    response = httpx.get(f"{url}/tasks.ndjson", headers=auth(issuer.mint("alice")))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "urn:tasks:problem:unavailable"


def test_a_failure_mid_stream_ends_the_body_incomplete(
    app: tuple[str, Recorded], repository: GatedRepository, issuer: DevIssuer
) -> None:
    """After the first byte the status is sent: the stream breaks off without the final chunk,
    which an HTTP client reports, rather than ending as if complete."""
    url, recorded = app
    repository.fail_at = 2
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{url}/tasks.ndjson", headers=auth(issuer.mint("alice")), timeout=10)
    error = outcome(recorded).error
    assert error is not None
    assert "Unavailable" in error


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/tasks.ndjson", 405),
        ("DELETE", "/tasks.ndjson", 405),
        ("GET", "/tasks", 404),
        ("GET", "/tasks.ndjson/x", 404),
    ],
)
def test_other_requests_are_problems(
    app: tuple[str, Recorded], issuer: DevIssuer, method: str, path: str, status: int
) -> None:
    url, _ = app
    response = httpx.request(method, f"{url}{path}", headers=auth(issuer.mint("alice")))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


def test_health_and_head(app: tuple[str, Recorded], issuer: DevIssuer) -> None:
    url, _ = app
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    head = httpx.head(f"{url}/tasks.ndjson", headers=auth(issuer.mint("alice")))
    assert head.status_code == 200
    assert head.content == b""


def test_the_script_serves_the_app(tmp_path: Path) -> None:
    """`handlers/download.sh`, the function's Lambda handler, starts uvicorn on AWS_LWA_PORT."""
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "AWS_LWA_PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "TABLE_NAME": "tasks",
        "JWT_ISSUER": "http://127.0.0.1:9/issuer",
        "JWT_AUDIENCE": "tasks",
        "AWS_REGION": "us-east-1",
        "DYNAMODB_ENDPOINT": "http://127.0.0.1:9",
    }
    process = subprocess.Popen([str(root / "handlers" / "download.sh")], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the script exited"
                assert time.monotonic() < deadline, "nothing answered on AWS_LWA_PORT"
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
    finally:
        process.terminate()
        process.wait(10)


def test_a_crafted_alg_cannot_reach_the_response_headers(
    app: tuple[str, Recorded], issuer: DevIssuer
) -> None:
    """The refusal's reason is in `WWW-Authenticate`: a CR/LF in the token's `alg` would break
    the response if it were repeated there."""
    url, _ = app
    body = issuer.mint("alice").split(".", 1)[1]
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "RS256\r\nX-Injected: 1", "kid": issuer.kid}).encode()
    ).rstrip(b"=")
    response = httpx.get(f"{url}/tasks.ndjson", headers=auth(f"{header.decode()}.{body}"))
    assert response.status_code == 401
    assert "x-injected" not in response.headers
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="signing method ? is invalid"'
    )


def test_the_download_function_does_not_import_the_apis_resolver() -> None:
    """Its cold start is its own: not the API's routes or Powertools' resolver."""
    code = (
        "import sys, handlers.download\n"
        "print(sorted(m for m in sys.modules if m.startswith('handlers.http_api')"
        " or m == 'aws_lambda_powertools.event_handler'))"
    )
    env = {**os.environ, "TABLE_NAME": "t", "JWT_ISSUER": "http://i", "JWT_AUDIENCE": "a"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
