"""`/docs`: the API reference `make dev` serves (Swagger UI from node_modules, no CDN)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import yaml
from starlette.testclient import TestClient

from local_platform.auth import DevIssuer
from local_platform.gateway import build_app
from local_platform.gateway.docs import ASSETS, ApiDocs
from local_platform.process import Platform
from stack.config import StackConfig
from stack.manifest import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    app = build_app(
        FUNCTIONS,
        StackConfig.from_stack_file("dev"),
        DevIssuer(key_dir=tmp_path),
        rate=1,
        burst=1,
        docs=ApiDocs(),
    )
    return TestClient(app, base_url="http://127.0.0.1:8123", follow_redirects=False)


def test_the_page_loads_swagger_ui_from_this_server_only(client: TestClient) -> None:
    assert client.get("/docs").headers["location"] == "/docs/"
    page = client.get("/docs/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "make token USER=alice" in page.text  # where the token to paste comes from
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links, page.text
    assert not [link for link in links if "//" in link]  # no CDN: every asset is local
    for link in links:
        assert client.get(f"/docs/{link}").status_code == 200, link
    bundle = client.get("/docs/swagger-ui-bundle.js")
    assert (
        bundle.content == (ROOT / "node_modules/swagger-ui-dist/swagger-ui-bundle.js").read_bytes()
    )
    assert "persistAuthorization: true" in client.get("/docs/initializer.js").text


def test_the_document_is_openapi_yaml_with_this_platform_as_first_server(
    client: TestClient,
) -> None:
    served = client.get("/docs/openapi.json").json()
    original = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    assert served["servers"][0]["url"] == "http://127.0.0.1:8123"
    assert {k: v for k, v in served.items() if k != "servers"} == {
        k: v for k, v in original.items() if k != "servers"
    }
    assert served["components"]["securitySchemes"]["bearerJwt"]["scheme"] == "bearer"


def test_only_the_pages_assets_are_served_and_docs_are_not_throttled(client: TestClient) -> None:
    for path in ("/docs/package.json", "/docs/%2e%2e/pyproject.toml", "/docs/swagger-ui.js.map"):
        assert client.get(path).status_code == 404, path
    assert client.get("/docs/../pyproject.toml").status_code == 401  # /pyproject.toml: the API's
    assert client.post("/docs/").status_code != 200  # not the docs' business
    # The stage allows 1 request a second here; the docs do not count against it.
    assert {client.get(f"/docs/{name}").status_code for name in ASSETS} == {200}


def test_a_missing_swagger_ui_says_how_to_install_it(tmp_path: Path) -> None:
    docs = ApiDocs(dist=tmp_path)
    page = docs.respond("GET", "/docs/swagger-ui-bundle.js", "http", "127.0.0.1:8000")
    assert page is not None
    assert page.status == 503
    assert b"make deps-node" in page.body


def test_make_dev_serves_the_docs(platform: Platform) -> None:
    page = httpx.get(f"{platform.url}/docs/", trust_env=False)
    assert page.status_code == 200
    served = httpx.get(f"{platform.url}/docs/openapi.json", trust_env=False).json()
    assert served["servers"][0]["url"] == platform.url
