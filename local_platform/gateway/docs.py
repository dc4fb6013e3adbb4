"""The API reference at `/docs`: Swagger UI (the npm package `swagger-ui-dist`, served from
`node_modules/`, no CDN) showing `openapi.yaml`.

Not an API Gateway feature (like the dev issuer's documents, the local gateway answers it
before throttling and routing). The document is served with this platform's own origin as its
first server, so "Try it out" calls the platform that serves the page; the Authorize button
takes a dev token (`make token USER=alice`) for the `bearerJwt` scheme, and keeps it across
reloads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import attrs
import yaml

from local_platform.gateway.responses import HttpResponse, gateway_error

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/docs"
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
"""The files of `swagger-ui-dist` the page uses: nothing else under `node_modules/` is served."""

PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>tasks API — local platform</title>
    <link rel="stylesheet" href="swagger-ui.css">
    <link rel="icon" type="image/png" href="favicon-32x32.png">
    <style>
      .local-note { font-family: sans-serif; margin: 1em 2em 0; padding: .6em 1em;
                    background: #f3f7fb; border-left: 4px solid #49cc90; }
      .local-note code { background: #e8eef5; padding: 0 .3em; }
    </style>
  </head>
  <body>
    <p class="local-note">
      The local platform's API. To call it from here, get a dev token with
      <code>make token USER=alice</code> (an approver: <code>make token USER=bob
      GROUPS=approvers</code>), press <b>Authorize</b> and paste it; then <b>Try it out</b>.
    </p>
    <div id="swagger-ui"></div>
    <script src="swagger-ui-bundle.js"></script>
    <script src="initializer.js"></script>
  </body>
</html>
"""

INITIALIZER = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    displayRequestDuration: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
};
"""

PAGES = {
    "": ("text/html; charset=utf-8", PAGE.encode()),
    "index.html": ("text/html; charset=utf-8", PAGE.encode()),
    "initializer.js": ("text/javascript; charset=utf-8", INITIALIZER.encode()),
}

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


@attrs.define
class ApiDocs:
    """Answers GET/HEAD under `/docs`; anything else is not its business (None)."""

    spec: Path = ROOT / "openapi.yaml"
    dist: Path = ROOT / "node_modules" / "swagger-ui-dist"
    _document: dict[str, object] | None = None

    def respond(
        self, method: str, raw_path: str, scheme: str, host: str | None
    ) -> HttpResponse | None:
        if method not in ("GET", "HEAD") or not (
            raw_path == PREFIX or raw_path.startswith(PREFIX + "/")
        ):
            return None
        if raw_path == PREFIX:  # relative links need the slash
            return HttpResponse(301, (("location", PREFIX + "/"),))
        return self._page(raw_path[len(PREFIX) + 1 :], scheme, host)

    def _page(self, name: str, scheme: str, host: str | None) -> HttpResponse:
        if name in PAGES:
            return _ok(*PAGES[name])
        if name == "openapi.json":
            return _ok("application/json", self._served_document(scheme, host))
        if name not in ASSETS:
            return gateway_error(404, "Not Found")
        asset = self.dist / name
        if not asset.is_file():
            return gateway_error(503, f"Swagger UI is not installed ({asset}): run make deps-node")
        return _ok(ASSETS[name], asset.read_bytes(), cache="public, max-age=3600")

    def _served_document(self, scheme: str, host: str | None) -> bytes:
        """openapi.yaml, with this platform first among the servers."""
        if self._document is None:
            self._document = yaml.safe_load(self.spec.read_text())
        document = dict(self._document)
        if host is not None and _HOST.match(host):
            here = {"url": f"{scheme}://{host}", "description": "This local platform."}
            servers = document.get("servers")
            others = (
                [s for s in servers if s.get("url") != here["url"]]
                if isinstance(servers, list)
                else []
            )
            document["servers"] = [here, *others]
        return json.dumps(document).encode()


def _ok(content_type: str, body: bytes, cache: str = "no-cache") -> HttpResponse:
    return HttpResponse(200, (("content-type", content_type), ("cache-control", cache)), body)
